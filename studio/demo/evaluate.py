"""Exact-match evaluation of a chat model on held-out conversations.

    python -m studio.demo.evaluate --model assets/tiny-model --data assets/data/support_eval.jsonl [--adapter DIR]

For each row, the model answers `messages[:-1]` greedily; the row counts when the answer (special
tokens skipped, whitespace stripped) equals the last assistant turn exactly. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase


def load_rows(path: str | Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


@torch.no_grad()
def generate_answers(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    rows: list[dict],
    batch_size: int = 32,
    max_new_tokens: int | None = None,
) -> list[str]:
    """Greedy answers to each row's conversation without its last turn, in row order."""
    prompts = [
        tokenizer.apply_chat_template(row["messages"][:-1], add_generation_prompt=True, tokenize=False)
        for row in rows
    ]
    if max_new_tokens is None:
        # Enough for the longest reference plus slack, so a wrong but longer answer is still seen to be wrong.
        longest = max(len(tokenizer(row["messages"][-1]["content"])["input_ids"]) for row in rows)
        max_new_tokens = longest + 8
    # Left padding keeps every prompt's end next to its generated tokens.
    previous_side, tokenizer.padding_side = tokenizer.padding_side, "left"
    was_training = model.training
    model.eval()
    answers: list[str] = []
    try:
        for start in range(0, len(prompts), batch_size):
            batch = tokenizer(
                prompts[start : start + batch_size],
                return_tensors="pt",
                padding=True,
                add_special_tokens=False,
            ).to(model.device)
            output = model.generate(
                **batch,
                do_sample=False,
                max_new_tokens=max_new_tokens,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            )
            new_tokens = output[:, batch["input_ids"].shape[1] :]
            answers += [text.strip() for text in tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]
    finally:
        tokenizer.padding_side = previous_side
        model.train(was_training)
    return answers


def exact_match(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, rows: list[dict]) -> float:
    """Fraction of rows whose greedy answer equals the reference last assistant turn exactly."""
    if not rows:
        return 0.0
    answers = generate_answers(model, tokenizer, rows)
    hits = sum(answer == row["messages"][-1]["content"].strip() for answer, row in zip(answers, rows))
    return hits / len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="assets/tiny-model")
    parser.add_argument("--data", default="assets/data/support_eval.jsonl")
    parser.add_argument("--adapter", help="a PEFT adapter folder to apply on top of --model")
    parser.add_argument("--limit", type=int, help="evaluate only the first N rows")
    args = parser.parse_args()
    start = time.time()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    if args.adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, args.adapter)
    rows = load_rows(args.data)[: args.limit]
    score = exact_match(model, tokenizer, rows)
    print(json.dumps({"exact_match": score, "rows": len(rows), "seconds": round(time.time() - start, 1)}))


if __name__ == "__main__":
    main()
