"""Chat on the tiny model: time to the first streamed token (target: within 0.3 s of sending on 2
CPU cores), and the merged model's greedy answers against the adapter-attached model's (must match).

    python bench/chat_latency.py [--run RUN --workspace DIR] [--trials 20]

Without --run, a short LoRA run of the tiny preset is trained first (about 20 s).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from studio.chat.engine import GenerationSettings, build_messages, load_for_chat, stream_reply  # noqa: E402
from studio.chat.evaluate import eval_rows, generate_answers  # noqa: E402
from studio.workspace import Workspace  # noqa: E402


def first_token_times(target: str, ws: Workspace, trials: int) -> list[float]:
    loaded = load_for_chat(target, ws)
    prompts = [r["messages"][1]["content"] for r in eval_rows(str(ROOT / "assets/data/support_eval.jsonl"), trials)]
    list(stream_reply(loaded, build_messages([], prompts[0]), GenerationSettings(max_new_tokens=4)))  # warm-up
    times = []
    for text in prompts:
        start = time.perf_counter()
        gen = stream_reply(loaded, build_messages([], text, "You answer customer emails."),
                           GenerationSettings(max_new_tokens=64))
        next(gen)
        times.append(time.perf_counter() - start)
        for _ in gen:  # let it finish so the next trial starts on an idle CPU
            pass
    return times


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run")
    ap.add_argument("--workspace")
    ap.add_argument("--trials", type=int, default=20)
    args = ap.parse_args()
    ws = Workspace.open(args.workspace or tempfile.mkdtemp(prefix="studio-chat-bench-"))
    run = args.run
    if run is None:
        out = subprocess.run([sys.executable, "-m", "studio", "train", str(ROOT / "presets/tiny-sft-lora.yaml"),
                              "--workspace", str(ws.root), "--quiet", "--set", "train.max_steps=40"],
                             capture_output=True, text=True, cwd=ROOT)
        if out.returncode != 0:
            sys.exit(out.stderr)
        run = out.stdout.split()[1]
    for target in ("tiny", run):
        t = sorted(first_token_times(target, ws, args.trials))
        p95 = t[min(len(t) - 1, int(0.95 * len(t)))]
        print(f"{target}: first token median {statistics.median(t) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms "
              f"(target 300 ms, ratio {p95 / 0.3:.2f})")

    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    rows = eval_rows(str(ROOT / "assets/data/support_eval.jsonl"))
    merged = load_for_chat(run, ws)
    base = AutoModelForCausalLM.from_pretrained(ROOT / "assets/tiny-model", dtype=torch.float32)
    attached = PeftModel.from_pretrained(base, str(ws.run_dir(run) / "adapter")).eval()
    tok = AutoTokenizer.from_pretrained(ROOT / "assets/tiny-model")
    a, b = generate_answers(merged.model, merged.tokenizer, rows), generate_answers(attached, tok, rows)
    same = sum(x == y for x, y in zip(a, b))
    print(f"merged vs adapter-attached greedy answers identical: {same}/{len(rows)}")


if __name__ == "__main__":
    main()
