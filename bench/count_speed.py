"""How fast the Method tab answers: first build of a 70B-class model's shapes, then each slider change.

    python bench/count_speed.py [--model meta-llama/Llama-3.1-70B] [--steps 500]

A "slider change" is what the tab does when the rank moves: count trainable parameters and estimate
memory (the core), and the tab's whole handler, which also redraws the rank chart and serialises it as
Gradio does. The first build runs in a fresh process so that import costs are measured, not hidden.
Targets (from the issue): p95 under 20 ms per change, first build under 3 s.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FIRST_BUILD = """
import json, time
t0 = time.perf_counter()
import torch, transformers  # noqa: F401
from transformers import AutoModelForCausalLM  # noqa: F401
t1 = time.perf_counter()
from studio.models.counting import model_shapes
shapes = model_shapes({model!r})
t2 = time.perf_counter()
print(json.dumps({{"imports": t1 - t0, "build": t2 - t1, "layers": len(shapes.linears), "base": shapes.base}}))
"""


def first_build(model: str) -> dict:
    out = subprocess.run([sys.executable, "-c", FIRST_BUILD.format(model=model)], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def p95(samples: list[float]) -> float:
    return sorted(samples)[int(0.95 * (len(samples) - 1))]


def slider_changes(model: str, steps: int) -> tuple[list[float], list[float]]:
    from studio.models.counting import count_trainable_params, model_shapes
    from studio.models.memory import TrainingSetup, estimate_memory, fit_verdict
    from studio.ui.tabs import method

    shapes = model_shapes(model)
    target_sets = [["q_proj", "v_proj"], shapes.attention_targets, ["all-linear"]]
    choices = {"model.name": model, "method.name": "lora", "method.stage": "sft", "lora.r": 8, "lora.alpha": 16,
               "lora.dropout": 0.05, "lora.targets": ["q_proj", "v_proj"], "lora.dora": False, "lora.rslora": False,
               "quant.bits": 4, "quant.quant_type": "nf4", "quant.double_quant": True,
               "quant.compute_dtype": "bfloat16"}
    estimate = {"precision": "bf16", "batch": 1, "seq": 512, "checkpointing": False, "gpu": "80 GB (H100, A100 80GB)"}
    method.refresh(model, choices, estimate)
    rng = random.Random(0)
    core, handler = [], []
    for _ in range(steps):
        r, targets, dora = rng.randint(1, 256), rng.choice(target_sets), rng.random() < 0.3
        kind = rng.choice(["lora", "qlora", "full"])
        started = time.perf_counter()
        count = count_trainable_params(shapes, kind, r, targets, dora=dora)
        est = estimate_memory(shapes, count, kind, TrainingSetup(batch_size=4, seq_len=1024), rank=r)
        fit_verdict(est, 80.0, "H100", kind)
        core.append(time.perf_counter() - started)
        choices.update({"method.name": kind, "lora.r": r, "lora.dora": dora,
                        "lora.targets": targets if targets != ["all-linear"] else shapes.target_names})
        started = time.perf_counter()
        out = method.refresh(model, choices, estimate)
        out[10].to_json()  # what gr.Plot does with the figure before sending it
        handler.append(time.perf_counter() - started)
    return core, handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="meta-llama/Llama-3.1-70B")
    parser.add_argument("--steps", type=int, default=500)
    args = parser.parse_args()

    cold = first_build(args.model)
    print(f"model                 {args.model}: {cold['base']:,} parameters, {cold['layers']} linear layers")
    print(f"imports (torch, transformers)  {cold['imports']:.2f} s  (paid once per process, shared by every tab)")
    print(f"first build of shapes          {cold['build']:.2f} s  (target < 3 s: {3 / cold['build']:.1f}x under)")
    core, handler = slider_changes(args.model, args.steps)
    print(f"slider change, counts + memory p95 {p95(core) * 1000:.2f} ms  median {sorted(core)[len(core) // 2] * 1000:.2f} ms"
          f"  (target < 20 ms: {0.020 / p95(core):.0f}x under)")
    print(f"slider change, whole tab handler with chart p95 {p95(handler) * 1000:.2f} ms  "
          f"median {sorted(handler)[len(handler) // 2] * 1000:.2f} ms  (target < 20 ms: "
          f"{0.020 / p95(handler):.1f}x under)")


if __name__ == "__main__":
    main()
