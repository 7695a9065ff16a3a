"""The preference arena's store, statistics and import, on a real SQLite file and the CLI."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from helpers import PYTHON, ROOT, copy_run, subprocess_env

from studio.errors import StudioError
from studio.prefs.imports import import_pairs
from studio.prefs.session import prompt_text, show_pair
from studio.prefs.stats import (
    agreement,
    leaderboard,
    length_bias,
    preference_stats,
    sources,
    stats_text,
    wilson,
)
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
    # an annotator's A and B are the sides pressed: a pair shown the other way round counts on the other side
    pressed = preference_stats([{**_vote(1, "a", "bob"), "flipped": 1}, {**_vote(2, "a", "bob"), "flipped": 0},
                                {**_vote(3, "tie", "bob"), "flipped": 1}])["annotators"]["bob"]
    assert (pressed["a"], pressed["b"], pressed["tie"]) == (1, 1, 1)
    assert "| annotator | votes | A (left) | B (right) |" in stats_text(stats)


def test_a_preference_file_is_imported_for_relabelling(tmp_path):
    store = PreferenceStore(tmp_path / "p.sqlite")
    added, left_out, stored = import_pairs(store, os.path.join(DATA, "llamafactory_dpo.json"), needed=2)
    assert added >= 2 and left_out >= 0 and stored == 0
    assert import_pairs(store, os.path.join(DATA, "llamafactory_dpo.json"), needed=2) == (0, left_out, added)
    assert store.counts()["pairs"] == added  # importing the file again added nothing
    pair = store.next_pair("ann")
    assert pair["needed"] == 2 and pair["model_a"] == "chosen in llamafactory_dpo.json"
    shown = show_pair(pair)
    assert {shown.left, shown.right} == {pair["answer_a"], pair["answer_b"]}
    hh_added, hh_left, hh_stored = import_pairs(store, os.path.join(DATA, "hh_rlhf_train.jsonl.gz"))
    assert (hh_added, hh_left, hh_stored) == (2, 1, 0)  # the third HH row has identical answers
    with pytest.raises(StudioError, match="holds .* but importing pairs to vote on needs preference"):
        import_pairs(store, os.path.join(DATA, "openai.jsonl"))  # chat data: "importing pairs to vote on needs"


def test_prefs_import_and_stats_commands(tmp_path):
    ws = tmp_path / "ws"

    def studio(*args):
        return subprocess.run([PYTHON, "-m", "studio", "prefs", *args, "--workspace", str(ws)], capture_output=True,
                              text=True, cwd=ROOT, env=subprocess_env(), timeout=120)
    out = studio("import", os.path.join(DATA, "hh_rlhf_train.jsonl.gz"), "--annotators", "2")
    assert out.returncode == 0 and out.stdout.startswith("pairs added: 2 (1 row left out")
    again = studio("import", os.path.join(DATA, "hh_rlhf_train.jsonl.gz"), "--annotators", "2")
    assert again.returncode == 0 and again.stdout.startswith("pairs added: 0 (2 already in the store; 1 row left out")
    store = PreferenceStore(Workspace.open(ws).prefs_db)
    for voter in ("ann", "bob"):
        while (pair := store.next_pair(voter)) is not None:
            store.vote(pair["id"], "a", voter=voter)
    stats = json.loads(studio("stats", "--json").stdout)
    assert stats["votes"] == 4 and stats["agreement"]["kappa"] == 1.0
    assert stats["sources"]["chosen in hh_rlhf_train.jsonl.gz"]["wins"] == 4
    text = studio("stats").stdout
    assert "| chosen in hh_rlhf_train.jsonl.gz | 4 | 4 | 0 | 0 | 100% (" in text and "Fleiss' kappa 1.00" in text


@pytest.mark.slow
def test_generate_pairs_from_a_run_sampled_twice_and_from_two_sources(tmp_path):
    from studio.prefs.generate import generate_pairs, prompts_from, typed_prompts

    ws = Workspace.open(tmp_path / "ws")
    prompts = prompts_from(os.path.join(DATA, "prompts.jsonl"))
    assert prompts[0] == [{"role": "system", "content": "Answer briefly."},
                          {"role": "user", "content": "Where is my order 12?"}]
    from_chats = prompts_from(str(ROOT / "assets" / "data" / "support_eval.jsonl"), limit=4)
    assert len(from_chats) == 4 and all(p[-1]["role"] == "user" for p in from_chats)  # answers cut off
    with pytest.raises(StudioError, match="set a temperature above 0"):
        generate_pairs(ws, prompts, "tiny", "tiny")
    seen = []
    done = generate_pairs(ws, from_chats + typed_prompts("Hello\n\nDo you sell gift cards?"), "tiny", "tiny",
                          temperature=1.0, max_new_tokens=24, needed=2, progress=lambda f, t: seen.append(f))
    store = PreferenceStore(ws.prefs_db)
    assert done["pairs"] + done["same_answers"] == 6 and store.counts()["pairs"] == done["pairs"] >= 4
    assert seen == sorted(seen) and seen[-1] > 0.9
    pair = store.next_pair("ann")
    assert pair["model_a"] == pair["model_b"] == "tiny" and pair["needed"] == 2
    assert pair["answer_a"] != pair["answer_b"]
    conversational = [p for p in (store.pair(i) for i in range(1, done["pairs"] + 1)) if p["prompt_turns"]]
    assert conversational and json.loads(conversational[0]["prompt_turns"])[0]["role"] == "system"


@pytest.mark.parametrize(("preset", "stage", "rate"), [
    ("llama2-7b-lora-sft", "dpo", 5e-6), ("llama2-7b-full-sft", "kto", 5e-7), ("mistral-7b-qlora-sft", "reward", 1e-4)])
def test_a_run_on_votes_from_a_real_model_gets_a_preference_learning_rate(tmp_path, preset, stage, rate):
    from studio.config import load_config, save_config
    from studio.paths import PRESETS
    from studio.prefs.handoff import votes_run_config

    ws = Workspace.open(tmp_path / "ws")
    parent = load_config(PRESETS / f"{preset}.yaml", [  # trained on a hub dataset's subset, its columns named by hand
        "data.system=Answer as the shop.", "data.train=openai/gsm8k", "data.subset=main", "data.split=train[:1000]",
        "data.eval=", "data.eval_fraction=0", "data.eval_split=test", "data.format=prompt_completion",
        "data.map={prompt: question, completion: answer}"])
    (ws.runs / "sft").mkdir()
    save_config(parent, ws.runs / "sft" / "config.yaml")
    cfg = votes_run_config(ws, stage, "sft", "votes", 100)
    assert cfg.data.system == "Answer as the shop."  # the pairs were written with it: the run trains with it
    assert (cfg.data.train, cfg.data.subset, cfg.data.split, cfg.data.eval_split, cfg.data.format, cfg.data.map) == (
        "votes", None, "train", None, None, {})  # the votes' own shape, not the parent data's
    assert cfg.data.eval_fraction == 0.1
    assert parent.train.learning_rate > rate and parent.train.epochs == 3
    assert cfg.train.learning_rate == rate and cfg.train.epochs == 1 and cfg.method.stage == stage
    assert cfg.model.name == parent.model.name and cfg.method.name == parent.method.name
    assert cfg.lora.r == parent.lora.r and cfg.model.parent_run == "sft"


def test_prefs_generate_command_refuses_one_greedy_source(tmp_path):
    out = subprocess.run([PYTHON, "-m", "studio", "prefs", "generate", "--prompts", os.path.join(DATA, "prompts.csv"),
                          "--a", "tiny", "--b", "tiny", "--workspace", str(tmp_path)], capture_output=True, text=True,
                         cwd=ROOT, env=subprocess_env(), timeout=120)
    assert out.returncode == 1 and "set a temperature above 0" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.slow
def test_votes_start_a_dpo_run_from_an_sft_run(tmp_path):
    import time

    from studio.config import load_config
    from studio.paths import PRESETS
    from studio.prefs.handoff import train_on_votes, votes_run_config
    from studio.train.runner import observe
    from studio.train.status import RunState
    from studio.train.worker import run_training

    ws = Workspace.open(tmp_path / "ws")
    sft_dir = ws.new_run_dir("sft")
    run_training(load_config(PRESETS / "tiny-sft-lora.yaml", ["train.max_steps=2", "train.save_steps=100"]), sft_dir)
    store = PreferenceStore(ws.prefs_db)
    with pytest.raises(StudioError, match="No decisive votes"):
        train_on_votes(ws, "dpo", sft_dir.name)
    ids = store.add_pairs([(CONVERSATION, "It ships tomorrow.", "No idea.", "run", "tiny"),
                           ("Refund?", "Your refund is on its way.", "No.", "run", "tiny")])
    for pid in ids:
        store.vote(pid, "a", voter="ann")
    store.rate([{"role": "user", "content": "Hi"}], "Hello!", True, rater="ann")
    kto = votes_run_config(ws, "kto", sft_dir.name, "kto-data", 5)
    assert (kto.method.stage, kto.model.parent_run, kto.data.train) == ("kto", sft_dir.name, "kto-data")
    assert votes_run_config(ws, "reward", sft_dir.name, "votes", 40).data.eval_fraction == 0.1
    run_dir = train_on_votes(ws, "dpo", sft_dir.name, started_by="me",
                             overrides=["train.max_steps=2", "train.batch_size=2", "train.logging_steps=1"])
    deadline = time.monotonic() + 300
    while observe(run_dir).state not in (RunState.COMPLETED, RunState.FAILED) and time.monotonic() < deadline:
        time.sleep(0.5)
    status = observe(run_dir)
    assert status.state is RunState.COMPLETED, status.shown_error
    cfg = load_config(run_dir / "config.yaml")
    assert cfg.method.stage == "dpo" and cfg.model.parent_run.endswith(sft_dir.name)  # resolved to folders
    assert "/datasets/votes/v1/" in cfg.data.train
    saved = (ws.root / "datasets" / "votes" / "v1" / "train.jsonl").read_text().splitlines()
    assert len(saved) == 2 and json.loads(saved[0])["prompt"] == CONVERSATION
    assert (run_dir / "adapter" / "adapter_config.json").exists()


@pytest.mark.slow
def test_dpo_on_votes_for_the_house_reply_raises_the_margin_and_keeps_exact_match(tmp_path, house_sft_run):
    """The arena's loop on the demo: pairs imported for voting, an annotator who prefers the house reply,
    a DPO run on the votes (40 steps of the tiny-dpo settings) from a short SFT run. The reward margin
    rises; held-out exact match stays within two of 48 rows (docs/benchmarks.md has the full runs)."""
    import time

    from studio.chat.engine import load_for_chat
    from studio.chat.evaluate import eval_rows, evaluate_model
    from studio.demo.world import HOUSE_REPLIES
    from studio.prefs.handoff import train_on_votes
    from studio.train.runner import observe
    from studio.train.status import RunState

    ws = Workspace.open(tmp_path / "ws")
    sft_dir = copy_run(house_sft_run, ws)  # 80 steps of the tiny preset
    store = PreferenceStore(ws.prefs_db)
    import_pairs(store, str(ROOT / "assets" / "data" / "support_prefs.jsonl"))
    house = set(HOUSE_REPLIES.values())
    while (pair := store.next_pair("ann")) is not None:  # the annotator votes for the house reply
        choice = "a" if pair["answer_a"] in house else "b" if pair["answer_b"] in house else "both_bad"
        store.vote(pair["id"], choice, voter="ann")
    run_dir = train_on_votes(ws, "dpo", sft_dir.name, overrides=[
        "train.max_steps=40", "train.logging_steps=5", "train.save_steps=1000", "data.eval_fraction=0"])
    deadline = time.monotonic() + 600
    while observe(run_dir).state not in (RunState.COMPLETED, RunState.FAILED) and time.monotonic() < deadline:
        time.sleep(1)
    assert observe(run_dir).state is RunState.COMPLETED, observe(run_dir).shown_error
    margins = [r["rewards/margins"] for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())
               if "rewards/margins" in r]
    assert margins[-1] > margins[0] + 0.2, margins
    rows = eval_rows(str(ROOT / "assets" / "data" / "support_eval.jsonl"), limit=48)
    scores = []
    for target in (sft_dir.name, run_dir.name):
        loaded = load_for_chat(target, ws)
        scores.append(evaluate_model(target, loaded.model, loaded.tokenizer, rows).exact_match)
    assert scores[1] >= scores[0] - 2 / 48, scores


@pytest.mark.parametrize("flipped, side, choice, revealed", [
    (False, "left", "a", "A was run-x, B was tiny."), (True, "left", "b", "A was tiny, B was run-x."),
    (True, "right", "a", "A was tiny, B was run-x."), (False, "tie", "tie", "A was run-x, B was tiny."),
])
def test_a_vote_reveals_the_sources_of_the_sides_shown(tmp_path, flipped, side, choice, revealed):
    from studio.prefs.session import ShownPair, cast_vote

    store = PreferenceStore(tmp_path / "p.sqlite")
    pid = store.add_pair("Q", "from run-x", "from tiny", "run-x", "tiny")
    shown = ShownPair(pid, "Q", *(("from tiny", "from run-x") if flipped else ("from run-x", "from tiny")), flipped)
    said = cast_vote(store, shown, side, "ann", edited=shown.left if side == "left" else "", reason="")
    assert said == f"Vote stored for pair #{pid}. {revealed}"  # an unchanged winner is no rewrite
    vote = store.vote_rows()[0]
    assert (vote["choice"], vote["edited"], vote["flipped"]) == (choice, None, int(flipped))


def test_an_overlong_rewrite_or_reason_is_refused_and_stores_nothing(tmp_path):
    from studio.prefs.session import MAX_REASON_CHARS, MAX_REWRITE_CHARS, ShownPair, cast_vote

    store = PreferenceStore(tmp_path / "p.sqlite")
    pid = store.add_pair("Q", "first", "second", "run-x", "tiny")
    shown = ShownPair(pid, "Q", "first", "second", False)
    for edited, reason, what in (("x" * (MAX_REWRITE_CHARS + 1), "", "The rewrite"),
                                 ("", "y" * (MAX_REASON_CHARS + 1), "The reason")):
        with pytest.raises(StudioError, match=f"{what} is .* characters long; .* The vote was not stored"):
            cast_vote(store, shown, "left", "ann", edited=edited, reason=reason)
    assert store.vote_rows() == []
    assert cast_vote(store, shown, "left", "ann", edited="x" * MAX_REWRITE_CHARS, reason="ok").startswith("Vote stored")


def test_pairs_already_stored_either_way_round_are_skipped_when_asked(tmp_path):
    store = PreferenceStore(tmp_path / "p.sqlite")
    first = store.add_pair("Q", "second", "first")
    turns = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Q"}]
    added = store.add_pairs([("Q", "first", "second", "", ""), ("Q", "first", "third", "", ""),
                             ("Q", "third", "first", "", ""), (turns, "first", "second", "", "")], skip_stored=True)
    assert added == [first + 1, first + 2]  # stored, or listed before, the other way round counts as stored;
    assert store.pair(first + 2)["prompt_turns"] is not None  # the same last message after other turns does not
    assert store.add_pairs([("Q", "first", "second", "", "")]) == [first + 3]  # without asking, all are added
