"""The Chat tab in a real browser, on the built-in tiny model: chat, compare two answers side by side
and keep them as a preference pair, clear, and evaluate on held-out data.

The module's app has a workspace of its own (its path is in the page header); the tests read the
preference store there with the standard library's sqlite3.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time

import pytest
from helpers import workspace_of
from playwright.sync_api import expect

pytestmark = pytest.mark.slow

ANSWER_WAIT = 90_000  # ms: the first message loads the model


def open_chat_tab(page, url):
    page.goto(url)
    page.get_by_role("tab", name="Chat").click()
    expect(page.locator("#chat-input textarea")).to_be_visible()


def send(page, text: str) -> None:
    box = page.locator("#chat-input textarea")
    box.fill(text)
    box.press("Enter")


def answers(page, side: str):
    return page.locator(f"#chat-{side} [data-testid='bot']")


def expect_answered(page, side: str, count: int = 1) -> str:
    bot = answers(page, side)
    expect(bot).to_have_count(count, timeout=ANSWER_WAIT)
    expect(bot.nth(count - 1)).to_contain_text(re.compile(r"\S"), timeout=ANSWER_WAIT)
    return bot.nth(count - 1).inner_text().strip()


def flat(text: str) -> str:
    return " ".join(text.split())


def wait_until_idle(page, sides=("left",)) -> None:
    """Streaming is over once the input is cleared and the answers stop changing for a second."""
    expect(page.locator("#chat-input textarea")).to_have_value("", timeout=ANSWER_WAIT)
    for side in sides:
        expect(answers(page, side).last).to_contain_text(re.compile(r"\S"), timeout=ANSWER_WAIT)
    deadline = time.monotonic() + ANSWER_WAIT / 1000
    last, same_since = None, time.monotonic()
    while time.monotonic() < deadline:
        now = [answers(page, side).last.inner_text() for side in sides]
        if now != last:
            last, same_since = now, time.monotonic()
        elif time.monotonic() - same_since >= 1.0:
            return
        time.sleep(0.2)
    raise AssertionError(f"answers still changing after {ANSWER_WAIT / 1000:.0f} s")


def test_chat_answers_on_enter(page, app_url):
    open_chat_tab(page, app_url)
    send(page, "How do I reset my password?")
    expect(page.locator("#chat-left [data-testid='user']")).to_contain_text("How do I reset my password?")
    wait_until_idle(page)
    assert expect_answered(page, "left")
    expect(page.locator("#chat-status")).to_contain_text("Answering with tiny")
    assert "Traceback" not in page.content()


def test_thumbs_up_and_down_store_rated_answers_for_kto(page, app_url):
    open_chat_tab(page, app_url)
    prompt = "Can I pay by invoice?"
    send(page, prompt)
    wait_until_idle(page)
    answer = expect_answered(page, "left")
    db_path = workspace_of(page) / "prefs.sqlite"

    def stored():
        with sqlite3.connect(db_path) as db:
            return db.execute("SELECT prompt, answer, label, model FROM ratings").fetchall()

    answers(page, "left").last.hover()
    page.locator("#chat-left").get_by_label("Dislike").last.click()
    expect(page.get_by_text("Marked bad. Ratings so far: 0 good, 1 bad")).to_be_visible(timeout=30_000)
    page.locator("#chat-left").get_by_label("Like", exact=True).last.click()
    expect(page.get_by_text("Marked good. Ratings so far: 1 good, 0 bad")).to_be_visible(timeout=30_000)
    rows = stored()
    assert len(rows) == 1  # the second mark replaced the first
    assert json.loads(rows[0][0]) == [{"role": "user", "content": prompt}]
    assert flat(rows[0][1]) == flat(answer) and rows[0][2:] == (1, "tiny")


def test_side_by_side_pair_goes_to_preferences_and_clear_empties(page, app_url):
    open_chat_tab(page, app_url)
    expect(page.locator("#chat-right")).to_be_hidden()
    page.get_by_label("Side by side").check()
    expect(page.locator("#chat-right")).to_be_visible()

    prompt = "My invoice shows the wrong amount."
    send(page, prompt)
    wait_until_idle(page, ("left", "right"))
    left = expect_answered(page, "left")
    right = expect_answered(page, "right")

    page.get_by_role("button", name="Send this pair to Preferences").click()
    saved = page.get_by_text("Saved as preference pair #")
    expect(saved).to_be_visible(timeout=30_000)
    pair_id = int(re.search(r"#(\d+)", saved.inner_text()).group(1))

    db_path = workspace_of(page) / "prefs.sqlite"
    assert db_path.exists()
    with sqlite3.connect(db_path) as db:
        row = db.execute("SELECT prompt, answer_a, answer_b, model_a, model_b, source FROM pairs WHERE id = ?",
                         (pair_id,)).fetchone()
    assert row is not None, f"pair #{pair_id} is not in {db_path}"
    assert row[0] == prompt
    assert flat(row[1]) == flat(left) and flat(row[2]) == flat(right)
    assert (row[3], row[4], row[5]) == ("tiny", "tiny", "chat")

    # the chatbots have a "Clear" icon of their own; this is the tab's button
    page.locator("button:not(.icon-button)").filter(has_text=re.compile(r"^\s*Clear\s*$")).click()
    expect(answers(page, "left")).to_have_count(0)
    expect(answers(page, "right")).to_have_count(0)
    expect(page.locator("#chat-left [data-testid='user']")).to_have_count(0)
    expect(saved).to_have_count(0)
