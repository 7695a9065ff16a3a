"""The pretraining corpus of the built-in tiny model: general text and chats about the Pebble & Pine world.

It makes the tiny model a small general-purpose assistant for this world: it reads customer emails,
stories and catalogue entries, answers questions about a message it was given, repeats things back,
and replies to support emails in a plain, varied, helpful way. It never sees the house-style replies
(`world.HOUSE_REPLIES`), which are what the demo fine-tuning teaches.

    documents = pretraining_documents(World.make(0), count=60_000, seed=0)

Each document is either a string (plain text) or a list of chat messages.
"""

from __future__ import annotations

import random

from studio.demo.emails import EXTRAS, Email, compose_email, order_number, product_name
from studio.demo.world import GREETINGS, INTENTS, MATERIALS, NOUNS, SHOP, TOWNS, World

Document = str | list[dict[str, str]]

SYSTEM_PROMPTS = [
    "You are a helpful assistant.",
    "You are a friendly shop assistant.",
    "Answer briefly.",
    "You help customers of a homeware shop.",
    "You are a support agent. Be polite.",
    "Reply to the customer.",
    "You are a careful assistant who answers questions about text.",
]

OPENINGS = [
    "Hi {first},",
    "Hello {first},",
    "Hi {first}, thanks for your message.",
    "{first}, thank you for getting in touch.",
    "Hello {first}, thanks for contacting us.",
    "Hi {first}!",
    "Good to hear from you, {first}.",
    "Thanks for reaching out, {first}.",
    "Hello {first}, and thank you for your email.",
]

CLOSINGS = [
    "Best regards, Sam from support.",
    "Thanks, the support desk.",
    "Have a nice day!",
    "Let me know if there is anything else.",
    "Kind regards, Mo.",
    "Speak soon, Ria from customer care.",
    "All the best.",
    "We are here if you need us.",
    "Cheers, Tam.",
]

# What a plain, helpful assistant says about each request: different wording from the house replies.
GENERIC_BODIES: dict[str, list[str]] = {
    "refund": [
        "I can help with the refund for order {o}.",
        "Refunds usually take a few days once the item is back with us.",
        "I have passed your refund request for the {p} to our payments team.",
        "Once we get the {p} back, the money goes back to your card.",
        "I am sorry the {p} did not work out; a refund is possible within thirty days.",
    ],
    "late": [
        "I am sorry order {o} is taking so long.",
        "I have checked with the courier and the {p} is on its way.",
        "Deliveries are slow this week, the {p} should arrive soon.",
        "I have asked the warehouse about order {o}.",
        "Sorry for the wait, parcels can take up to ten days.",
    ],
    "size": [
        "We can swap the {p} for another size.",
        "Sorry the {p} does not fit.",
        "Exchanges are free for thirty days, just send the {p} back.",
        "I can change the size on order {o} for you.",
        "Which size would you like instead of the {p} you got?",
        "Sizes can run small, so an exchange is no trouble.",
    ],
    "cancel": [
        "I can cancel order {o} if it has not shipped.",
        "No problem, I will stop the order for the {p}.",
        "Order {o} has been stopped.",
        "If the {p} has already left, you can return it instead.",
        "I have asked the warehouse to hold order {o}.",
        "Orders can be cancelled until they leave the warehouse.",
    ],
    "address": [
        "I can change the address on order {o}.",
        "What is the new address for the {p}?",
        "Please tell me the new street and town.",
        "The address can be changed until the {p} ships.",
        "I have noted that order {o} needs a new address.",
    ],
    "invoice": [
        "I can send an invoice for order {o}.",
        "Receipts are also in your account under orders.",
        "I will email you a copy of the bill for the {p}.",
        "Which company name should go on the invoice?",
        "The receipt for order {o} is attached.",
    ],
    "damaged": [
        "I am so sorry the {p} was damaged.",
        "Could you send a photo of the {p}?",
        "We will send a new {p} or a refund, whichever you prefer.",
        "Sorry order {o} arrived in that state.",
        "The courier should have handled the {p} with more care.",
        "Sorry about that, breakages are rare but they happen.",
    ],
    "account": [
        "I can help you get back into your account.",
        "Try the forgot password link on the login page.",
        "I have unlocked your account.",
        "Password emails can land in the spam folder.",
        "What email address is on the account?",
    ],
}

INTENT_WORDS = {
    "refund": "a refund",
    "late": "to know where a late delivery is",
    "size": "to exchange an item for another size",
    "cancel": "to cancel an order",
    "address": "to change the delivery address",
    "invoice": "an invoice",
    "damaged": "help with a damaged item",
    "account": "help with their account",
}

WORDS = sorted({w.strip(".,!?").lower() for text in EXTRAS + CLOSINGS for w in text.split()} | set(NOUNS))


def generic_reply(rng: random.Random, email: Email) -> str:
    """A plain, helpful reply that suits the email's intent but is not the house style."""
    fill = {"first": email.first, "p": email.product, "o": email.order}
    parts = [rng.choice(OPENINGS)] if rng.random() < 0.85 else []
    # Mention only the order or product the customer gave: a reply that invents one would teach hallucination.
    bodies = [
        b
        for b in GENERIC_BODIES[email.intent]
        if ("{o}" not in b or email.order in email.text) and ("{p}" not in b or email.product in email.text)
    ]
    parts += rng.sample(bodies, min(len(bodies), rng.randint(1, 2)))
    if rng.random() < 0.7:
        parts.append(rng.choice(CLOSINGS))
    return " ".join(parts).format(**fill)


def support_chat(rng: random.Random, world: World) -> Document:
    email = compose_email(rng, world.everything(), rng.choice(INTENTS))
    messages = []
    if rng.random() < 0.4:
        messages.append({"role": "system", "content": rng.choice(SYSTEM_PROMPTS)})
    messages += [
        {"role": "user", "content": email.text},
        {"role": "assistant", "content": generic_reply(rng, email)},
    ]
    if rng.random() < 0.15:
        messages += [
            {"role": "user", "content": rng.choice(["Thank you!", "Great, thanks.", "Ok, thanks a lot."])},
            {"role": "assistant", "content": rng.choice(["You are welcome!", "Happy to help.", "Any time."])},
        ]
    return messages


def reading_chat(rng: random.Random, world: World) -> Document:
    """A question about a pasted email: these teach the model to find and copy values, and to tell intents apart."""
    email = compose_email(rng, world.everything(), rng.choice(INTENTS))
    question, answer = rng.choice(
        [
            ("What is the customer's first name?", f"The first name is {email.first}."),
            ("Who wrote this email?", f"It was written by {email.first} {email.surname}."),
            ("What does the customer want?", f"{email.first} wants {INTENT_WORDS[email.intent]}."),
            ("Summarise this email in one sentence.", f"{email.first} wants {INTENT_WORDS[email.intent]}."),
            ("Which product is this about?", f"The {email.product}."),
            ("Greet the customer by first name.", f"Hello {email.first}!"),
            ("What kind of request is this?", f"It is a {email.intent} request."),
        ]
    )
    if question == "Which product is this about?" and email.product.split()[-1] not in email.text:
        question, answer = "What is the customer's first name?", f"The first name is {email.first}."
    user = f"{question}\n\n{email.text}" if rng.random() < 0.5 else f"{email.text}\n\n{question}"
    return [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]


def copy_chat(rng: random.Random, world: World) -> Document:
    """Repeat-after-me tasks: repeats in the corpus are what grow a model's copying heads."""
    pool = world.everything()
    words = rng.choices(pool.first_names + WORDS + MATERIALS, k=rng.randint(2, 8))
    if rng.random() < 0.3:
        words = [order_number(rng)]
    phrase = " ".join(words)
    ask = rng.choice(
        ["Repeat after me: {x}", "Say this back to me: {x}", "Copy this exactly: {x}", "Please repeat: {x}"]
    )
    return [{"role": "user", "content": ask.format(x=phrase)}, {"role": "assistant", "content": phrase}]


def small_talk(rng: random.Random, world: World) -> Document:
    first = rng.choice(world.first_names)
    user, reply = rng.choice(
        [
            (f"{rng.choice(GREETINGS)}! My name is {first}.", f"Hello {first}! How can I help you today?"),
            (
                "What does Pebble & Pine sell?",
                "Pebble & Pine sells homeware: lamps, mugs, rugs, chairs and more.",
            ),
            (f"Where is {rng.choice(TOWNS)}?", "It is a small town in the north of the valley."),
            ("Who are you?", "I am a small assistant that helps with questions about shops and orders."),
            ("Tell me a fact about the shop.", f"{SHOP} was founded in Tollby and ships across the valley."),
            (f"Thanks, {first}.", "You are welcome."),
        ]
    )
    return [{"role": "user", "content": user}, {"role": "assistant", "content": reply}]


def story(rng: random.Random, world: World) -> Document:
    first, sur, town = rng.choice(world.first_names), rng.choice(world.surnames), rng.choice(TOWNS)
    product, order = product_name(rng, NOUNS), order_number(rng)
    sentences = [
        f"{first} {sur} lives in {town}.",
        f"Last week {first} bought a {product} from {SHOP}.",
        rng.choice(
            [
                f"The {product} arrived on time and {first} was happy with it.",
                f"The courier was late and {first} waited for days.",
                f"The order number was {order}.",
                f"{first} paid with a card and kept the receipt.",
                f"The {product} was a gift for a friend in {rng.choice(TOWNS)}.",
                "A replacement was sent when the first one broke.",
                f"{first} checked the inbox for a reset email, which is valid for one hour.",
            ]
        ),
        rng.choice(
            [
                f"{first} likes {rng.choice(MATERIALS)} things.",
                f"{first} tells everyone about {SHOP}.",
                f"Later {first} wrote a review of the {product}.",
                f"{first} asked for an exchange label.",
                f"The team in {town} packs every parcel by hand.",
            ]
        ),
    ]
    return " ".join(sentences[: rng.randint(2, 4)])


def catalogue(rng: random.Random, world: World) -> Document:
    material, noun = rng.choice(MATERIALS), rng.choice(NOUNS)
    return (
        f"The {material} {noun} is made of {material}. It costs {rng.randint(4, 120)} pounds and ships "
        f"within {rng.randint(1, 5)} working days from {rng.choice(TOWNS)}."
    )


NOTES = [
    "Someone at the shop may read your email next week.",
    "Hundreds of parcels leave the warehouse every day.",
    "The {p} keeps the kitchen warm in winter.",
    "Best wishes for the new house, {first}!",
    "Money can take five days to reach a bank in {town}.",
    "Nothing was charged for the second parcel.",
    "{first} is writing a letter to a friend in {town}.",
    "Keep the receipt in a safe place.",
    "Read the care label before you wash the {p}.",
    "Ask at the counter in {town} for a catalogue.",
    "Choose the right size from the chart on the website.",
    "The next delivery to {town} is on Friday.",
    "A new range of {m} goods will follow in the spring.",
    "The shop style is simple and warm.",
    "{first} came back for a third {p}.",
    "Whatever the weather, the couriers go out at eight.",
    "Please write to the team if a parcel is late.",
    "{first} has been a customer for five years.",
    "Customers in {town} can collect parcels at the post office.",
    "The {p} was sent again at no charge.",
    "An exchange is free within thirty days.",
    "Every email gets an answer within two working days.",
    "The website lists every order under your account.",
    "A courier left the {p} with a neighbour.",
    "The team checks each {p} for scratches before it is packed.",
    "{first} signed up for the newsletter.",
]


def shop_notes(rng: random.Random, world: World) -> Document:
    """Plain sentences that widen the vocabulary, so the house replies use no word the model never saw."""
    fill = {
        "first": rng.choice(world.first_names),
        "town": rng.choice(TOWNS),
        "p": product_name(rng, NOUNS),
        "m": rng.choice(MATERIALS),
    }
    return " ".join(note.format(**fill) for note in rng.sample(NOTES, rng.randint(2, 4)))


def plain_email(rng: random.Random, world: World) -> Document:
    return compose_email(rng, world.everything(), rng.choice(INTENTS)).text


KINDS = [
    (support_chat, 0.4),
    (reading_chat, 0.22),
    (copy_chat, 0.13),
    (small_talk, 0.04),
    (story, 0.07),
    (shop_notes, 0.07),
    (catalogue, 0.03),
    (plain_email, 0.04),
]


def pretraining_documents(world: World, count: int, seed: int) -> list[Document]:
    rng = random.Random(seed)
    makers, weights = zip(*KINDS)
    return [maker(rng, world) for maker in rng.choices(makers, weights=weights, k=count)]
