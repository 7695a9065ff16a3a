"""Where a training step's time goes: a plain PyTorch loop against the studio's trainer, on one model.

    python bench/step_profile.py [--model qwen2.5-0.5b] [--seq 512] [--batch 8] [--steps 20] [--layers 0]

Builds the model from its shipped config with random weights (bf16), adds LoRA (r 16, all linear layers),
then times (1) a bare loop of forward, backward and fused AdamW on fixed random batches, and (2) the
studio's own `studio train` path in this process under cProfile, printing the functions that took the
most time. The difference between the two per-step times is the trainer's own overhead.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def bare_loop(model_dir: Path, seq: int, batch: int, steps: int, device: str) -> float:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16).to(device)
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM"))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4,
                            fused=device == "cuda")
    ids = torch.randint(10, 4000, (batch, seq), device=device)
    times = []
    for _ in range(steps):
        sync(device)
        t0 = time.perf_counter()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync(device)
        times.append(time.perf_counter() - t0)
    del model, opt
    return sorted(times[3:])[len(times[3:]) // 2]


def sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def main() -> None:
    import torch
    from gpu_speed import make_data, make_model, studio_config

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen2.5-0.5b")
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--layers", type=int, default=0)
    ap.add_argument("--top", type=int, default=30)
    args = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    work = Path(tempfile.mkdtemp(prefix="studio-profile-"))
    model_dir = make_model(args.model, work, args.layers or None, device)
    per_step = bare_loop(model_dir, args.seq, args.batch, args.steps, device)
    print(f"bare loop: {per_step * 1000:.1f} ms per step at {args.batch} x {args.seq} tokens (median after 3)",
          flush=True)
    data = make_data(work / "data.jsonl", args.seq, args.steps * args.batch)
    case = {"model": str(model_dir), "method": "lora", "seq": args.seq, "batch": args.batch, "steps": args.steps,
            "data": str(data)}
    cfg_path = studio_config(case, work / "config.yaml", {"batching": "padded"})
    from studio.cli import main as studio_main

    profile = cProfile.Profile()
    t0 = time.perf_counter()
    profile.enable()
    try:
        studio_main(["train", str(cfg_path), "--workspace", str(work / "ws"), "--quiet"])
    except SystemExit:
        pass
    profile.disable()
    print(f"studio train, whole: {time.perf_counter() - t0:.1f} s", flush=True)
    for metrics in (work / "ws" / "runs").glob("*/metrics.jsonl"):
        import json

        rows = [json.loads(x) for x in metrics.read_text().splitlines()]
        times = [r["time"] for r in rows if "loss" in r]
        if len(times) > 4:
            print(f"studio steps: {(times[-1] - times[3]) / (len(times) - 4) * 1000:.1f} ms per step "
                  f"(logged every step, after 3)", flush=True)
    stats = pstats.Stats(profile)
    stats.sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
