"""Make pairs to vote on in bulk: two sources answer the same prompts, and each prompt becomes a pair.

    pairs = generate_pairs(ws, prompts, source_a="20261127-run", source_b="tiny", progress=print)

Prompts come from any data the readers know (prompt-only data, instruction or chat data without its
answers, preference data without its answers, or typed prompts): the whole conversation before the
answer is kept. A source is a run, 'tiny', a hub id or a folder. One source twice (a run sampled twice)
needs a temperature above 0, or both answers would be the same. Pairs whose two answers are the same
are not stored: there is nothing to prefer.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from studio.errors import StudioError
from studio.prefs.store import PreferenceStore
from studio.workspace import Workspace


def prompts_from(source: str, limit: int | None = None, seed: int = 0) -> list[list[dict[str, str]]]:
    """The conversations to answer from a data source: every row's turns before its (last) answer."""
    from studio.data.load import load_records
    from studio.methods.rl_common import prompt_rows

    records, _ = load_records(source, ("prompt", "sft", "preference", "unpaired"), purpose="making pairs")
    out = [row["prompt"] for row in prompt_rows(records)]
    if limit is not None and len(out) > limit:
        out = random.Random(seed).sample(out, limit)
    if not out:
        raise StudioError(f"{source}: no prompt ending on a user message to answer.")
    return out


def typed_prompts(text: str) -> list[list[dict[str, str]]]:
    """Prompts typed one per line (blank lines skipped)."""
    return [[{"role": "user", "content": line.strip()}] for line in text.splitlines() if line.strip()]


def generate_pairs(ws: Workspace, prompts: list[list[dict[str, str]]], source_a: str, source_b: str,
                   temperature: float = 0.0, max_new_tokens: int = 128, needed: int | None = None,
                   created_by: str = "", batch_size: int = 16, seed: int = 0,
                   progress: Callable[[float, str], None] | None = None) -> dict[str, int]:
    """Answer every prompt with both sources and store the pairs; returns how many were stored and how
    many were left out because the two answers were the same. Sampling is seeded: the same call gives
    the same pairs on the same machine."""
    import torch

    from studio.chat.engine import load_for_chat
    from studio.chat.evaluate import batch_answers

    if source_a == source_b and temperature <= 0:
        raise StudioError("One source answering twice gives the same answer when it answers greedily: set a "
                          "temperature above 0, or pick two different sources.")
    say = progress or (lambda fraction, text: None)
    loaded: dict[str, Any] = {}
    sides: list[list[str]] = []
    for k, source in enumerate((source_a, source_b)):  # one source twice: two sampled passes
        if source not in loaded:
            say(0.05 + 0.45 * k, f"loading {source}")
            loaded[source] = load_for_chat(source, ws)
        model = loaded[source]

        torch.manual_seed(seed + k)

        def tell(done: float, k: int = k, source: str = source) -> None:
            say(0.05 + 0.9 * (k + done) / 2, f"{source} answering: {round(done * len(prompts))}/{len(prompts)}")
        asked = [model.with_system(p) for p in prompts]  # each run as it trained: with its own system message
        sides.append(batch_answers(model.model, model.tokenizer, asked, max_new_tokens, temperature, batch_size, tell))
    first, second = sides
    pairs = [(p, a, b, source_a, source_b) for p, a, b in zip(prompts, first, second)
             if a.strip() and b.strip() and a.strip() != b.strip()]
    say(0.98, "storing the pairs")
    if pairs:
        PreferenceStore(ws.prefs_db).add_pairs(pairs, source=f"generated {source_a} vs {source_b}",
                                                created_by=created_by, needed=needed)
    return {"pairs": len(pairs), "same_answers": len(prompts) - len(pairs)}
