"""Annotators voting at once through the app's API, with the server killed (SIGKILL) and started again
midway: every vote the server acknowledged is stored, and no annotator's vote on a pair is stored twice."""

from __future__ import annotations

import pytest
from crowd import run_crowd

from studio.prefs.store import PreferenceStore
from studio.workspace import Workspace

pytestmark = pytest.mark.slow


def test_acknowledged_votes_survive_a_killed_server(tmp_path):
    ws = tmp_path / "ws"
    store = PreferenceStore(Workspace.open(ws).prefs_db)
    store.add_pairs([(f"Question {n}?", f"Answer one to {n}.", f"Answer two to {n}.", "run-x", "tiny")
                     for n in range(20)], source="test")
    crowd, restarts = run_crowd(ws, annotators=5, votes_each=12, kill_after=20, limit=300)
    assert restarts == 1 and crowd.errors  # the kill was felt by the annotators
    stored = [(v["voter"], v["pair_id"]) for v in store.vote_rows()]
    assert len(stored) == len(set(stored))  # none twice
    assert set(crowd.acknowledged) <= set(stored)  # every acknowledged vote is there
    assert len(set(crowd.acknowledged)) == 60  # and the crowd finished after the restart
