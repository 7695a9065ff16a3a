"""The Preferences tab in a real browser: a pair sent from chat is shown, voted on, and exported."""

from __future__ import annotations

from helpers import workspace_of
from playwright.sync_api import expect

from studio.prefs.store import PreferenceStore


def test_vote_and_export(page, app_url):
    page.goto(app_url)
    ws = workspace_of(page)
    store = PreferenceStore(ws / "prefs.sqlite")
    pid = store.add_pair("Where is order 12345?", "It left the warehouse today.", "Dunno.", "run-x", "tiny")
    page.get_by_role("tab", name="Preferences").click()
    expect(page.locator("#prefs-prompt textarea")).to_have_value("Where is order 12345?")
    page.wait_for_timeout(1000)  # the page-load and tab events both settle before reading the sides
    left = page.locator("#prefs-left textarea").input_value()
    page.get_by_role("button", name="A is better").click()
    expect(page.locator("#prefs-message")).to_contain_text(f"Vote stored for pair #{pid}")
    rows = store.export_rows()
    assert rows == [{"prompt": "Where is order 12345?", "chosen": left,
                     "rejected": ({"It left the warehouse today.", "Dunno."} - {left}).pop()}]
    expect(page.locator("#prefs-prompt textarea")).to_have_value("No pairs are waiting for your vote. "
                                                                 "Send pairs from the Chat tab (Side by side → "
                                                                 "Send this pair).")
    page.get_by_role("button", name="Export votes and ratings as datasets").click()
    expect(page.get_by_text("Saved 1 pairs as dataset", exact=False)).to_be_visible()
    assert (ws / "datasets" / "votes" / "v1" / "train.jsonl").exists()
