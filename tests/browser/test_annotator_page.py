"""An annotator in a real browser: after the login only the Preferences tab is there, and voting works."""

from __future__ import annotations

import subprocess

import pytest
from helpers import start_app
from playwright.sync_api import expect

from studio.prefs.store import PreferenceStore
from studio.workspace import Workspace


@pytest.fixture(scope="module")
def shared_app(tmp_path_factory):
    ws = tmp_path_factory.mktemp("annotator-ws")
    store = PreferenceStore(Workspace.open(ws).prefs_db)
    store.add_pair("Where is order 12345?", "It left the warehouse today.", "Dunno.")
    proc, url = start_app(ws, "--auth", "owner:owner-pw", "--annotator", "ann:annot-pw")
    yield url, ws
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def log_in(page, url, user, password):
    page.goto(url)
    page.get_by_label("username").fill(user)
    page.get_by_label("password").fill(password)
    page.get_by_role("button", name="Login").click()


def test_annotator_sees_only_voting_and_votes(page, shared_app):
    url, ws = shared_app
    log_in(page, url, "ann", "annot-pw")
    expect(page.locator("#prefs-prompt textarea")).to_have_value("Where is order 12345?", timeout=30_000)
    expect(page.get_by_role("tab", name="Preferences")).to_be_visible()
    for hidden in ("Data", "Method", "Train", "Chat", "Guide"):
        expect(page.get_by_role("tab", name=hidden)).to_have_count(0)
    header = page.locator("#studio-header")
    expect(header).to_contain_text("preference voting")
    assert str(ws) not in header.inner_text()  # the owner's folders are not shown to annotators
    page.get_by_role("button", name="A is better").click()
    expect(page.locator("#prefs-message")).to_contain_text("Vote stored")
    assert "GiB" not in page.locator("#status-bar").inner_text()  # the machine's state is the owner's
    assert len(PreferenceStore(ws / "prefs.sqlite").votes_of("ann")) == 1


def test_the_owner_sees_every_tab(page, shared_app):
    url, ws = shared_app
    log_in(page, url, "owner", "owner-pw")
    expect(page.locator("#studio-header")).to_contain_text(str(ws), timeout=30_000)
    for tab in ("Data", "Method", "Train", "Preferences", "Chat", "Guide"):
        expect(page.get_by_role("tab", name=tab)).to_be_visible()
    expect(page.locator("#status-bar")).to_contain_text("GiB in use")
