"""Preference store on a real SQLite file, and the vote handling behind the Preferences tab."""

from __future__ import annotations

import json
import random
import subprocess

import pytest
from helpers import PYTHON, ROOT, subprocess_env

from studio.errors import StudioError
from studio.prefs.session import ShownPair, show_pair
from studio.prefs.store import PreferenceStore
from studio.workspace import Workspace


def test_votes_become_trl_preference_rows(tmp_path):
    store = PreferenceStore(tmp_path / "p.sqlite")
    one = store.add_pair("Where is my parcel?", "It ships today.", "No idea.", "run-x", "tiny")
    two = store.add_pair("Refund?", "Sure.", "Refund sent.")
    three = store.add_pair("Hi", "Hello", "Hey")
    store.vote(one, "a", voter="ann")
    store.vote(two, "b", voter="ann", edited="Your refund has been sent.")
    store.vote(three, "tie", voter="ann")
    assert store.export_rows() == [
        {"prompt": "Where is my parcel?", "chosen": "It ships today.", "rejected": "No idea."},
        {"prompt": "Refund?", "chosen": "Your refund has been sent.", "rejected": "Sure."},
    ]
    assert store.next_pair("ann") is None and store.next_pair("bob")["id"] in (one, two, three)
    assert store.counts() == {"pairs": 3, "votes": 3}
    again = PreferenceStore(tmp_path / "p.sqlite")  # a restart sees every vote
    assert len(again.export_rows()) == 2
    with pytest.raises(StudioError, match="A vote is one of"):
        store.vote(one, "maybe")
    with pytest.raises(StudioError, match="No preference pair 99"):
        store.vote(99, "a")
    with pytest.raises(StudioError, match="two non-empty answers"):
        store.add_pair("p", "", "x")


@pytest.mark.parametrize("side, flipped, chosen", [
    ("left", False, "answer one"), ("left", True, "answer two"),
    ("right", False, "answer two"), ("right", True, "answer one"),
])
def test_screen_sides_map_back_to_stored_answers(tmp_path, side, flipped, chosen):
    store = PreferenceStore(tmp_path / "p.sqlite")
    pid = store.add_pair("Q", "answer one", "answer two")
    shown = ShownPair(pid, "Q", *(("answer two", "answer one") if flipped else ("answer one", "answer two")),
                      flipped=flipped)
    assert (shown.left if side == "left" else shown.right) == chosen  # what the annotator saw is what is stored
    store.vote(pid, shown.choice_for(side), voter="ann")
    assert store.export_rows()[0]["chosen"] == chosen
    assert shown.choice_for("tie") == "tie" and shown.choice_for("both_bad") == "both_bad"
    with pytest.raises(ValueError, match="A vote is one of"):
        shown.choice_for("middle")


def test_sides_are_shuffled_and_remembered(tmp_path):
    store = PreferenceStore(tmp_path / "p.sqlite")
    pid = store.add_pair("Q", "answer one", "answer two")
    pair = store.next_pair("ann")
    shown = [show_pair(pair, random.Random(seed)) for seed in range(40)]
    assert {s.flipped for s in shown} == {False, True}
    for s in shown:
        assert s.pair_id == pid and s.prompt == "Q"
        assert (s.left, s.right) == (("answer two", "answer one") if s.flipped else ("answer one", "answer two"))


def test_prefs_export_command(tmp_path):
    store = PreferenceStore(Workspace.open(tmp_path).prefs_db)
    store.vote(store.add_pair("Q", "good", "bad"), "a")
    out = subprocess.run([PYTHON, "-m", "studio", "prefs", "export", "--out", str(tmp_path / "v.jsonl"),
                          "--workspace", str(tmp_path)], capture_output=True, text=True, cwd=ROOT,
                         env=subprocess_env(), timeout=120)
    assert out.returncode == 0 and "rows written: 1" in out.stdout
    assert json.loads((tmp_path / "v.jsonl").read_text()) == {"prompt": "Q", "chosen": "good", "rejected": "bad"}
