"""The tiny LoRA SFT preset on this machine: `studio train` against two bare TRL scripts, alternating.

    python bench/train_overhead.py [--steps 60] [--repeats 5] [--no-naive]

    tuned   a bare TRL script tuned by hand with the preset's model, data and hyper-parameters (fp32, no
            gradient checkpointing): the studio should be within 1.05x of it
    naive   a bare TRL script with TRL's own defaults for everything the preset does not name (on a CPU
            that means bf16 and gradient checkpointing, batch 8, max length 1024): the studio should be
            at least 5x faster. It trains the same number of rows (twice the steps at half the batch).

The studio run leaves out the preset's periodic evaluation, which the bare scripts do not do. Each is
timed as a whole process (imports, loading, training, saving) and by the Trainer's own
train_runtime (the training loop alone); rounds alternate so a busy machine penalises all alike. The
seconds between two log events (every 5 steps; the median over a run) give the loop's steady pace without
its first steps, compared within each round.
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
    import json, time
    from transformers import TrainerCallback
    class LogTimes(TrainerCallback):  # the seconds since the loop began at each log, as the studio records them
        def on_train_begin(self, args, state, control, **kw):
            self.began, self.marks = time.time(), {}
        def on_log(self, args, state, control, logs=None, **kw):
            self.marks.setdefault(state.global_step, time.time() - self.began)
        def on_train_end(self, args, state, control, **kw):
            print("log_times", json.dumps(sorted(self.marks.items())))
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
    trainer.add_callback(LogTimes())
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


def timed(cmd: list[str], workspace: str | None = None) -> tuple[float, float, float | None]:
    """Whole-process seconds, the Trainer's train_runtime, and the median seconds between two log events
    (the steady pace of the loop, without its first steps; None for a script that does not report it)."""
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        sys.exit(f"{cmd[:4]} failed: {out.stderr[-1500:]}")
    wall = time.perf_counter() - start
    if workspace:  # the studio's metrics records hold the loop's time at each log, the last the Trainer's summary
        lines = sorted(Path(workspace, "runs").glob("*/metrics.jsonl"))[-1].read_text().splitlines()
        records = [json.loads(line) for line in lines]
        marks = sorted({r["step"]: r["time"] for r in reversed(records) if "loss" in r}.items())
        return wall, float(records[-1]["train_runtime"]), _pace(marks)
    found = {line.split()[0]: line.split(maxsplit=1)[1] for line in out.stdout.splitlines()
             if line.startswith(("train_runtime", "log_times"))}
    marks = json.loads(found["log_times"]) if "log_times" in found else []
    return wall, float(found["train_runtime"].split()[0]), _pace(marks)


def _pace(marks: list) -> float | None:
    """The median seconds between consecutive log events."""
    gaps = [b[1] - a[1] for a, b in zip(marks, marks[1:])]
    return statistics.median(gaps) if gaps else None


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
                                                 for k, v in times.items() if v)
                  + f"; between logs studio {times['studio'][-1][2]:.2f} s, tuned {times['tuned'][-1][2]:.2f} s",
                  flush=True)
    med = {k: (statistics.median(w for w, _, _ in v), statistics.median(t for _, t, _ in v)) for k, v in times.items() if v}
    spread = {k: (min(t for _, t, _ in v), max(t for _, t, _ in v)) for k, v in times.items() if v}
    for k, (wall, train) in med.items():
        print(f"{k:<7} median {wall:6.1f} s whole, {train:6.1f} s training (range {spread[k][0]:.1f}-{spread[k][1]:.1f})")
    s, b = med["studio"], med["tuned"]
    print(f"studio / tuned bare TRL: {s[0] / b[0]:.3f} whole, {s[1] / b[1]:.3f} training (target <= 1.05)")
    # each round's two runs follow each other, so their ratio is less touched by the machine's slow spells
    paced = sorted(st[2] / tu[2] for st, tu in zip(times["studio"], times["tuned"]))
    print(f"studio / tuned, seconds between logs, per round: median {statistics.median(paced):.3f} "
          f"(range {paced[0]:.3f}-{paced[-1]:.3f}; {', '.join(f'{r:.2f}' for r in paced)})")
    if "naive" in med:
        n = med["naive"]
        print(f"naive TRL defaults / studio: {n[0] / s[0]:.2f}x whole, {n[1] / s[1]:.2f}x training (target >= 5)")


if __name__ == "__main__":
    main()
