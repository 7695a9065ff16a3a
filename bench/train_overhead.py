"""The tiny LoRA SFT preset on this machine: `studio train` against two bare TRL scripts, alternating.

    python bench/train_overhead.py [--steps 60] [--repeats 5] [--no-naive]

    tuned   a bare TRL script tuned by hand with the preset's model, data and hyper-parameters (fp32, no
            gradient checkpointing): the studio should be within 1.05x of it
    naive   a bare TRL script with TRL's own defaults for everything the preset does not name (on a CPU
            that means bf16 and gradient checkpointing, batch 8, max length 1024): the studio should be
            at least 5x faster. It trains the same number of rows (twice the steps at half the batch).

The studio run leaves out the preset's periodic evaluation, which the bare scripts do not do. Each is
timed as a whole process (imports, loading, training, saving) and by the Trainer's own
train_runtime (the training loop alone); rounds alternate so a busy machine penalises all alike.
"""

from __future__ import annotations

import argparse
import json
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
    result = trainer.train()
    trainer.save_model(out + "/adapter")
    print("train_runtime", result.metrics["train_runtime"])
''')

NAIVE = textwrap.dedent('''
    import sys, datasets
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer
    steps, out = int(sys.argv[2]), sys.argv[3]
    ds = datasets.load_dataset("json", data_files="assets/data/support_sft.jsonl", split="train")
    args = SFTConfig(output_dir=out, max_steps=steps, save_strategy="no", report_to="none", use_cpu=True,
                     disable_tqdm=True)
    trainer = SFTTrainer(model="assets/tiny-model", args=args, train_dataset=ds,
                         peft_config=LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM"))
    result = trainer.train()
    trainer.save_model(out + "/adapter")
    print("train_runtime", result.metrics["train_runtime"], "bf16", args.bf16, "checkpointing",
          args.gradient_checkpointing, "batch", args.per_device_train_batch_size)
''')


def timed(cmd: list[str], workspace: str | None = None) -> tuple[float, float]:
    """Whole-process seconds and the Trainer's train_runtime."""
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        sys.exit(f"{cmd[:4]} failed: {out.stderr[-1500:]}")
    wall = time.perf_counter() - start
    if workspace:  # the studio's last metrics record holds the Trainer's summary
        last = sorted(Path(workspace, "runs").glob("*/metrics.jsonl"))[-1].read_text().splitlines()[-1]
        return wall, float(json.loads(last)["train_runtime"])
    words = next(line for line in out.stdout.splitlines() if line.startswith("train_runtime")).split()
    return wall, float(words[1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-naive", action="store_true")
    args = ap.parse_args()
    preset = ROOT / "presets" / "tiny-sft-lora.yaml"
    times: dict[str, list[tuple[float, float]]] = {"tuned": [], "studio": [], "naive": []}
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "bare_trl.py").write_text(BARE)
        (Path(tmp) / "naive_trl.py").write_text(NAIVE)
        for i in range(args.repeats):
            times["tuned"].append(timed([sys.executable, f"{tmp}/bare_trl.py", str(preset), str(args.steps),
                                         f"{tmp}/bare{i}"]))
            ws = f"{tmp}/ws{i}"
            times["studio"].append(timed([sys.executable, "-m", "studio", "train", str(preset), "--workspace", ws,
                                          "--quiet", "--set", f"train.max_steps={args.steps}",
                                          "--set", "train.save_steps=0", "--set", "data.eval=null"], ws))
            if not args.no_naive:  # batch 8 against the preset's 16: twice the steps for the same rows
                times["naive"].append(timed([sys.executable, f"{tmp}/naive_trl.py", str(preset),
                                             str(2 * args.steps), f"{tmp}/naive{i}"]))
            print(f"round {i + 1}: " + ", ".join(f"{k} {v[-1][0]:.1f} s ({v[-1][1]:.1f} s training)"
                                                 for k, v in times.items() if v), flush=True)
    med = {k: (statistics.median(w for w, _ in v), statistics.median(t for _, t in v)) for k, v in times.items() if v}
    spread = {k: (min(t for _, t in v), max(t for _, t in v)) for k, v in times.items() if v}
    for k, (wall, train) in med.items():
        print(f"{k:<7} median {wall:6.1f} s whole, {train:6.1f} s training (range {spread[k][0]:.1f}-{spread[k][1]:.1f})")
    s, b = med["studio"], med["tuned"]
    print(f"studio / tuned bare TRL: {s[0] / b[0]:.3f} whole, {s[1] / b[1]:.3f} training (target <= 1.05)")
    if "naive" in med:
        n = med["naive"]
        print(f"naive TRL defaults / studio: {n[0] / s[0]:.2f}x whole, {n[1] / s[1]:.2f}x training (target >= 5)")


if __name__ == "__main__":
    main()
