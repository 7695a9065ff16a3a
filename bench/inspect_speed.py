"""How long `studio data inspect` takes on big files (target: under 10 s on 2 cores for each).

    python bench/inspect_speed.py [--shape chat|alpaca|both] [--rows N] [--model tiny]

Generates the file in a temporary folder, then times the whole inspection as the CLI runs it: read,
detect, normalise, validate, token lengths.
- chat: 100,000 rows of JSONL messages of realistic length, with a few broken rows;
- alpaca: one JSON array of 52,000 instruction/input/output rows, about 45 MB, as the Alpaca-GPT4
  release is shaped (long answers), with a few empty outputs.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
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


def make_alpaca(path: Path, rows: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    out = []
    for i in range(rows):
        out.append({"instruction": " ".join(rng.choices(WORDS, k=rng.randint(6, 30))).capitalize() + "?",
                    "input": " ".join(rng.choices(WORDS, k=rng.randint(0, 40))) if i % 3 == 0 else "",
                    "output": "" if i % 1013 == 0 else " ".join(rng.choices(WORDS, k=rng.randint(40, 220)))})
    path.write_text(json.dumps(out, indent=4), encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", choices=["chat", "alpaca", "both"], default="both")
    ap.add_argument("--rows", type=int, default=None, help="rows per file (default 100,000 chat, 52,000 alpaca)")
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    for shape in (["chat", "alpaca"] if args.shape == "both" else [args.shape]):
        measure(shape, args.rows or {"chat": 100_000, "alpaca": 52_000}[shape], args.model, args.repeats)


def measure(shape: str, rows: int, model: str, repeats: int) -> None:
    """Time `repeats` inspections of one generated file; print each, and the median against the target."""
    walls = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("big.jsonl" if shape == "chat" else "alpaca_data.json")
        (make_file if shape == "chat" else make_alpaca)(path, rows)
        size = path.stat().st_size / 2**20
        for _ in range(repeats):
            start = time.perf_counter()
            out = subprocess.run([sys.executable, "-m", "studio", "data", "inspect", str(path), "--json",
                                  "--model", model], capture_output=True, text=True)
            walls.append(time.perf_counter() - start)
            if out.returncode != 0:
                sys.exit(f"inspect failed: {out.stderr.strip()}")
        report = json.loads(out.stdout)
    print(f"{shape}: {report['rows']} rows ({size:.1f} MiB), usable {report['usable_rows']}, "
          f"issues {sum(report['issue_counts'].values())}, tokens max {report['tokens']['max']}")
    median = statistics.median(walls)
    print(f"  inspect wall time over {repeats} runs: {', '.join(f'{w:.2f}' for w in walls)} s; median {median:.2f} s "
          f"(target < 10 s, ratio {median / 10:.2f})")


if __name__ == "__main__":
    main()
