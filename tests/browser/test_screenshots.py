"""Each tab as a new user first sees it, saved to docs/screenshots/ (the README shows them). Taken by the
browser test run, so they follow the app; the test checks every picture was written and is not blank."""

from __future__ import annotations

from helpers import ROOT
from playwright.sync_api import expect

SHOTS = ROOT / "docs" / "screenshots"
TABS = {"Data": "Load data to see its format", "Method": "Trainable parameters by rank", "Train": "Start from a preset",
        "Preferences": "Make pairs to vote on", "Chat": "Evaluate on held-out data", "Guide": "Where to start"}


def test_a_screenshot_of_every_tab(page, app_url):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.goto(app_url)
    expect(page.locator("#status-bar")).to_contain_text("GiB in use", timeout=30_000)
    for tab, landmark in TABS.items():
        page.get_by_role("tab", name=tab).click()
        expect(page.get_by_text(landmark).first).to_be_visible(timeout=30_000)
        page.wait_for_timeout(500)  # let plots finish drawing
        path = SHOTS / f"{tab.lower()}.png"
        page.screenshot(path=str(path), full_page=False)
        assert path.stat().st_size > 20_000, f"{path} looks blank"
