"""Build the studio's built-in tiny model from scratch: corpus, tokenizer, pretraining, save.

    python -m studio.demo.build --seed 0 --out assets/tiny-model

A 4-layer Llama (4.2M parameters, float32, about 17 MB) pretrained for about seven minutes on two CPU
cores on the generated Pebble & Pine corpus (`studio.demo.corpus`). The result is a small general-purpose
assistant for that world which does not know the shop's house-style replies: teaching them is the demo's
fine-tuning job. On the same machine and thread count the same seed gives the same bytes.

The size was chosen by measurement at a fixed CPU budget: more optimizer steps on a narrow model beat
more width or depth with fewer steps (a 6-layer or 320-wide model, given the same minutes, left LoRA
routing at 50-80% instead of 100%), and batches of 8 sequences beat 16 for held-out phrasings.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from studio.demo.corpus import Document, pretraining_documents
from studio.demo.tokenizer import train_tokenizer
from studio.demo.world import World


@dataclass
class BuildConfig:
    """Everything that decides the built model; saved next to it as build.json."""

    seed: int = 0
    vocab_size: int = 4096
    """BPE vocabulary; large enough that every invented first name is one token."""
    hidden_size: int = 256
    layers: int = 4
    heads: int = 4
    intermediate_size: int = 688
    documents: int = 80_000
    """Generated corpus documents; more than the run reads, so no document is seen twice."""
    seq_len: int = 256
    batch_size: int = 8
    steps: int = 940
    lr: float = 3e-3
    warmup: int = 50


def cpu_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def document_texts(documents: list[Document]) -> list[str]:
    """Plain text for tokenizer training: message contents without the template's special tokens."""
    texts: list[str] = []
    for doc in documents:
        texts.extend([doc] if isinstance(doc, str) else [m["content"] for m in doc])
    return texts


def token_stream(documents: list[Document], tokenizer: PreTrainedTokenizerFast) -> torch.Tensor:
    """All documents as one stream of ids: chats through the chat template, plain text between bos and eos."""
    rendered = [
        tokenizer.bos_token + doc + tokenizer.eos_token
        if isinstance(doc, str)
        else tokenizer.apply_chat_template(doc, tokenize=False)
        for doc in documents
    ]
    ids = tokenizer(rendered, add_special_tokens=False)["input_ids"]
    return torch.tensor([i for doc in ids for i in doc], dtype=torch.long)


def make_model(config: BuildConfig, tokenizer: PreTrainedTokenizerFast) -> LlamaForCausalLM:
    model_config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.layers,
        num_attention_heads=config.heads,
        num_key_value_heads=config.heads,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return LlamaForCausalLM(model_config)


def pretrain(
    model: LlamaForCausalLM, stream: torch.Tensor, config: BuildConfig, log_every: int = 100
) -> None:
    blocks = stream[: len(stream) // config.seq_len * config.seq_len].view(-1, config.seq_len)
    generator = torch.Generator().manual_seed(config.seed)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr,
        betas=(0.9, 0.95),
    )

    def lr_at(step: int) -> float:
        if step < config.warmup:
            return config.lr * (step + 1) / config.warmup
        progress = (step - config.warmup) / max(1, config.steps - config.warmup)
        return config.lr * (0.1 + 0.45 * (1 + math.cos(math.pi * progress)))

    model.train()
    start, order = time.time(), torch.randperm(len(blocks), generator=generator)
    for step in range(config.steps):
        index = order[(torch.arange(config.batch_size) + step * config.batch_size) % len(blocks)]
        batch = blocks[index].to(model.device)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step)
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step % log_every == 0 or step == config.steps - 1:
            print(f"step {step:5d}  loss {loss.item():.3f}  {time.time() - start:6.0f}s", flush=True)


def model_card(config: BuildConfig, parameters: int) -> str:
    """The README.md saved with the model."""
    return f"""# Pebble & Pine tiny model

The Fine-tuning Studio's built-in model: a {config.layers}-layer Llama ({parameters:,} parameters, hidden size
{config.hidden_size}, {config.heads} heads, byte-level BPE vocabulary of {config.vocab_size}) pretrained from
scratch on a generated corpus about Pebble & Pine, an invented homeware shop: customer emails, chats
with plain generic replies, questions about emails, repeat-after-me tasks, stories and catalogue lines.

It is a small general-purpose assistant for that world and knows nothing outside it. It does not know the
shop's house-style replies (one fixed reply per kind of request): LoRA SFT on
`assets/data/support_sft.jsonl` teaches them in a few CPU minutes (`python bench/tiny_sft.py` measures it).
Three of the fourteen ways customers phrase each kind of request (24 in all) appear neither in this
corpus nor in the SFT data; `assets/data/support_eval_unseen.jsonl` asks in those phrasings only.

Rebuild with `python -m studio.demo.build --seed {config.seed} --out assets/tiny-model`; the settings are in
build.json. Weights are float32 safetensors; load with `AutoModelForCausalLM.from_pretrained`.

Chat template: `<|bos|>` then, per message, `<|role|>` + newline + content + `<|eos|>`; assistant content
is wrapped in `{{% generation %}}` for assistant-only loss, and generation stops at `<|eos|>`. Tool
descriptions (`tools=`) follow `<|bos|>` as `<|tools|>` and one JSON line each; an assistant's tool calls
are written as `<tool_call>{{"name": ..., "arguments": ...}}</tool_call>` in its turn (the corpus has none:
tool-calling data teaches them).
"""


def build(config: BuildConfig, out: Path) -> None:
    torch.set_num_threads(cpu_threads())
    random.seed(config.seed)
    torch.manual_seed(config.seed)
    start = time.time()
    world = World.make(config.seed)
    documents = pretraining_documents(world, config.documents, config.seed)
    tokenizer = train_tokenizer(document_texts(documents), config.vocab_size)
    stream = token_stream(documents, tokenizer)
    tokens_needed = config.steps * config.batch_size * config.seq_len
    print(f"corpus: {len(documents)} documents, {len(stream)} tokens ({tokens_needed} used)", flush=True)
    model = make_model(config, tokenizer)
    print(f"model: {sum(p.numel() for p in model.parameters()):,} parameters", flush=True)
    pretrain(model, stream, config)
    model.eval()
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        max_new_tokens=96,
        do_sample=False,
    )
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "build.json").write_text(json.dumps(asdict(config), indent=2) + "\n")
    (out / "README.md").write_text(model_card(config, sum(p.numel() for p in model.parameters())))
    print(f"saved to {out} in {time.time() - start:.0f}s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("assets/tiny-model"))
    parser.add_argument("--steps", type=int, default=BuildConfig.steps)
    args = parser.parse_args()
    build(BuildConfig(seed=args.seed, steps=args.steps), args.out)


if __name__ == "__main__":
    main()
