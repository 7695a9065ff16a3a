"""Customer emails to the Pebble & Pine support desk, composed from a `Pool` of the invented world.

Shared by the pretraining corpus and the demo datasets so that both speak exactly the same language.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from studio.demo.world import MATERIALS, Pool

EXTRAS = [
    "Thanks in advance.",
    "I have been a customer for years.",
    "It was a gift for my sister.",
    "I ordered it on Monday.",
    "Please help.",
    "This is my second email about this.",
    "I hope you can sort this out.",
    "I paid by card.",
    "Thank you for your time.",
    "I look forward to hearing from you.",
    "I bought it in the spring sale.",
    "It is quite urgent.",
    "My neighbour recommended your shop.",
    "I ordered it online last month.",
]

INTROS = ["I am {first} {sur}.", "My name is {first} {sur}.", "This is {first} {sur}.", "{first} here."]

# The name always follows a space, so it is the same token wherever it appears (byte-level BPE gives
# "Anna" and " Anna" different ids, and a tiny model copies far better when they agree).
SIGN_OFFS = [
    "Thanks, {first}",
    "Best, {first} {sur}",
    "Regards, {first} {sur}",
    "Cheers, {first}",
    "- {first}",
    "Kind regards, {first} {sur}",
    "Many thanks, {first}",
    "All the best, {first}",
    "Yours, {first} {sur}",
]


@dataclass
class Email:
    """One customer email and the values it was built from."""

    text: str
    intent: str
    phrasing: str
    first: str
    surname: str
    product: str
    order: str


def order_number(rng: random.Random, orders: tuple[int, int] = (10000, 99999)) -> str:
    return str(rng.randint(*orders))


def product_name(rng: random.Random, nouns: list[str]) -> str:
    return f"{rng.choice(MATERIALS)} {rng.choice(nouns)}"


def compose_email(
    rng: random.Random, pool: Pool, intent: str, phrasings: dict[str, list[str]] | None = None
) -> Email:
    """A support email for `intent`: greeting, maybe an introduction, the request, maybe an aside, a sign-off.

    The customer's first name always appears (in the introduction, the sign-off or both), so a reply can
    address them.
    """
    phrasing = rng.choice((phrasings or pool.phrasings)[intent])
    first, sur = rng.choice(pool.first_names), rng.choice(pool.surnames)
    product, order = product_name(rng, pool.nouns), order_number(rng, pool.orders)
    fill = {"first": first, "sur": sur}
    parts: list[str] = []
    if rng.random() < 0.9:
        parts.append(rng.choice(pool.greetings) + rng.choice([",", "!", ""]))
    body: list[str] = []
    has_intro = rng.random() < 0.5
    if has_intro:
        body.append(rng.choice(INTROS).format(**fill))
    body.append(phrasing.format(p=product, o=order))
    if rng.random() < 0.5:
        body.append(rng.choice(EXTRAS))
    parts.append(" ".join(body))
    if not has_intro or rng.random() < 0.5:
        parts.append(rng.choice(SIGN_OFFS).format(**fill))
    joiner = "\n" if rng.random() < 0.7 else " "
    text = joiner.join(parts).replace("\n", joiner)
    return Email(text, intent, phrasing, first, sur, product, order)
