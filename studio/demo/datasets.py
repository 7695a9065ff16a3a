"""Write the demo datasets that go with the built-in tiny model.

    python -m studio.demo.datasets --seed 0 --out assets/data

- support_sft.jsonl: customer emails answered in the Pebble & Pine house style (`messages`).
- support_eval.jsonl: held-out emails from customers, products, order numbers and greetings the SFT
  data never uses, asked in phrasings it does use (`messages`, `intent`, `split`="main").
- support_eval_unseen.jsonl: the same, but asked in phrasings the SFT data never uses ("unseen_phrasing").
- support_prefs.jsonl: preference pairs (`prompt`, `chosen`, `rejected`): the house reply against a
  generic, off-intent or rude one, for reward-model and DPO demos.

The last assistant turn of an eval row is the reference answer for exact match.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from studio.demo.corpus import generic_reply
from studio.demo.emails import Email, compose_email
from studio.demo.world import INTENTS, SYSTEM_PROMPT, Pool, World, house_reply

RUDE_REPLIES = [
    "Read the website before you write to us.",
    "We get hundreds of emails like this. Wait like everyone else.",
    "Not our problem, {first}. Ask the courier.",
    "{first}, this is the third time you write. Please stop.",
    "No.",
    "Whatever. Someone may look at it next month.",
]


def conversation(email: Email, reply: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": email.text},
        {"role": "assistant", "content": reply},
    ]


def support_rows(
    rng: random.Random, pool: Pool, per_intent: int, phrasings: dict[str, list[str]] | None = None
) -> list[tuple[Email, list[dict[str, str]]]]:
    """`per_intent` emails for each intent, answered with the house reply, in shuffled order."""
    rows = []
    for intent in INTENTS:
        for _ in range(per_intent):
            email = compose_email(rng, pool, intent, phrasings)
            rows.append((email, conversation(email, house_reply(intent))))
    rng.shuffle(rows)
    return rows


def preference_row(rng: random.Random, email: Email, messages: list[dict[str, str]]) -> dict:
    kind = rng.choice(["generic", "off_intent", "rude"])
    if kind == "generic":
        rejected = generic_reply(rng, email)
    elif kind == "off_intent":
        rejected = house_reply(rng.choice([i for i in INTENTS if i != email.intent]))
    else:
        rejected = rng.choice(RUDE_REPLIES).format(first=email.first)
    return {
        "prompt": messages[:-1],
        "chosen": [messages[-1]],
        "rejected": [{"role": "assistant", "content": rejected}],
    }


def write_jsonl(path: Path, rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_datasets(
    seed: int, out: Path, sft_per_intent: int = 150, eval_per_intent: int = 20
) -> dict[str, int]:
    """Write the four files under `out`; returns rows written per file."""
    world = World.make(seed)
    # One generator per file, so that changing the size of one file leaves the others as they were.
    sft = support_rows(random.Random(f"sft-{seed}"), world.sft, sft_per_intent)
    held_out = support_rows(random.Random(f"eval-{seed}"), world.held_out, eval_per_intent)
    unseen = support_rows(
        random.Random(f"unseen-{seed}"), world.held_out, eval_per_intent // 2, world.unseen_phrasings
    )
    prefs_rng = random.Random(f"prefs-{seed}")
    prefs = [preference_row(prefs_rng, e, m) for e, m in support_rows(prefs_rng, world.sft, 50)]
    files = {
        "support_sft.jsonl": [{"messages": m} for _, m in sft],
        "support_eval.jsonl": [{"messages": m, "intent": e.intent, "split": "main"} for e, m in held_out],
        "support_eval_unseen.jsonl": [
            {"messages": m, "intent": e.intent, "split": "unseen_phrasing"} for e, m in unseen
        ],
        "support_prefs.jsonl": prefs,
    }
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in files.items():
        write_jsonl(out / name, rows)
    return {name: len(rows) for name, rows in files.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("assets/data"))
    args = parser.parse_args()
    print(json.dumps(write_datasets(args.seed, args.out)))


if __name__ == "__main__":
    main()
