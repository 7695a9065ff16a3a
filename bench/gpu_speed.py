"""Training speed and memory on one GPU: the studio's defaults against the naive TRL recipe, side by side.

    python bench/gpu_speed.py --out results.jsonl [--models qwen2.5-0.5b,llama-2-7b] [--methods lora,qlora]
                              [--seqs 512,2048] [--batch 8] [--steps 30,16] [--warmup 4] [--deadline 420]
    python bench/gpu_speed.py --smoke          # the same path on the CPU with a 2-layer model, in a minute

Each model is built from its shipped config (assets/model-configs) with random weights, saved once in
bf16 beside the built-in tiny tokenizer. The data is `text` rows whose token counts follow a log-normal
law (median a quarter of the max length, sigma 0.8, cut at the max length), as chat data does. For every
model x method x max length, two processes train the same rows for the same steps:

    naive    a bare TRL script: SFTTrainer(model=path) with SFTConfig(fp16=True) and TRL's defaults for
             everything else (fp32 weights under fp16 autocast, gradient checkpointing on, random padded
             batches, no packing); QLoRA: a 4-bit NF4 base with fp16 compute
    studio   `python -m studio train` with the run's speed settings left at auto (bf16, the attention and
             batching auto picks, Liger where installed, fused AdamW, checkpointing only if needed)
    tuned    (models named by --tuned) the bare script tuned by hand: bf16 weights, no checkpointing,
             batches grouped by length, Liger where installed

Both log every step. tokens/s = real (unpadded) tokens, as TRL counts them, between the end of step
`warmup` and the last step, over the wall time between those two logs; process start, loading and saving
are not counted. Peak = torch.cuda.max_memory_allocated() in the training process. MFU = tokens/s x 4N /
the GPU's dense bf16 peak, N = the parameters of every matrix product (all linear layers and the output
layer, not the input embedding); 4N per token is LoRA's forward (2N) and input-gradient (2N) work; the
attention's own products and the recomputation of gradient checkpointing are not counted. The studio's
memory estimate (studio.models.estimate) for the same run is printed beside its measured peak.
One JSON line per run goes to --out, and a table to stdout.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0}
"""Dense bf16 peaks (vendor data sheets, SXM parts) used for MFU; other cards get no MFU."""
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja")


def make_model(name: str, folder: Path, layers: int | None, device: str) -> Path:
    """A model of the shipped config's shape with random weights, saved in bf16."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    out = folder / name
    if (out / "config.json").exists():
        return out
    config = AutoConfig.from_pretrained(ROOT / "assets" / "model-configs" / name)
    if layers:
        config.num_hidden_layers = layers
        if getattr(config, "layer_types", None):
            config.layer_types = config.layer_types[:layers]
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(out)
    del model
    for f in TOKENIZER_FILES:
        shutil.copy(ROOT / "assets" / "tiny-model" / f, out / f)
    if device == "cuda":
        torch.cuda.empty_cache()
    return out


def make_data(path: Path, max_length: int, rows: int, seed: int = 0) -> Path:
    """`text` rows with log-normal token counts (median max_length/4, sigma 0.8, at most max_length)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(ROOT / "assets" / "tiny-model")
    special = set(tok.all_special_ids)
    ordinary = [i for i in range(len(tok)) if i not in special]
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as fh:
        for _ in range(rows):
            n = int(min(max_length, max(16, rng.lognormvariate(math.log(max_length / 4), 0.8))))
            text = tok.decode([rng.choice(ordinary) for _ in range(n)])
            fh.write(json.dumps({"text": text}) + "\n")
    return path


def matmul_params(model_dir: Path) -> int:
    """Parameters that take part in a matrix product per token: every linear layer and the output layer."""
    from studio.models.counting import model_shapes

    shapes = model_shapes(str(model_dir), None, "sft")
    return sum(lin.in_features * lin.out_features for lin in shapes.linears)


def naive_run(case: dict) -> None:
    """The bare TRL script (run in its own process); writes one JSON line per log to case['log']."""
    import torch
    from datasets import load_dataset
    from peft import LoraConfig
    from transformers import BitsAndBytesConfig, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    class Log(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kw):
            peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
            with open(case["log"], "a") as fh:
                fh.write(json.dumps({"step": state.global_step, "time": time.time(), "gpu_peak_gib": peak,
                                     **(logs or {})}) + "\n")

    cuda = torch.cuda.is_available()
    tuned = case.get("recipe") == "tuned"
    half = torch.bfloat16 if tuned else torch.float16
    init: dict = {"dtype": torch.bfloat16} if tuned else {}
    if case["method"] == "qlora":
        init["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                         bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=half)
    extra: dict = {"fp16": cuda, "bf16": False}
    if tuned:
        extra = {"bf16": cuda, "fp16": False, "gradient_checkpointing": False,
                 "train_sampling_strategy": "group_by_length", "use_liger_kernel": cuda and _has("liger_kernel")}
    args = SFTConfig(output_dir=case["out"], per_device_train_batch_size=case["batch"], max_length=case["seq"],
                     max_steps=case["steps"], learning_rate=1e-4, logging_steps=1, save_strategy="no",
                     report_to="none", disable_tqdm=True, model_init_kwargs=init or None, use_cpu=not cuda, **extra)
    trainer = SFTTrainer(model=case["model"], args=args, train_dataset=load_dataset("json", data_files=case["data"],
                                                                                   split="train"),
                         peft_config=LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM"),
                         callbacks=[Log()])
    trainer.train()


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def studio_config(case: dict, path: Path, speed: dict | None = None) -> Path:
    import yaml

    cfg = {"model": {"name": case["model"]}, "method": {"name": case["method"], "stage": "sft"},
           "data": {"train": case["data"], "max_length": case["seq"], "eval_fraction": 0.0, "format": "text"},
           "lora": {"r": 16, "alpha": 32, "targets": ["all-linear"]},
           "train": {"max_steps": case["steps"], "batch_size": case["batch"], "learning_rate": 1e-4,
                     "logging_steps": 1, "save_steps": 10**9, "warmup_ratio": 0.0}}
    if speed:
        cfg["speed"] = speed
    if case["method"] == "qlora":
        cfg["quant"] = {"bits": 4, "quant_type": "nf4", "double_quant": True, "compute_dtype": "bfloat16"}
    path.write_text(yaml.safe_dump(cfg))
    return path


def figures(records: list[dict], warmup: int) -> dict:
    """tokens/s between the log at step `warmup` and the last one, and the highest peak memory seen."""
    logs = [r for r in records if "num_tokens" in r and "loss" in r]
    peaks = [r["gpu_peak_gib"] for r in records if r.get("gpu_peak_gib") is not None]
    out = {"steps_logged": len(logs), "peak_gib": max(peaks) if peaks else None}
    if len(logs) > warmup + 1:
        first, last = logs[warmup], logs[-1]
        out["tokens"] = last["num_tokens"] - first["num_tokens"]
        out["seconds"] = last["time"] - first["time"]
        out["tokens_per_s"] = out["tokens"] / out["seconds"] if out["seconds"] > 0 else None
        out["loss_last"] = last.get("loss")
    return out


def run_case(case: dict, recipe: str, work: Path, timeout: float, speed: dict | None = None) -> dict:
    tag = "".join(f"-{k}-{v}" for k, v in (speed or {}).items())
    run = work / f"{recipe}-{case['label']}{tag}"
    run.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if recipe != "studio":
        case = {**case, "recipe": recipe, "log": str(run / "log.jsonl"), "out": str(run / "out")}
        cmd = [sys.executable, __file__, "--naive-run", json.dumps(case)]
    else:
        cmd = [sys.executable, "-m", "studio", "train", str(studio_config(case, run / "config.yaml", speed)),
               "--workspace", str(run / "ws"), "--quiet"]
    start, stdout = time.time(), ""
    try:
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        failed, stdout = done.returncode != 0, done.stdout
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
    except subprocess.TimeoutExpired:
        failed, tail = True, [f"over its {timeout:.0f} s"]
    records: list[dict] = []
    logs = [run / "log.jsonl"] if recipe != "studio" else list((run / "ws" / "runs").glob("*/metrics.jsonl"))
    for path in logs:
        if path.exists():
            records += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    speed_line = [ln for ln in stdout.splitlines() if ln.startswith("speed:")]
    out = {"case": case["label"], "recipe": recipe, "wall_s": round(time.time() - start, 1),
           **figures(records, case["warmup"])}
    if recipe == "studio" and speed_line:
        out["speed"] = speed_line[0]
    if speed:
        out["speed_set"] = speed
    if failed:
        out["error"] = " | ".join(tail)[-600:]
    return out


def estimate(case: dict) -> dict | None:
    """The studio's memory estimate for the studio run of this case, in GiB by part."""
    from studio.config import load_config
    from studio.models.estimate import estimate_run
    from studio.models.memory import TrainingSetup

    try:
        cfg = load_config(studio_config(case, Path(tempfile.mkdtemp()) / "c.yaml"))
        setup = TrainingSetup(batch_size=case["batch"], seq_len=case["seq"], precision="bf16", stage="sft",
                              liger=_has("liger_kernel"))
        return estimate_run(cfg, setup, gpu=None).memory.as_gib()
    except Exception as err:  # a figure beside the result, never a reason to stop the bench
        return {"error": str(err)[:200]}


def device_facts() -> dict:
    import torch

    facts = {"torch": torch.__version__, "cuda": torch.cuda.is_available()}
    for pkg in ("transformers", "trl", "peft", "bitsandbytes", "liger_kernel", "flash_attn"):
        try:
            facts[pkg] = __import__(pkg).__version__
        except Exception:
            facts[pkg] = None
    if facts["cuda"]:
        facts["gpu"] = torch.cuda.get_device_name(0)
        facts["gpu_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    return facts


def peak_tflops(gpu: str | None) -> float | None:
    for key, value in PEAK_TFLOPS.items():
        if gpu and key in gpu:
            return value
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="gpu_speed.jsonl")
    ap.add_argument("--models", default="qwen2.5-0.5b,llama-2-7b")
    ap.add_argument("--methods", default="lora,qlora")
    ap.add_argument("--seqs", default="512,2048")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", default="30,16", help="steps per model, in the order of --models")
    ap.add_argument("--warmup", type=int, default=4)
    ap.add_argument("--recipes", default="naive,studio",
                    help="naive, studio, tuned, or studio-KEY=VALUE+KEY=VALUE (the studio with speed settings set)")
    ap.add_argument("--tuned", default="qwen2.5-0.5b", help="models also run with a hand-tuned bare TRL script")
    ap.add_argument("--deadline", type=float, default=420.0, help="seconds after which no new case starts")
    ap.add_argument("--layers", type=int, default=0, help="cut every model to this many layers (smoke tests)")
    ap.add_argument("--work", default="")
    ap.add_argument("--smoke", action="store_true", help="2 layers, 64 tokens, 6 steps, on the CPU")
    ap.add_argument("--naive-run", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.naive_run:
        naive_run(json.loads(args.naive_run))
        return
    if args.smoke:
        args.models, args.seqs, args.layers, args.steps, args.warmup, args.batch = "qwen2.5-0.5b", "64", 2, "6", 2, 4
    started = time.time()
    facts = device_facts()
    print(json.dumps(facts), flush=True)
    work = Path(args.work or ("/dev/shm" if shutil.disk_usage("/dev/shm").free > 40 * 2**30 else tempfile.gettempdir()))
    work = Path(tempfile.mkdtemp(prefix="studio-speed-", dir=work))
    peak = peak_tflops(facts.get("gpu"))
    results = open(args.out, "a", encoding="utf-8")
    results.write(json.dumps({"facts": facts, "args": vars(args)}) + "\n")
    steps = [int(n) for n in args.steps.split(",")]
    for number, model in enumerate(args.models.split(",")):
        model_steps = steps[min(number, len(steps) - 1)]
        if time.time() - started > args.deadline:
            break
        t0 = time.time()
        model_dir = make_model(model, work, args.layers or None, "cuda" if facts["cuda"] else "cpu")
        n_mat = matmul_params(model_dir)
        print(f"# {model}: {n_mat / 1e9:.2f} B parameters in matrix products; built in {time.time() - t0:.0f} s",
              flush=True)
        for method in args.methods.split(","):
            for seq in (int(s) for s in args.seqs.split(",")):
                if time.time() - started > args.deadline:
                    print(f"# deadline: {model} {method} {seq} and later cases skipped", flush=True)
                    break
                data = make_data(work / f"data-{seq}-{model_steps}.jsonl", seq, model_steps * args.batch)
                case = {"label": f"{model}-{method}-{seq}", "model": str(model_dir), "method": method, "seq": seq,
                        "batch": args.batch, "steps": model_steps, "warmup": args.warmup, "data": str(data)}
                est = estimate(case)
                recipes = args.recipes.split(",") + (["tuned"] if model in args.tuned.split(",") else [])
                for recipe in recipes:
                    left = max(60.0, args.deadline + 150 - (time.time() - started))
                    if recipe.startswith("studio-"):  # studio-liger=off+batching=padded: speed settings changed
                        changed = {k: int(v) if v.isdigit() else v
                                   for k, v in (kv.split("=") for kv in recipe[len("studio-"):].split("+"))}
                        row = run_case(case, "studio", work, timeout=left, speed=changed)
                        row["recipe"] = recipe
                    else:
                        row = run_case(case, recipe, work, timeout=left)
                    if recipe == "studio" and "error" in row and "liger" in row.get("speed", "") + row["error"]:
                        print(f"# studio failed ({row['error'][-200:]}); again with speed.liger off", flush=True)
                        row = run_case(case, recipe, work, timeout=left, speed={"liger": "off"})
                    row |= {"model": model, "method": method, "seq": seq, "batch": args.batch}
                    if row.get("tokens_per_s") and peak:
                        row["mfu"] = round(row["tokens_per_s"] * 4 * n_mat / (peak * 1e12), 4)
                    if recipe == "studio":
                        row["estimate_gib"] = est
                    results.write(json.dumps(row) + "\n")
                    results.flush()
                    tps = row.get("tokens_per_s")
                    print(f"{row['case']:<28} {recipe:<7} {tps or 0:>10.0f} tok/s  peak {row.get('peak_gib') or 0:6.2f} GiB"
                          f"  mfu {row.get('mfu', 0):.3f}  wall {row['wall_s']:6.1f} s"
                          + (f"  ERROR {row['error']}" if "error" in row else ""), flush=True)
        shutil.rmtree(model_dir, ignore_errors=True)
    print(f"# done in {time.time() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
