"""Each tab as a new user first sees it; the test checks every picture was written and is not blank. The
pictures go to a temporary folder, or with STUDIO_SCREENSHOTS=1 to docs/screenshots/ (the README shows them),
so a test run leaves the checkout as it was."""

from __future__ import annotations

import os

import pytest
from helpers import ROOT
from playwright.sync_api import expect

TABS = {"Data": "Load data to see its format", "Method": "Trainable parameters by rank", "Train": "Start from a preset",
        "Preferences": "Make pairs to vote on", "Chat": "Evaluate on held-out data", "Guide": "Where to start"}


@pytest.fixture
def shots(tmp_path):
    return ROOT / "docs" / "screenshots" if os.environ.get("STUDIO_SCREENSHOTS") == "1" else tmp_path


def test_a_screenshot_of_every_tab(page, app_url, shots):
    shots.mkdir(parents=True, exist_ok=True)
    page.goto(app_url)
    expect(page.locator("#status-bar")).to_contain_text("GiB in use", timeout=30_000)
    for tab, landmark in TABS.items():
        page.get_by_role("tab", name=tab).click()
        expect(page.get_by_text(landmark).first).to_be_visible(timeout=30_000)
        page.wait_for_timeout(500)  # let plots finish drawing
        path = shots / f"{tab.lower()}.png"
        page.screenshot(path=str(path), full_page=False)
        assert path.stat().st_size > 20_000, f"{path} looks blank"
