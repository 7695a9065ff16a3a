"""What an annotator sees of a pair: which stored answer is on which side, and what a press on a side
means for the stored vote.

Sides are shuffled for every pair shown, so position cannot sway the votes; the shown pair remembers
the shuffle, and `choice_for` maps the side pressed back to answer a or b.

    shown = show_pair(store.next_pair(voter))
    store.vote(shown.pair_id, shown.choice_for("left"), voter=voter)
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

from studio.errors import StudioError

SIDES = ("left", "right", "tie", "both_bad")


@dataclass(frozen=True)
class ShownPair:
    pair_id: int
    prompt: str
    left: str
    right: str
    flipped: bool
    """True when answer b is on the left."""

    def choice_for(self, side: str) -> str:
        """The stored choice ('a', 'b', 'tie', 'both_bad') for a press on `side`."""
        if side not in SIDES:
            raise ValueError(f"A vote is one of {', '.join(SIDES)} (got {side!r}).")
        if side in ("tie", "both_bad"):
            return side
        return "a" if (side == "left") != self.flipped else "b"


def show_pair(pair: dict[str, Any], rng: random.Random | None = None) -> ShownPair:
    """Put a stored pair on screen with its answers on random sides."""
    flipped = (rng or random).random() < 0.5
    a, b = pair["answer_a"], pair["answer_b"]
    left, right = (b, a) if flipped else (a, b)
    return ShownPair(int(pair["id"]), prompt_text(pair), left, right, flipped)


def prompt_text(pair: dict[str, Any]) -> str:
    """What an annotator reads as the prompt: the message, or the whole conversation turn by turn."""
    if not pair.get("prompt_turns"):
        return pair["prompt"]
    turns = json.loads(pair["prompt_turns"])
    return "\n\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in turns)


def rated_answer(chat: list[dict[str, str]], index: int, system: str = "") -> tuple[list[dict[str, str]], str]:
    """The conversation before message `index` of a chat (with the system prompt it ran under) and the
    answer at `index`: what a thumbs up or down in Chat rates."""
    if not 0 <= index < len(chat) or chat[index].get("role") != "assistant":
        raise StudioError("Only the model's answers can be rated.")
    prompt = [{"role": "system", "content": system}] if system.strip() else []
    prompt += [{"role": m["role"], "content": m["content"]} for m in chat[:index]]
    return prompt, chat[index]["content"]


MAX_REWRITE_CHARS = 20_000
"""The longest rewritten answer a vote takes (a long answer is a few thousand characters)."""
MAX_REASON_CHARS = 2_000


def cast_vote(store: Any, shown: ShownPair, side: str, voter: str, edited: str = "", reason: str = "") -> str:
    """Store a press on `side` for the pair on screen, with the winner rewritten (the rewrite becomes the
    chosen answer; an unchanged text is no rewrite) and a reason, both optional. Returns the sentence to
    show, which names the two sources now that the vote is in."""
    for text, limit, what in ((edited, MAX_REWRITE_CHARS, "The rewrite"), (reason, MAX_REASON_CHARS, "The reason")):
        if len(text) > limit:
            raise StudioError(f"{what} is {len(text):,} characters long; keep it under {limit:,}. The vote was not "
                              "stored.")
    winner = {"left": shown.left, "right": shown.right}.get(side)
    rewrite = edited.strip() if edited.strip() and edited.strip() != (winner or "").strip() else None
    store.vote(shown.pair_id, shown.choice_for(side), voter=voter, edited=rewrite, reason=reason,
               flipped=shown.flipped)
    pair = store.pair(shown.pair_id)
    left, right = (pair["model_b"], pair["model_a"]) if shown.flipped else (pair["model_a"], pair["model_b"])
    sources = f" A was {left or 'unnamed'}, B was {right or 'unnamed'}." if left or right else ""
    done = " with your rewrite as the chosen answer." if rewrite else "."
    return f"Vote stored for pair #{shown.pair_id}{done}{sources}"
