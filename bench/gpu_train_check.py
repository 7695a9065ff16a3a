"""The studio's training path on a GPU: the tiny LoRA and QLoRA presets with precision 'auto'
(bf16 where supported) and a real bitsandbytes 4-bit base, each timed, then scored on the held-out set.

    python bench/gpu_train_check.py [--steps 150]

Prints the device, and for each run its wall time, steps and exact match on the held-out set.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def studio(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "studio", *args], capture_output=True, text=True, cwd=ROOT)


def main() -> None:
    import torch

    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=150)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("no CUDA device here")
    print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}", flush=True)
    ws = tempfile.mkdtemp(prefix="studio-gpu-")
    runs = {
        "lora bf16": ["presets/tiny-sft-lora.yaml", "--set", "train.precision=auto"],
        "qlora nf4 bf16": ["presets/tiny-sft-qlora.yaml", "--set", "train.precision=auto",
                           "--set", "quant.compute_dtype=bfloat16"],
        "full bf16": ["presets/tiny-sft-full.yaml", "--set", "train.precision=auto"],
    }
    for label, argv in runs.items():
        start = time.perf_counter()
        out = studio("train", *argv, "--workspace", ws, "--quiet", "--set", f"train.max_steps={args.steps}",
                     "--set", "train.save_steps=0")
        wall = time.perf_counter() - start
        if out.returncode != 0:
            print(f"{label}: FAILED {out.stderr.strip()[-800:]}", flush=True)
            continue
        run_id = out.stdout.split()[1]
        status = json.loads((Path(ws) / "runs" / run_id / "status.json").read_text())
        score = studio("eval", run_id, "--data", "assets/data/support_eval.jsonl", "--json", "--workspace", ws)
        em = json.loads(score.stdout)["exact_match"] if score.returncode == 0 else score.stderr.strip()[-300:]
        print(f"{label}: {wall:.1f} s wall for {status.get('step')} steps, exact match {em}", flush=True)


if __name__ == "__main__":
    main()
