"""Two trivial answerers for the demo job, to stand beside the tuned model's exact match.

The demo job is routing: each customer email gets the house reply for its kind of request, one of
eight fixed replies. A model that scores well must beat what word counting alone does on the same rows:

    train = load_conversations("assets/data/support_sft.jsonl")
    KeywordVote(train).answer("Please refund order 12345.")      # the reply whose words voted most
    NearestNeighbour(train).answer("...")                        # the reply of the most similar email

Both learn only from the SFT file, as the fine-tuning does.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter, defaultdict
from pathlib import Path

_WORD = re.compile(r"[a-z]+")


def words(text: str) -> list[str]:
    """Lower-case words without digits: order numbers and punctuation carry no intent."""
    return _WORD.findall(text.lower())


def load_conversations(path: str | Path) -> list[tuple[str, str]]:
    """(last user message, reference answer) of each row of a messages JSONL file."""
    pairs = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                msgs = json.loads(line)["messages"]
                user = next(m["content"] for m in reversed(msgs[:-1]) if m["role"] == "user")
                pairs.append((user, msgs[-1]["content"]))
    return pairs


class KeywordVote:
    """Each word votes for the replies it came with in training, weighted by how telling it is
    (log of the inverse share of replies it appears with); the reply with most votes answers."""

    def __init__(self, train: list[tuple[str, str]]):
        self.counts: dict[str, Counter[str]] = defaultdict(Counter)
        for text, reply in train:
            for w in set(words(text)):
                self.counts[w][reply] += 1
        self.replies = sorted({reply for _, reply in train})
        self.fallback = Counter(reply for _, reply in train).most_common(1)[0][0]

    def answer(self, text: str) -> str:
        score: Counter[str] = Counter()
        for w in set(words(text)):
            seen = self.counts.get(w)
            if not seen:
                continue
            weight = math.log(len(self.replies) / len(seen))
            total = sum(seen.values())
            for reply, n in seen.items():
                score[reply] += weight * n / total
        return max(score, key=lambda r: (score[r], r)) if score else self.fallback


class NearestNeighbour:
    """The reply of the training email sharing the largest share of words (Jaccard) with the question."""

    def __init__(self, train: list[tuple[str, str]]):
        self.train = [(set(words(text)), reply) for text, reply in train]

    def answer(self, text: str) -> str:
        mine = set(words(text))

        def overlap(item: tuple[set[str], str]) -> float:
            other = item[0]
            return len(mine & other) / len(mine | other) if mine or other else 0.0

        return max(self.train, key=overlap)[1]


def exact_match(answerer: KeywordVote | NearestNeighbour, rows: list[tuple[str, str]]) -> float:
    """Share of rows whose answer equals the reference, whitespace stripped (as `studio eval` counts)."""
    if not rows:
        return 0.0
    return sum(answerer.answer(text).strip() == ref.strip() for text, ref in rows) / len(rows)
