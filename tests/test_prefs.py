"""Preference store on a real SQLite file, and the vote handling behind the Preferences tab."""

from __future__ import annotations

import json
import random
import subprocess

import pytest
from helpers import PYTHON, ROOT, subprocess_env

from studio.errors import StudioError
from studio.prefs.session import ShownPair, show_pair
from studio.prefs.store import AlreadyVoted, PreferenceStore
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
    store.vote(one, "b", voter="cy", edited="")  # an empty edit keeps the winner as it was
    assert store.export_rows()[-1] == {"prompt": "Where is my parcel?", "chosen": "No idea.", "rejected": "It ships today."}
    assert store.counts() == {"pairs": 3, "votes": 4, "usable": 3}
    store.vote(one, "b", voter="bob", edited=" It ships today.\n")  # the edit is the losing answer again
    assert len(store.export_rows()) == 3 and store.counts() == {"pairs": 3, "votes": 5, "usable": 3}
    again = PreferenceStore(tmp_path / "p.sqlite")  # a restart sees every vote
    assert len(again.export_rows()) == 3
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
    pair = store.add_pair("Q", "good", "bad")

    def export():
        return subprocess.run([PYTHON, "-m", "studio", "prefs", "export", "--out", str(tmp_path / "v.jsonl"),
                               "--workspace", str(tmp_path)], capture_output=True, text=True, cwd=ROOT,
                              env=subprocess_env(), timeout=120)
    out = export()  # a pair without votes is nothing to export: said, and no empty file is left
    assert out.returncode == 1 and out.stderr.startswith("error: No votes to export yet")
    assert not (tmp_path / "v.jsonl").exists()
    store.vote(pair, "a")
    out = export()
    assert out.returncode == 0 and "rows written: 1" in out.stdout
    assert json.loads((tmp_path / "v.jsonl").read_text()) == {"prompt": "Q", "chosen": "good", "rejected": "bad"}


def test_one_vote_per_voter_and_pair(tmp_path):
    store = PreferenceStore(tmp_path / "p.sqlite")
    pid = store.add_pair("Q", "one", "two", created_by="ann")
    store.vote(pid, "a", voter="bob")
    with pytest.raises(AlreadyVoted, match=f"voted on pair #{pid} already"):
        store.vote(pid, "b", voter="bob")  # a double click
    store.vote(pid, "b", voter="cy")  # another voter may
    assert [v["choice"] for v in store.votes_of("bob")] == ["a"]
    assert store.pair(pid)["created_by"] == "ann"


def test_a_store_from_before_the_rule_keeps_each_voters_first_vote(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE pairs (id INTEGER PRIMARY KEY AUTOINCREMENT, prompt TEXT NOT NULL, answer_a TEXT NOT NULL,
            answer_b TEXT NOT NULL, model_a TEXT NOT NULL DEFAULT '', model_b TEXT NOT NULL DEFAULT '',
            source TEXT NOT NULL DEFAULT '', created REAL NOT NULL);
        CREATE TABLE votes (id INTEGER PRIMARY KEY AUTOINCREMENT, pair_id INTEGER NOT NULL, choice TEXT NOT NULL,
            edited TEXT, voter TEXT NOT NULL DEFAULT '', created REAL NOT NULL);
        INSERT INTO pairs (prompt, answer_a, answer_b, created) VALUES ('Q', 'one', 'two', 0);
        INSERT INTO votes (pair_id, choice, voter, created) VALUES (1, 'a', 'bob', 0), (1, 'b', 'bob', 1);
    """)
    db.commit()
    db.close()
    store = PreferenceStore(path)
    assert [v["choice"] for v in store.votes_of("bob")] == ["a"]
    assert store.pair(1)["created_by"] == ""


def test_a_vote_on_a_full_disk_says_it_was_not_stored(tmp_path):
    store = PreferenceStore(tmp_path / "p.sqlite")
    pid = store.add_pair("Q", "one", "two")
    original = store._connect

    def full():  # SQLite's own page limit: the same SQLITE_FULL error a full disk gives
        db = original()
        db.execute(f"PRAGMA max_page_count = {db.execute('PRAGMA page_count').fetchone()[0]}")
        return db

    store._connect = full
    with pytest.raises(StudioError, match="The vote was not stored: the disk holding p.sqlite is full"):
        for n in range(5000):
            store.vote(pid, "a", voter=f"annotator-{n:04d}" * 8)
    store._connect = original
    kept = store.counts()["votes"]
    assert kept > 0 and all(v["pair_id"] == pid for v in store.votes_of("annotator-0000" * 8))


def test_ratings_are_unpaired_rows_one_mark_per_rater_and_answer(tmp_path):
    from studio.prefs.session import rated_answer

    store = PreferenceStore(tmp_path / "prefs.sqlite")
    chat = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "Where is order 7?"}, {"role": "assistant", "content": "No idea."}]
    prompt, answer = rated_answer(chat, 3, "Be brief.")
    assert prompt[0] == {"role": "system", "content": "Be brief."} and prompt[-1]["content"] == "Where is order 7?"
    with pytest.raises(StudioError, match="Only the model's answers"):
        rated_answer(chat, 2)
    store.rate(prompt, answer, True, model="run-a", rater="ann")
    store.rate(prompt, answer, False, model="run-a", rater="ann")  # changed her mind: one mark, now bad
    store.rate(prompt, answer, True, model="run-a", rater="bob")
    store.rate(*rated_answer(chat, 1), False, rater="ann")
    assert store.rating_counts() == {"good": 1, "bad": 2}
    hello = {"prompt": [chat[0]], "completion": [chat[1]], "label": False}
    assert store.rating_rows() == [hello]  # ann and bob split on "No idea.": left out
    store.rate(prompt, answer, None, rater="bob")  # taken back
    assert store.rating_counts() == {"good": 0, "bad": 2}
    assert store.rating_rows() == [{"prompt": prompt, "completion": [{"role": "assistant", "content": "No idea."}],
                                    "label": False}, hello]
    with pytest.raises(StudioError, match="a non-empty answer"):
        store.rate(prompt, "  ", True)


def test_exported_ratings_are_read_back_as_kto_data(tmp_path):
    from studio.data.load import load_records
    from studio.data.store import dataset_path, save_dataset

    ws = Workspace.open(tmp_path / "ws")
    store = PreferenceStore(ws.prefs_db)
    for n, good in enumerate([True, False, True]):
        store.rate([{"role": "user", "content": f"Question {n}?"}], f"Answer {n}.", good, rater="ann")
    save_dataset(ws, "ratings", store.rating_rows(), "unpaired")
    records, left_out = load_records(str(dataset_path(ws, "ratings")), ("unpaired",))
    assert left_out == 0 and [r["label"] for r in records] == [True, False, True]


def test_raters_who_disagree_give_the_majority_label_and_ties_are_left_out(tmp_path):
    store = PreferenceStore(tmp_path / "prefs.sqlite")
    prompt = [{"role": "user", "content": "Où est ma commande ?"}]
    for rater, good in (("ann", True), ("bob", False), ("cid", True)):
        store.rate(prompt, "Elle arrive demain.", good, rater=rater)
    store.rate(prompt, "Aucune idée.", True, rater="ann")
    store.rate([{"content": "Où est ma commande ?", "role": "user"}], "Aucune idée.", False, rater="bob")
    rows = store.rating_rows()
    assert rows == [{"prompt": prompt, "completion": [{"role": "assistant", "content": "Elle arrive demain."}],
                     "label": True}]  # 2 of 3 said good; the other answer is one good and one bad mark
