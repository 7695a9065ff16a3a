"""Check that the built-in tiny model learns the demo job: a bare TRL LoRA SFT run, timed, with exact match.

    python -m studio.demo.tune_check [--model assets/tiny-model] [--data assets/data] [--steps 200] ...

Loads the model, scores the base model on the held-out eval set, trains a LoRA adapter with TRL's
`SFTTrainer` on support_sft.jsonl in fp32 on the CPU, scores the tuned model on support_eval.jsonl
and support_eval_unseen.jsonl, and prints one JSON object with the scores, the timings and the
hyper-parameters. The defaults are the recipe of presets/tiny-sft-lora.yaml: LoRA r=16, alpha=32 on all
seven linear projections, lr 3e-3 with 10 warmup steps then linear decay, 150 steps of 16 conversations
(two epochs), assistant-only loss. `bench/tiny_sft.py` measures the same recipe through the studio over
several seeds, beside the base model and trivial baselines; docs/benchmarks.md holds its figures.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from datasets import Dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer

from studio.demo.build import cpu_threads
from studio.demo.evaluate import generate_answers, load_rows

ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="assets/tiny-model")
    parser.add_argument("--data", type=Path, default=Path("assets/data"))
    parser.add_argument("--targets", default="all-linear", help="all-linear, attention, or a comma list")
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--alpha", type=int, default=32)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--grad-accum", type=int, default=1)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--max-length", type=int, default=192)
    parser.add_argument("--scheduler", default="linear")
    parser.add_argument("--warmup", type=int, default=10, help="warmup steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--show", type=int, default=3, help="wrong answers to include in the output")
    parser.add_argument("--skip-base", action="store_true", help="do not score the base model")
    return parser.parse_args()


def target_modules(targets: str) -> list[str]:
    if targets == "all-linear":
        return ALL_LINEAR
    if targets == "attention":
        return ALL_LINEAR[:4]
    return targets.split(",")


def score(model, tokenizer, rows: list[dict]) -> tuple[float, list[dict]]:
    """Exact match, and the rows the model got wrong with what it said instead."""
    answers = generate_answers(model, tokenizer, rows)
    misses = [
        {"intent": row.get("intent"), "expected": row["messages"][-1]["content"], "got": answer}
        for row, answer in zip(rows, answers)
        if answer != row["messages"][-1]["content"].strip()
    ]
    return (len(rows) - len(misses)) / len(rows), misses


def main() -> None:
    args = parse_args()
    start = time.time()
    torch.set_num_threads(cpu_threads())
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    eval_rows = load_rows(args.data / "support_eval.jsonl")
    unseen_rows = load_rows(args.data / "support_eval_unseen.jsonl")
    result: dict = {}
    if not args.skip_base:
        base_start = time.time()
        result["base_exact"] = score(model, tokenizer, eval_rows)[0]
        result["base_exact_unseen"] = score(model, tokenizer, unseen_rows)[0]
        result["base_eval_seconds"] = round(time.time() - base_start, 1)
    lora = LoraConfig(
        r=args.rank,
        lora_alpha=args.alpha,
        lora_dropout=args.dropout,
        target_modules=target_modules(args.targets),
        task_type="CAUSAL_LM",
    )
    config = SFTConfig(
        output_dir="/tmp/studio-tune-check",
        max_steps=args.steps,
        per_device_train_batch_size=args.batch_size,
        gradient_accumulation_steps=args.grad_accum,
        learning_rate=args.lr,
        lr_scheduler_type=args.scheduler,
        warmup_steps=args.warmup,
        max_length=args.max_length,
        assistant_only_loss=True,
        bf16=False,  # bf16 matmuls are several times slower than fp32 on CPUs without bf16 units
        gradient_checkpointing=False,  # TRL turns it on by default; a tiny model has memory to spare, not time
        use_cpu=True,
        logging_steps=10,
        save_strategy="no",
        report_to="none",
        seed=args.seed,
    )
    sft_rows = [{"messages": row["messages"]} for row in load_rows(args.data / "support_sft.jsonl")]
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=Dataset.from_list(sft_rows),
        processing_class=tokenizer,
        peft_config=lora,
    )
    train_start = time.time()
    trainer.train()
    train_seconds = time.time() - train_start
    tuned = trainer.model
    result["tuned_exact"], misses = score(tuned, tokenizer, eval_rows)
    result["tuned_exact_unseen"], misses_unseen = score(tuned, tokenizer, unseen_rows)
    losses = [log["loss"] for log in trainer.state.log_history if "loss" in log]
    result |= {
        "losses": [round(x, 3) for x in losses],
        "train_seconds": round(train_seconds, 1),
        "total_seconds": round(time.time() - start, 1),
        "threads": torch.get_num_threads(),
        "misses": (misses + misses_unseen)[: args.show],
        "recipe": {k: v for k, v in vars(args).items() if k not in ("model", "data", "skip_base")}
        | {
            "target_modules": lora.target_modules and sorted(lora.target_modules),
            "assistant_only_loss": True,
            "dtype": "float32",
        },
    }
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
