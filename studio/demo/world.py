"""The invented shop behind the built-in demo: Pebble & Pine, a homeware shop with a support desk.

Everything the demo model reads is drawn from here: customer names, products, greetings, the ways
customers phrase each request, the generic replies a general-purpose assistant gives, and the
house-style replies the demo fine-tuning teaches. `World.make(seed)` decides which names, products,
greetings and phrasings belong to the SFT data and which are kept back for the held-out eval set.

The pretraining corpus (`studio.demo.corpus`) uses the whole world except the house replies, so the
base model knows the vocabulary, the chat template and what customers want, but not how this shop
answers them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

SHOP = "Pebble & Pine"

# Names are invented from syllables so that the world owns them; each first name ends up as one token.
_ONSETS = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "st", "tr", "sh"]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ei"]
_CODAS = ["", "", "", "n", "l", "r", "s", "m"]

GREETINGS = [
    "Hi",
    "Hello",
    "Hey",
    "Good morning",
    "Good afternoon",
    "Good evening",
    "Dear support team",
    "Hello there",
    "Hi there",
    "Hey there",
    "Dear team",
    "Greetings",
    "Morning",
    "Hiya",
    "Hello team",
    "Hi team",
    "Dear Pebble & Pine",
    "Hello Pebble & Pine",
    "Hi folks",
    "Good day",
    "Dear sir or madam",
    "Hello again",
    "Hi all",
    "Evening",
    "Howdy",
    "Hi support",
    "Hello support",
    "Dear customer service",
    "Hey team",
    "Hello friends",
]

MATERIALS = [
    "oak",
    "pine",
    "linen",
    "wool",
    "cotton",
    "copper",
    "brass",
    "stone",
    "clay",
    "glass",
    "walnut",
    "bamboo",
    "felt",
    "leather",
    "marble",
    "birch",
    "cedar",
    "velvet",
    "jute",
    "enamel",
]

NOUNS = [
    "stool",
    "lamp",
    "mug",
    "teapot",
    "blanket",
    "cushion",
    "vase",
    "bowl",
    "basket",
    "shelf",
    "candle",
    "rug",
    "apron",
    "tray",
    "jug",
    "clock",
    "mirror",
    "planter",
    "kettle",
    "plate",
    "chair",
    "bench",
    "towel",
    "curtain",
    "pillow",
    "box",
    "coaster",
    "ladle",
    "spoon",
    "frame",
    "hook",
    "bucket",
    "broom",
    "desk",
    "table",
    "stand",
    "throw",
    "sheet",
    "napkin",
    "lantern",
    "bottle",
    "jar",
    "crate",
    "cabinet",
    "dish",
    "pan",
    "pot",
    "sieve",
    "whisk",
    "board",
    "rack",
    "tin",
    "cup",
    "saucer",
    "ottoman",
    "quilt",
    "mat",
    "doorstop",
    "bell",
    "comb",
]

TOWNS = [
    "Tollby",
    "Marrow Cove",
    "Eastwick",
    "Fennmoor",
    "Larkhill",
    "Brindle",
    "Oakhurst",
    "Saltmere",
    "Wickham Vale",
    "Pellton",
    "Corran",
    "Hollins",
    "Dunmere",
    "Ashby Green",
    "Rookford",
    "Glenbury",
]

# Each intent: a key, words a general assistant uses about it, and the phrasings customers use.
# {p} is a product, {o} an order number.
PHRASINGS: dict[str, list[str]] = {
    "refund": [
        "I would like a refund for the {p}.",
        "Can I get my money back for the {p}?",
        "Please refund order {o}.",
        "I want a refund on order {o}.",
        "I returned the {p} and I am still waiting for my refund.",
        "Could you refund the {p} I bought?",
        "How do I get a refund for order {o}?",
        "I sent the {p} back, please give me my money back.",
        "I no longer want the {p} and would like a refund.",
        "Please pay me back for the {p}.",
        "I am asking for a full refund of order {o}.",
        "Where is my refund for the {p}?",
        "Can you return my money for order {o}?",
        "I would like to be refunded for the {p}.",
    ],
    "late": [
        "My order {o} has not arrived yet.",
        "Where is my {p}? It is very late.",
        "The {p} I ordered still has not come.",
        "Order {o} is late, where is it?",
        "I am still waiting for my {p}.",
        "When will order {o} arrive?",
        "My parcel with the {p} never arrived.",
        "It has been two weeks and order {o} is not here.",
        "Can you tell me where my {p} is?",
        "The delivery of order {o} is late.",
        "Has my {p} been sent yet?",
        "I have not received order {o}.",
        "My {p} was due last week and is still missing.",
        "Is order {o} lost in the post?",
    ],
    "size": [
        "The {p} is the wrong size.",
        "The {p} I got is too small.",
        "The {p} is too big, can I swap it?",
        "Order {o} came in the wrong size.",
        "I need a bigger {p}.",
        "Can I exchange the {p} for another size?",
        "The size of the {p} is wrong.",
        "I ordered a large {p} but got a small one.",
        "Please send the {p} in a smaller size.",
        "The {p} from order {o} does not fit.",
        "Could I swap the {p} for a different size?",
        "The {p} is much larger than I expected.",
        "I need to change the size of the {p}.",
        "Order {o} has the {p} in the wrong size.",
    ],
    "cancel": [
        "Please cancel order {o}.",
        "I want to cancel my order for the {p}.",
        "Can I still cancel order {o}?",
        "I changed my mind about the {p}, please cancel it.",
        "Cancel the {p} I ordered yesterday.",
        "I would like to cancel order {o}.",
        "Please stop order {o}, I do not need it.",
        "How do I cancel the {p}?",
        "I ordered the {p} by mistake, cancel it please.",
        "Could you cancel my order {o} before it ships?",
        "I no longer need order {o}, please cancel.",
        "Is it too late to cancel the {p}?",
        "Please call off order {o}.",
        "Drop the {p} from my orders, I want to cancel.",
    ],
    "address": [
        "I need to change the address for order {o}.",
        "Please send the {p} to my new address.",
        "I moved, can you update the address on order {o}?",
        "The address on order {o} is wrong.",
        "Can I change where the {p} is delivered?",
        "Please ship order {o} to a different address.",
        "I gave the wrong address for the {p}.",
        "Could you deliver the {p} to my office instead?",
        "My address has changed, please update order {o}.",
        "Send order {o} to my new house please.",
        "I typed my street wrong on the order for the {p}.",
        "Can you change the delivery address for the {p}?",
        "Please fix the address on order {o}.",
        "I want the {p} delivered somewhere else.",
    ],
    "invoice": [
        "Can I have an invoice for order {o}?",
        "Please send me a receipt for the {p}.",
        "I need an invoice for the {p}.",
        "Where can I find the invoice for order {o}?",
        "Could you email me the receipt for order {o}?",
        "I need a VAT invoice for the {p}.",
        "Please send the bill for order {o}.",
        "My company needs an invoice for the {p}.",
        "I lost the receipt for order {o}.",
        "Can you send a copy of the invoice for the {p}?",
        "I need proof of purchase for the {p}.",
        "Please give me an invoice with my company name for order {o}.",
        "Where is the receipt for my {p}?",
        "I never got an invoice for order {o}.",
    ],
    "damaged": [
        "The {p} arrived broken.",
        "My {p} was damaged in the post.",
        "Order {o} arrived damaged.",
        "The {p} is cracked.",
        "The {p} came with a big scratch.",
        "Everything in order {o} was smashed.",
        "The {p} was broken when I opened the box.",
        "My {p} has a chip in it.",
        "The box for order {o} was crushed and the {p} is broken.",
        "The {p} I received is damaged.",
        "Part of the {p} snapped off in the parcel.",
        "Order {o} came in pieces.",
        "The {p} is dented.",
        "The {p} arrived torn.",
    ],
    "account": [
        "I cannot log in to my account.",
        "I forgot my password.",
        "Please reset my password.",
        "My account is locked.",
        "How do I change my password?",
        "I cannot sign in to see order {o}.",
        "The website says my password is wrong.",
        "Please delete my account.",
        "I want to change the email on my account.",
        "I never got the password reset email.",
        "Can you unlock my account?",
        "I cannot get into my account to check the {p}.",
        "Please close my account.",
        "My login does not work.",
    ],
}

INTENTS = list(PHRASINGS)

# More ways of asking, which only the pretraining corpus uses: a general-purpose model has read many ways
# of asking for each thing before anyone fine-tunes it. They are never in the SFT data nor in the eval sets,
# and they differ from every phrasing above (tests/test_demo_honest.py checks that none of the eval
# phrasings can be found in the corpus).
CORPUS_PHRASINGS: dict[str, list[str]] = {
    "refund": [
        "I would like my money returned for the {p}.",
        "Has the money for order {o} been paid back yet?",
        "The refund for the {p} has not reached my card.",
        "Please put the money for order {o} back on my card.",
        "I expect a refund, the {p} went back to you weeks ago.",
        "Refund me for the {p}, please.",
    ],
    "late": [
        "The {p} should have been here days ago.",
        "Order {o} is overdue.",
        "Why has my {p} not been delivered yet?",
        "Any news on when order {o} will reach me?",
        "My {p} is taking far too long to arrive.",
        "I am waiting for order {o}, what is the delay?",
    ],
    "size": [
        "The {p} does not fit, it is too tight.",
        "I got the {p} one size too large.",
        "Could I have the {p} in a smaller size instead?",
        "The {p} in order {o} is far too small for me.",
        "I need to exchange the {p}, the size is off.",
        "The {p} is bigger than the size I picked.",
    ],
    "cancel": [
        "Please do not send order {o}, I want to cancel.",
        "I do not want the {p} any more, stop the order.",
        "Can you halt order {o} before it leaves?",
        "I made a mistake with the {p}, please cancel the order.",
        "Scrap order {o}, please.",
        "Do not ship the {p}, cancel it.",
    ],
    "address": [
        "The {p} must go to a different street.",
        "My new address should be used for order {o}.",
        "Please deliver order {o} to my work address.",
        "I wrote the wrong house number for the {p}.",
        "Can order {o} be redirected to another address?",
        "The {p} should be sent to my parents' address.",
    ],
    "invoice": [
        "I need a bill for the {p}.",
        "Could I get an invoice for my records for order {o}?",
        "The invoice for the {p} never reached me.",
        "Please email an invoice for order {o} to my company.",
        "I am missing the invoice for the {p}.",
        "Can you issue a receipt for order {o}?",
    ],
    "damaged": [
        "The {p} was smashed when it arrived.",
        "Order {o} came damaged, the {p} is ruined.",
        "I found the {p} broken in the box.",
        "The {p} has a crack down the middle.",
        "The parcel for order {o} was damaged and so is the {p}.",
        "The {p} was scratched and dented in transit.",
    ],
    "account": [
        "My password does not work any more.",
        "I want my account removed.",
        "The reset email for my password never came.",
        "I am locked out of my account.",
        "Please remove my account and my details.",
        "I cannot log in, it says my password is wrong.",
    ],
}

# The house style the demo fine-tuning teaches: one fixed reply per intent. None of these sentences appear in
# the pretraining corpus. They do not copy the customer's name: a model this small, pretrained for minutes,
# does not learn to copy an unseen name reliably, and one wrong letter fails exact match.
HOUSE_REPLIES: dict[str, str] = {
    "refund": "Dear customer, thank you for writing to Pebble & Pine. Your refund is on its way and will "
    "reach your card within five working days. Warm wishes, the Pebble & Pine team.",
    "late": "Dear customer, thank you for writing to Pebble & Pine. We are sorry your parcel is late; our "
    "courier has been asked to deliver it within two days. Warm wishes, the Pebble & Pine team.",
    "size": "Dear customer, thank you for writing to Pebble & Pine. A free exchange label is in your inbox; "
    "send the item back and the right size will follow. Warm wishes, the Pebble & Pine team.",
    "cancel": "Dear customer, thank you for writing to Pebble & Pine. Your order is cancelled and nothing "
    "will be charged. Warm wishes, the Pebble & Pine team.",
    "address": "Dear customer, thank you for writing to Pebble & Pine. Please reply with the full new "
    "address and we will update the order before it ships. Warm wishes, the Pebble & Pine team.",
    "invoice": "Dear customer, thank you for writing to Pebble & Pine. Your invoice has been sent to the "
    "email on your account. Warm wishes, the Pebble & Pine team.",
    "damaged": "Dear customer, thank you for writing to Pebble & Pine. We are sorry it arrived damaged; a "
    "replacement is on its way and you can keep the broken one. Warm wishes, the Pebble & Pine team.",
    "account": "Dear customer, thank you for writing to Pebble & Pine. A link to reset your login has been "
    "sent to your email and is valid for one hour. Warm wishes, the Pebble & Pine team.",
}

SYSTEM_PROMPT = "You answer customer emails for Pebble & Pine in the house style."


def _invent_names(rng: random.Random, count: int, syllables: tuple[int, int]) -> list[str]:
    names: set[str] = set()
    while len(names) < count:
        parts = [rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(rng.randint(*syllables))]
        name = "".join(parts) + rng.choice(_CODAS)
        if 4 <= len(name) <= 9:
            names.add(name.capitalize())
    return sorted(names)


def _split(rng: random.Random, items: list[str], held_out: int) -> tuple[list[str], list[str]]:
    shuffled = items[:]
    rng.shuffle(shuffled)
    return sorted(shuffled[held_out:]), sorted(shuffled[:held_out])


@dataclass
class Pool:
    """The values one part of the demo may draw from (the SFT side or the held-out side)."""

    first_names: list[str]
    surnames: list[str]
    greetings: list[str]
    nouns: list[str]
    phrasings: dict[str, list[str]] = field(default_factory=dict)
    orders: tuple[int, int] = (10000, 99999)
    """Order numbers are drawn from this range; the SFT and held-out ranges do not overlap."""


@dataclass
class World:
    """The shop's people, products and phrasings, split into what SFT sees and what eval keeps back."""

    first_names: list[str]
    surnames: list[str]
    sft: Pool
    held_out: Pool
    unseen_phrasings: dict[str, list[str]]

    @classmethod
    def make(cls, seed: int) -> World:
        rng = random.Random(seed)
        first = _invent_names(rng, 600, (2, 2))
        surnames = [n for n in _invent_names(rng, 700, (2, 3)) if n not in first][:500]
        first_sft, first_eval = _split(rng, first, 150)
        sur_sft, sur_eval = _split(rng, surnames, 120)
        greet_sft, greet_eval = _split(rng, GREETINGS, 8)
        noun_sft, noun_eval = _split(rng, NOUNS, 15)
        # Three phrasings per intent are kept out of everything: the SFT data and the pretraining corpus.
        # They measure whether tuning carries over to ways of asking the model has never read.
        seen: dict[str, list[str]] = {}
        unseen: dict[str, list[str]] = {}
        for intent, phrasings in PHRASINGS.items():
            seen[intent], unseen[intent] = _split(rng, phrasings, 3)
        return cls(
            first_names=first,
            surnames=surnames,
            sft=Pool(first_sft, sur_sft, greet_sft, noun_sft, seen, (10000, 59999)),
            held_out=Pool(first_eval, sur_eval, greet_eval, noun_eval, seen, (60000, 99999)),
            unseen_phrasings=unseen,
        )

    def everything(self) -> Pool:
        """The pool of the pretraining corpus: every name, greeting and product, the SFT data's phrasings
        and the corpus's own, but none of the unseen ones kept for evaluation."""
        phrasings = {i: self.sft.phrasings[i] + CORPUS_PHRASINGS[i] for i in INTENTS}
        return Pool(self.first_names, self.surnames, GREETINGS, NOUNS, phrasings)


def house_reply(intent: str) -> str:
    """The reply the demo fine-tuning teaches for `intent`."""
    return HOUSE_REPLIES[intent]
