"""The demo's figures, measured: what LoRA SFT on the tiny model adds, over several seeds, beside the
untuned model and two trivial answerers on the same rows.

    python bench/tiny_sft.py [--seeds 0 1 2] [--preset presets/tiny-sft-lora.yaml]

The job is routing: each customer email gets the house reply for its kind of request (one of eight
fixed replies). Two held-out sets: `support_eval.jsonl` (160 emails from customers, products, order
numbers and greetings the SFT data never uses, asked in phrasings it does use) and
`support_eval_unseen.jsonl` (80 emails asked in 24 phrasings that neither the SFT data nor the tiny
model's pretraining corpus contains).

For each seed: `studio train` on the preset with `train.seed` set, timed as a user runs it, then
`studio eval` on both sets. Printed beside them: the base model, a keyword vote and a word-overlap
nearest neighbour (studio.demo.baselines), both learned from the SFT file alone.
Targets: unseen-phrasing exact match >= 80% mean and >= 75% for every seed, main set >= 95%, and
training <= 150 s per seed on 2 idle cores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from studio.demo.baselines import KeywordVote, NearestNeighbour, exact_match, load_conversations  # noqa: E402

DATA = ROOT / "assets" / "data"
SETS = {"main": DATA / "support_eval.jsonl", "unseen": DATA / "support_eval_unseen.jsonl"}


def evaluate(target: str, data: Path, ws: Path) -> float:
    out = subprocess.run([sys.executable, "-m", "studio", "eval", target, "--data", str(data), "--json",
                          "--workspace", str(ws)], capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        sys.exit(f"eval failed: {out.stderr.strip()}")
    return json.loads(out.stdout)["exact_match"]


def train(preset: str, seed: int, ws: Path) -> tuple[str, float]:
    start = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "studio", "train", preset, "--workspace", str(ws), "--quiet",
                          "--set", f"train.seed={seed}"], capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - start
    if run.returncode != 0:
        sys.exit(f"training failed: {run.stderr.strip()}")
    return run.stdout.splitlines()[0].split()[1], wall


def line(name: str, main: float, unseen: float, extra: str = "") -> None:
    print(f"| {name:<34} | {main:>7.1%} | {unseen:>7.1%} |{extra}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default=str(ROOT / "presets" / "tiny-sft-lora.yaml"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--workspace", help="keep the runs here (default: a temporary folder)")
    args = ap.parse_args()
    ws = Path(args.workspace or tempfile.mkdtemp(prefix="studio-bench-"))
    rows = {k: load_conversations(p) for k, p in SETS.items()}
    print(f"machine: {os.cpu_count()} CPU cores; {len(rows['main'])} main and {len(rows['unseen'])} "
          f"unseen-phrasing rows; seeds {args.seeds}; workspace {ws}\n", flush=True)
    print(f"| {'answerer':<34} | {'main':>7} | {'unseen':>7} |\n|{'-' * 36}|{'-' * 9}|{'-' * 9}|")
    line("base tiny model, untuned", *(evaluate("tiny", p, ws) for p in SETS.values()))
    train_rows = load_conversations(DATA / "support_sft.jsonl")
    for name, answerer in (("keyword vote (SFT file)", KeywordVote(train_rows)),
                           ("nearest neighbour (SFT file)", NearestNeighbour(train_rows))):
        line(name, exact_match(answerer, rows["main"]), exact_match(answerer, rows["unseen"]))
    tuned: dict[str, list[float]] = {"main": [], "unseen": []}
    walls = []
    for seed in args.seeds:
        run_id, wall = train(args.preset, seed, ws)
        walls.append(wall)
        for key, path in SETS.items():
            tuned[key].append(evaluate(run_id, path, ws))
        line(f"tuned, seed {seed}", tuned["main"][-1], tuned["unseen"][-1], f" train {wall:.0f} s")
    spread = {k: f"{min(v):.1%}-{max(v):.1%}" for k, v in tuned.items()}
    line(f"tuned, mean of {len(args.seeds)} seeds", statistics.mean(tuned["main"]),
         statistics.mean(tuned["unseen"]), f" range main {spread['main']}, unseen {spread['unseen']}")
    print(f"\ntrain wall time per seed: {', '.join(f'{w:.0f}' for w in walls)} s; "
          f"mean {statistics.mean(walls):.0f} s (target <= 150 s)")
    print(f"targets: unseen mean {statistics.mean(tuned['unseen']):.1%} (>= 80%), worst seed "
          f"{min(tuned['unseen']):.1%} (>= 75%), main mean {statistics.mean(tuned['main']):.1%} (>= 95%)")


if __name__ == "__main__":
    main()
