"""What the demo's figures rest on: the unseen phrasings are unseen by the tiny model's pretraining
corpus and by the SFT data, and the trivial answerers printed beside the tuned model are real."""

from __future__ import annotations

import re

import pytest
from helpers import HOUSE_STEPS, ROOT

from studio.demo.baselines import KeywordVote, NearestNeighbour, exact_match, load_conversations
from studio.demo.corpus import pretraining_documents
from studio.demo.world import CORPUS_PHRASINGS, PHRASINGS, World

DATA = ROOT / "assets" / "data"
THRESHOLD = 0.5
"""The share of 48 held-out emails a short run of the tiny preset (conftest's HOUSE_STEPS, 80) must then
answer exactly (measured on 2 cores: 0.71 after 80 steps, 0.56 after 60, 0.92 after 100; the untuned model 0)."""


def _pattern(phrasing: str) -> re.Pattern[str]:
    parts = re.split(r"\{[po]\}", phrasing)
    return re.compile(r".+?".join(re.escape(p) for p in parts))


def _texts(documents) -> list[str]:
    return [d if isinstance(d, str) else "\n".join(m["content"] for m in d) for d in documents]


def test_unseen_phrasings_are_in_neither_the_corpus_nor_the_sft_data():
    world = World.make(0)
    unseen = [_pattern(p) for ps in world.unseen_phrasings.values() for p in ps]
    assert len(unseen) == 24
    corpus = _texts(pretraining_documents(world, 4000, seed=0))
    seen = [_pattern(p) for ps in world.sft.phrasings.values() for p in ps]
    assert sum(1 for t in corpus if any(p.search(t) for p in seen)) > 1000  # the check can find phrasings
    assert not [t for t in corpus if any(p.search(t) for p in unseen)]
    sft = (DATA / "support_sft.jsonl").read_text(encoding="utf-8")
    assert not any(p.search(sft) for p in unseen)
    asked = (DATA / "support_eval_unseen.jsonl").read_text(encoding="utf-8").splitlines()
    assert all(any(p.search(row) for p in unseen) for row in asked)


def test_the_corpus_own_phrasings_match_no_phrasing_of_the_sft_or_eval_data():
    """Whichever phrasings a seed keeps unseen, the corpus's extra ways of asking are none of them."""
    every = [_pattern(p) for ps in PHRASINGS.values() for p in ps]
    extra = [p.format(p="oak lamp", o="12345") for ps in CORPUS_PHRASINGS.values() for p in ps]
    assert len(extra) == 48 and not [e for e in extra if any(p.search(e) for p in every)]


def test_trivial_answerers_route_by_words_alone():
    train = [("Please refund order 1.", "R"), ("I want my money back.", "R"), ("Cancel order 2.", "C"),
             ("Please cancel it now.", "C"), ("Where is my parcel?", "L")]
    vote, neighbour = KeywordVote(train), NearestNeighbour(train)
    assert vote.answer("A refund please") == "R" and vote.answer("cancel my order") == "C"
    assert neighbour.answer("where is the parcel") == "L"
    assert exact_match(vote, [("refund!", "R"), ("parcel where", "C")]) == 0.5


def test_the_shipped_eval_sets_are_not_trivially_solved_by_nearest_neighbour():
    train = load_conversations(DATA / "support_sft.jsonl")
    unseen = load_conversations(DATA / "support_eval_unseen.jsonl")
    assert len(train) == 1200 and len(unseen) == 80
    assert exact_match(NearestNeighbour(train), unseen) < 0.6  # phrasings matter on this set


@pytest.mark.slow
def test_a_short_lora_run_teaches_the_house_replies(house_sft_run):
    """The demo's claim at small scale: from 0% the untuned model rises past a clear bar on held-out emails
    after a short run of the tiny preset's recipe (bench/tiny_sft.py measures the full run over seeds)."""
    from studio.chat.engine import load_for_chat
    from studio.chat.evaluate import eval_rows, evaluate_model
    from studio.train.metrics import read_all
    from studio.workspace import Workspace

    rows = eval_rows(str(DATA / "support_eval.jsonl"), limit=48)
    base = load_for_chat("tiny")
    assert evaluate_model("tiny", base.model, base.tokenizer, rows).exact_match == 0.0
    run_dir = house_sft_run  # the tiny preset's recipe
    assert read_all(run_dir)[-1]["step"] == HOUSE_STEPS
    tuned = load_for_chat(run_dir.name, Workspace.open(run_dir.parent.parent))
    assert evaluate_model(run_dir.name, tuned.model, tuned.tokenizer, rows).exact_match >= THRESHOLD
