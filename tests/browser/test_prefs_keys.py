"""Voting from the keyboard in a real browser: keys 1-4 vote, s skips, e opens the rewrite box, and the
reason and the rewrite are stored with the vote; admins see the statistics."""

from __future__ import annotations

import json

from helpers import workspace_of
from playwright.sync_api import expect

from studio.prefs.store import PreferenceStore

CONVERSATION = [{"role": "user", "content": "Where is order 7?"}, {"role": "assistant", "content": "Which shop?"},
                {"role": "user", "content": "Pebble & Pine."}]


def shown_pair(page, store):
    """The pair on screen, found by its answers (sides are random)."""
    left = page.locator("#prefs-left textarea").input_value()
    right = page.locator("#prefs-right textarea").input_value()
    pair = next(p for p in (store.pair(i) for i in range(1, 4)) if {p["answer_a"], p["answer_b"]} == {left, right})
    return pair, left, right


def test_keys_vote_skip_and_rewrite(page, app_url):
    page.goto(app_url)
    ws = workspace_of(page)
    store = PreferenceStore(ws / "prefs.sqlite")
    store.add_pairs([(CONVERSATION, "It ships tomorrow.", "No idea.", "run-x", "tiny"),
                     ("Can I pay by invoice?", "Yes, within 30 days.", "Maybe.", "run-x", "tiny"),
                     ("Do you ship abroad?", "Yes, to most of Europe.", "No.", "run-x", "tiny")], source="test")
    page.get_by_role("tab", name="Preferences").click()
    expect(page.locator("#prefs-left textarea")).not_to_have_value("")
    first, _, _ = shown_pair(page, store)
    page.locator("body").click()
    page.keyboard.press("s")
    expect(page.locator("#prefs-message")).to_contain_text("Skipped.")
    second, _, right = shown_pair(page, store)
    assert second["id"] != first["id"]

    page.locator("#prefs-reason textarea").fill("more helpful")
    page.keyboard.press("Escape")
    page.keyboard.press("2")
    expect(page.locator("#prefs-message")).to_contain_text(f"Vote stored for pair #{second['id']}.")
    revealed = "A was tiny, B was run-x." if second["answer_a"] == right else "A was run-x, B was tiny."
    expect(page.locator("#prefs-message")).to_contain_text(revealed)  # sources shown once the vote is in
    vote = store.vote_rows()[-1]
    assert vote["pair_id"] == second["id"] and vote["reason"] == "more helpful"
    assert (second["answer_a"] if vote["choice"] == "a" else second["answer_b"]) == right
    expect(page.locator("#prefs-reason textarea")).to_have_value("")

    third, left, _ = shown_pair(page, store)
    page.keyboard.press("e")
    page.keyboard.type("Yes: it is on its way.")
    page.keyboard.press("Escape")
    page.keyboard.press("1")
    expect(page.locator("#prefs-message")).to_contain_text("with your rewrite as the chosen answer")
    vote = store.vote_rows()[-1]
    assert vote["pair_id"] == third["id"] and vote["edited"] == "Yes: it is on its way."
    if third["prompt_turns"]:
        assert json.loads(third["prompt_turns"]) == CONVERSATION
    expect(page.locator("#prefs-counts")).to_contain_text("You: 2 votes, 1 pairs left")

    page.get_by_text("Statistics").click()
    page.get_by_role("button", name="Refresh statistics").click()
    expect(page.locator("#prefs-stats")).to_contain_text("Fleiss' kappa")
    expect(page.locator("#prefs-stats")).to_contain_text("run-x")
