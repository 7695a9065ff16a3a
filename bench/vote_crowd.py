"""Votes under load: 20 annotators cast 1,000 votes through the app's API (gradio_client, one login each)
while the server is killed with SIGKILL and started again after 300 acknowledged votes.

    python bench/vote_crowd.py [--annotators 20] [--votes-each 50]

Prints how many votes were acknowledged and stored (every acknowledged vote must be stored, none
twice), and the time a vote takes as the annotator sees it (one API call: store the vote and fetch the
next pair; median and 95th percentile), beside the time of the same work in-process, with no server.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from crowd import run_crowd  # noqa: E402

from studio.prefs.store import PreferenceStore  # noqa: E402
from studio.workspace import Workspace  # noqa: E402


def in_process(store: PreferenceStore, voter: str, n: int = 200) -> list[float]:
    """Store a vote and pick the next pair, as the vote handler does, with no server in between."""
    out = []
    for _ in range(n):
        started = time.perf_counter()
        pair = store.next_pair(voter)
        if pair is None:
            break
        store.vote(pair["id"], "a", voter=voter)
        store.next_pair(voter)
        store.counts(), store.progress(voter), store.export_rows()
        out.append(time.perf_counter() - started)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--annotators", type=int, default=20)
    ap.add_argument("--votes-each", type=int, default=50)
    args = ap.parse_args()
    ws = Path(tempfile.mkdtemp(prefix="studio-crowd-")) / "ws"
    store = PreferenceStore(Workspace.open(ws).prefs_db)
    store.add_pairs([(f"Question {n}?", f"Answer one to {n}.", f"Answer two to {n}.", "run-x", "tiny")
                     for n in range(args.votes_each + 10)], source="bench")
    total = args.annotators * args.votes_each
    started = time.perf_counter()
    crowd, restarts = run_crowd(ws, args.annotators, args.votes_each, kill_after=int(total * 0.3), limit=1800)
    wall = time.perf_counter() - started
    stored = [(v["voter"], v["pair_id"]) for v in store.vote_rows()]
    lost = set(crowd.acknowledged) - set(stored)
    lat = sorted(crowd.latencies)
    p95 = lat[int(0.95 * (len(lat) - 1))] if lat else float("nan")
    print(f"{args.annotators} annotators, {len(set(crowd.acknowledged))} votes acknowledged of {total} wanted, "
          f"{len(stored)} stored, {len(stored) - len(set(stored))} stored twice, {len(lost)} acknowledged but lost; "
          f"{restarts} SIGKILL + restart; {len(crowd.errors)} calls failed while the server was down; {wall:.0f} s")
    print(f"vote as the annotator sees it (API round trip, {args.annotators} at once): median "
          f"{statistics.median(lat) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms")
    store.add_pairs([(f"Later question {n}?", "One.", "Two.", "run-x", "tiny") for n in range(40)], source="bench")
    solo, _ = run_crowd(ws, 1, 40, kill_after=10**9, limit=600)
    one = sorted(solo.latencies)
    print(f"vote as one annotator alone sees it (API round trip, {len(one)} votes): median "
          f"{statistics.median(one) * 1000:.0f} ms, p95 {one[int(0.95 * (len(one) - 1))] * 1000:.0f} ms")
    alone = sorted(in_process(PreferenceStore(ws / "prefs.sqlite"), "solo"))
    print(f"same work in-process (store the vote, next pair, counts; {len(alone)} votes): median "
          f"{statistics.median(alone) * 1000:.1f} ms, p95 {alone[int(0.95 * (len(alone) - 1))] * 1000:.1f} ms "
          "(target < 300 ms)")


if __name__ == "__main__":
    main()
