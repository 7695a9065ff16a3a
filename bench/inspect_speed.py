"""How long `studio data inspect` takes on a 100k-row JSONL file (target: under 10 s on 2 cores).

    python bench/inspect_speed.py [--rows 100000] [--model tiny]

Generates the file in a temporary folder (chat rows of realistic length, with a few broken rows),
then times the whole inspection as the CLI runs it: read, detect, normalise, validate, token lengths.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = ("order parcel refund size colour invoice address delivery week late wrong please thanks help "
         "return exchange account card payment shoes jacket lamp kettle blue green small large").split()


def make_file(path: Path, rows: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(rows):
            q = " ".join(rng.choices(WORDS, k=rng.randint(8, 40)))
            a = " ".join(rng.choices(WORDS, k=rng.randint(10, 60)))
            row = {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
            if i % 997 == 0:
                row["messages"] = row["messages"][:1]  # no answer: a problem the report must list
            fh.write(json.dumps(row) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--model", default="tiny")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.jsonl"
        make_file(path, args.rows)
        size = path.stat().st_size / 2**20
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "studio", "data", "inspect", str(path), "--json",
                              "--model", args.model], capture_output=True, text=True)
        wall = time.perf_counter() - start
        if out.returncode != 0:
            sys.exit(f"inspect failed: {out.stderr.strip()}")
        report = json.loads(out.stdout)
    print(f"rows: {report['rows']} ({size:.1f} MiB), usable {report['usable_rows']}, "
          f"issues {sum(report['issue_counts'].values())}, tokens max {report['tokens']['max']}")
    print(f"inspect wall time: {wall:.2f} s (target < 10 s), ratio to target: {wall / 10:.2f}")


if __name__ == "__main__":
    main()
