"""The preference arena's store, statistics and import, on a real SQLite file and the CLI."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from helpers import PYTHON, ROOT, subprocess_env

from studio.errors import StudioError
from studio.prefs.imports import import_pairs
from studio.prefs.session import prompt_text, show_pair
from studio.prefs.stats import agreement, leaderboard, length_bias, preference_stats, sources, wilson
from studio.prefs.store import PreferenceStore
from studio.workspace import Workspace

DATA = os.path.join(os.path.dirname(__file__), "assets", "data")
CONVERSATION = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Where is order 7?"},
                {"role": "assistant", "content": "Which shop?"}, {"role": "user", "content": "Pebble & Pine."}]


def test_a_conversation_prompt_is_kept_whole_and_exported_as_conversational_data(tmp_path):
    store = PreferenceStore(tmp_path / "p.sqlite")
    pid = store.add_pair(CONVERSATION, "It ships tomorrow.", "No idea.", "run-x", "tiny")
    plain = store.add_pair([{"role": "user", "content": "Hi"}], "Hello!", "What?")
    pair = store.pair(pid)
    assert pair["prompt"] == "Pebble & Pine." and json.loads(pair["prompt_turns"]) == CONVERSATION
    assert prompt_text(pair).startswith("System: Be brief.\n\nUser: Where is order 7?\n\nAssistant: Which shop?")
    store.vote(pid, "a", voter="ann", reason="answers the question", flipped=True)
    store.vote(plain, "b", voter="ann")
    assert store.export_rows() == [
        {"prompt": CONVERSATION, "chosen": [{"role": "assistant", "content": "It ships tomorrow."}],
         "rejected": [{"role": "assistant", "content": "No idea."}]},
        {"prompt": "Hi", "chosen": "What?", "rejected": "Hello!"}]
    vote = store.vote_rows()[0]
    assert vote["reason"] == "answers the question" and vote["flipped"] == 1
    with pytest.raises(StudioError, match="Only a winner can be edited"):
        store.vote(plain, "tie", voter="bob", edited="Hello there!")
    with pytest.raises(StudioError, match="must end with a user message"):
        store.add_pair(CONVERSATION[:3], "a", "b")


def test_a_pair_closes_once_it_has_the_votes_it_needs(tmp_path):
    store = PreferenceStore(tmp_path / "p.sqlite")
    ids = store.add_pairs([("Q1", "a1", "b1", "x", "y"), ("Q2", "a2", "b2", "x", "y")], source="test", needed=2)
    open_pair = store.add_pair("Q3", "a3", "b3")  # needed None: every annotator may vote
    for voter in ("ann", "bob"):
        for pid in ids:
            store.vote(pid, "a", voter=voter)
    assert store.progress("cid") == {"done": 0, "left": 1}
    assert store.next_pair("cid")["id"] == open_pair
    assert store.progress("ann") == {"done": 2, "left": 1}
    fresh = store.add_pairs([("Q4", "a", "b", "x", "y")], needed=1)[0]
    store.vote(open_pair, "a", voter="cid")
    assert store.next_pair("cid")["id"] == fresh  # the pair with fewest votes comes first
    with pytest.raises(StudioError, match="at least one annotator"):
        store.add_pairs([("Q", "a", "b", "", "")], needed=0)


def test_wilson_interval_matches_the_textbook_values():
    lo, hi = wilson(8, 10)
    assert abs(lo - 0.4902) < 1e-3 and abs(hi - 0.9433) < 1e-3
    assert wilson(0, 0) is None and wilson(0, 5)[0] == 0.0


def _vote(pid, choice, voter="ann", a="x", b="y", answer_a="short", answer_b="a longer answer"):
    return {"pair_id": pid, "voter": voter, "choice": choice, "model_a": a, "model_b": b, "answer_a": answer_a,
            "answer_b": answer_b}


def test_fleiss_kappa_on_a_hand_computed_example():
    votes = [_vote(1, "a", "ann"), _vote(1, "a", "bob"), _vote(2, "a", "ann"), _vote(2, "b", "bob"),
             _vote(3, "b", "ann"), _vote(3, "b", "bob"), _vote(4, "tie", "ann")]  # pair 4 has one vote only
    ag = agreement(votes)  # observed 2/3, expected 0.5*0.5 + 0.5*0.5 = 0.5: kappa (2/3 - 1/2) / (1/2) = 1/3
    assert ag["pairs"] == 3 and abs(ag["observed"] - 2 / 3) < 1e-9 and abs(ag["kappa"] - 1 / 3) < 1e-9
    assert agreement([_vote(1, "a")])["kappa"] is None


def test_sources_length_bias_and_leaderboard():
    votes = ([_vote(i, "a", a="run-x", b="tiny") for i in range(8)] + [_vote(8, "b", a="run-x", b="tiny")] +
             [_vote(9, "tie", a="run-x", b="tiny")] + [_vote(10, "a", a="tiny", b="tiny")] +  # a self-match
             [_vote(11, "b", a="base", b="tiny") for _ in range(3)])
    src = sources(votes)
    assert (src["run-x"]["wins"], src["run-x"]["losses"], src["run-x"]["ties"]) == (8, 1, 1)
    assert src["run-x"]["win_rate"] == 8 / 9 and src["tiny"]["votes"] == 13
    board = [r["source"] for r in leaderboard(votes)]
    assert board == ["run-x", "tiny", "base"]
    lb = length_bias(votes)  # answer b is the longer one: it won 1 + 3 of 13 decisive votes
    assert (lb["votes"], lb["longer_won"]) == (13, 4)
    stats = preference_stats(votes)
    assert stats["annotators"]["ann"]["votes"] == len(votes)


def test_a_preference_file_is_imported_for_relabelling(tmp_path):
    store = PreferenceStore(tmp_path / "p.sqlite")
    added, left_out = import_pairs(store, os.path.join(DATA, "llamafactory_dpo.json"), needed=2)
    assert added >= 2 and left_out >= 0
    pair = store.next_pair("ann")
    assert pair["needed"] == 2 and pair["model_a"] == "chosen in llamafactory_dpo.json"
    shown = show_pair(pair)
    assert {shown.left, shown.right} == {pair["answer_a"], pair["answer_b"]}
    hh_added, hh_left = import_pairs(store, os.path.join(DATA, "hh_rlhf_train.jsonl.gz"))
    assert (hh_added, hh_left) == (2, 1)  # the third HH row has identical answers
    with pytest.raises(StudioError, match="holds"):
        import_pairs(store, os.path.join(DATA, "openai.jsonl"))


def test_prefs_import_and_stats_commands(tmp_path):
    ws = tmp_path / "ws"

    def studio(*args):
        return subprocess.run([PYTHON, "-m", "studio", "prefs", *args, "--workspace", str(ws)], capture_output=True,
                              text=True, cwd=ROOT, env=subprocess_env(), timeout=120)
    out = studio("import", os.path.join(DATA, "hh_rlhf_train.jsonl.gz"), "--annotators", "2")
    assert out.returncode == 0 and out.stdout.startswith("pairs added: 2 (1 rows left out")
    store = PreferenceStore(Workspace.open(ws).prefs_db)
    for voter in ("ann", "bob"):
        while (pair := store.next_pair(voter)) is not None:
            store.vote(pair["id"], "a", voter=voter)
    stats = json.loads(studio("stats", "--json").stdout)
    assert stats["votes"] == 4 and stats["agreement"]["kappa"] == 1.0
    assert stats["sources"]["chosen in hh_rlhf_train.jsonl.gz"]["wins"] == 4
    text = studio("stats").stdout
    assert "| chosen in hh_rlhf_train.jsonl.gz | 4 | 4 | 0 | 0 | 100% (" in text and "Fleiss' kappa 1.00" in text
