"""The demo promise, measured: the built-in tiny model learns the support-desk job in minutes on a CPU.

    python bench/tiny_sft.py [--preset presets/tiny-sft-lora.yaml]

1. exact match of the base model on the held-out eval set (target: at most 10%);
2. `studio train` on the tiny LoRA SFT preset, timed as a user runs it (target: under 5 minutes on
   2 CPU cores, aim 3);
3. exact match of the tuned model on the same eval set (target: at least 80%), and on the eval rows
   written in phrasings the training data never used.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def evaluate(target: str, data: Path, ws: Path) -> dict:
    out = subprocess.run([sys.executable, "-m", "studio", "eval", target, "--data", str(data), "--json",
                          "--workspace", str(ws)], capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        sys.exit(f"eval failed: {out.stderr.strip()}")
    return json.loads(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default=str(ROOT / "presets" / "tiny-sft-lora.yaml"))
    ap.add_argument("--workspace", help="keep the run here (default: a temporary folder)")
    args = ap.parse_args()
    ws = Path(args.workspace or tempfile.mkdtemp(prefix="studio-bench-"))
    main_eval = ROOT / "assets" / "data" / "support_eval.jsonl"
    unseen = ROOT / "assets" / "data" / "support_eval_unseen.jsonl"
    print(f"machine: {os.cpu_count()} CPU cores; workspace {ws}", flush=True)

    base = evaluate("tiny", main_eval, ws)
    print(f"base exact match: {base['exact_match']:.1%} on {base['rows']} held-out rows (target <= 10%)", flush=True)

    start = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "studio", "train", args.preset, "--workspace", str(ws), "--quiet"],
                         capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - start
    if run.returncode != 0:
        sys.exit(f"training failed: {run.stderr.strip()}")
    run_id = run.stdout.splitlines()[0].split()[1]
    print(f"studio train wall time: {wall:.0f} s (target < 300 s, aim 180 s); run {run_id}", flush=True)

    tuned = evaluate(run_id, main_eval, ws)
    tuned_unseen = evaluate(run_id, unseen, ws)
    print(f"tuned exact match: {tuned['exact_match']:.1%} (target >= 80%), "
          f"unseen phrasings: {tuned_unseen['exact_match']:.1%}")
    print(f"ratios: train time / 300 s = {wall / 300:.2f}; tuned / 80% = {tuned['exact_match'] / 0.8:.2f}; "
          f"base / 10% = {base['exact_match'] / 0.1:.2f}")


if __name__ == "__main__":
    main()
