"""Studio overhead: a studio run of the tiny LoRA SFT preset against a bare TRL script with the same
model, data and hyper-parameters, run one after the other in one go (target ratio: at most 1.05).

    python bench/train_overhead.py [--steps 60] [--repeats 2]

Both are timed as whole processes, imports and loading included, alternating so that a busy
machine penalises both alike.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

BARE = textwrap.dedent('''
    import sys, torch, yaml, datasets
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer
    cfg = yaml.safe_load(open(sys.argv[1]))
    steps, out = int(sys.argv[2]), sys.argv[3]
    tok = AutoTokenizer.from_pretrained("assets/tiny-model")
    model = AutoModelForCausalLM.from_pretrained("assets/tiny-model", dtype=torch.float32)
    ds = datasets.load_dataset("json", data_files="assets/data/support_sft.jsonl", split="train")
    lo, t = cfg["lora"], cfg["train"]
    args = SFTConfig(output_dir=out, learning_rate=t["learning_rate"], max_steps=steps,
                     per_device_train_batch_size=t["batch_size"], warmup_steps=t.get("warmup_ratio", 0.0),
                     lr_scheduler_type=t.get("scheduler", "linear"), logging_steps=t.get("logging_steps", 5),
                     save_strategy="no", report_to="none", use_cpu=True, bf16=False, disable_tqdm=True,
                     max_length=cfg["data"]["max_length"], assistant_only_loss=True, seed=t.get("seed", 42),
                     gradient_checkpointing=False)
    peft = LoraConfig(r=lo["r"], lora_alpha=lo["alpha"], lora_dropout=lo["dropout"], target_modules=lo["targets"],
                      task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tok, peft_config=peft)
    trainer.train()
    trainer.save_model(out + "/adapter")
''')


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        sys.exit(f"{cmd[:4]} failed: {out.stderr[-1500:]}")
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    preset = ROOT / "presets" / "tiny-sft-lora.yaml"
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "bare_trl.py"
        script.write_text(BARE)
        studio_times, bare_times = [], []
        for i in range(args.repeats):
            bare_times.append(timed([sys.executable, str(script), str(preset), str(args.steps), f"{tmp}/bare{i}"]))
            studio_times.append(timed([sys.executable, "-m", "studio", "train", str(preset), "--workspace",
                                       f"{tmp}/ws", "--quiet", "--set", f"train.max_steps={args.steps}",
                                       "--set", "train.save_steps=0"]))
            print(f"round {i + 1}: bare TRL {bare_times[-1]:.1f} s, studio {studio_times[-1]:.1f} s", flush=True)
    s, b = statistics.median(studio_times), statistics.median(bare_times)
    print(f"median: studio {s:.1f} s, bare TRL {b:.1f} s, ratio {s / b:.3f} (target <= 1.05)")


if __name__ == "__main__":
    main()
