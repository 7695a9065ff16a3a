"""The final answer of a worked solution, and whether two final answers agree (maths and other checkable tasks).

    final_answer("... so she sold 72 clips.\\n#### 72")             # '72'      (GSM8K)
    final_answer("the graph has $\\\\boxed{2}$ vertical asymptotes")  # '2'       (MATH, R1-style answers)
    final_answer("<think>...</think><answer>1/2</answer>")           # '1/2'
    same_answer("\\\\frac{1}{2}", "0.5")                              # True

Only what follows a reasoning model's </think> counts, and a text still inside <think> gives none (also when the
chat template opened <think> in the prompt: prompt_opens_thinking). Where an
answer is marked, the mark wins, the last one first: \\boxed{...} (or \\fbox), GSM8K's '#### ...' as the last line,
<answer>...</answer> tags, 'the answer is ...' / 'Answer: ...'. A text with none of these that fits on one
short line is its own final answer (a dataset's `answer` column: '72', '\\dfrac{1}{2}'). Otherwise the last
number in the text is taken. Marks are looked for in the last TAIL characters only (answers end a text; a
very long one must not stall a training step).

Two answers agree when both read as numbers and are equal (1,000 = 1000.0, \\frac{1}{2} = 1/2 = 0.5, a per
cent sign set aside: 50% = 50), else when their text is the same once LaTeX spacing, dollars, \\text{...}
wrappers and braces around one character are set aside. Against a number, an answer of one number with words
around it ('18 dollars a day', 'x = 4', 'There are 7.') counts by that number; '3 or 72', '2\\sqrt{2}' or 'x^2'
do not.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

TAIL = 4000
"""Characters at the end of a text that are searched for a marked answer."""
_MARKED = (
    re.compile(r"(?:^|\n)####(?!#)[ \t]*([^\n]*\S)[ \t]*\Z"),
    re.compile(r"<answer>\s*(.*?)\s*</answer>", re.DOTALL | re.IGNORECASE),
    re.compile(r"\b(?:final answer|the answer)[ \t]*(?:is|:|=)[ \t]*:?[ \t]*([^\n]+)", re.IGNORECASE),
    re.compile(r"(?:^|\n)[ \t]*answer[ \t]*:[ \t]*([^\n]+)", re.IGNORECASE),
)
_STRONG = _MARKED[:2]
"""Marks a dataset's worked answers use (a box is one too): a text with one states its final answer."""
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:/\d+)?|-?\.\d+")
SHORT = 64
"""A text of at most this many characters on one line is taken whole when it marks no answer."""


def boxed(text: str) -> str | None:
    """The contents of the last \\boxed{...} or \\fbox{...}, braces inside it balanced; None when there is none."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    rest = re.sub(r"^\\(?:boxed|fbox)", "", text[start:]).lstrip()
    if not rest.startswith("{"):  # \boxed 5
        word = re.match(r"[^\s$]+", rest)
        return word.group(0) if word else None
    depth, out = 1, []
    for ch in rest[1:]:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return "".join(out).strip()
        out.append(ch)
    return None  # the box was never closed (an answer cut off by the length limit)


def _sentence_end(hit: str) -> str:
    """A marked answer up to the end of its sentence: '72. So she...' -> '72' ('3.5' keeps its point)."""
    return re.split(r"\.(?:\s|$)", hit.strip(), maxsplit=1)[0].strip()


def final_answer(text: str, thinking: bool = False) -> str | None:
    """The final answer written in `text`; None when it gives none. `thinking`: the prompt opened <think> itself
    (see prompt_opens_thinking), so a text with no </think> never stopped thinking."""
    text = str(text or "").strip()
    if "</think>" in text:  # a reasoning model's answer comes after its thinking, whatever the thinking tried
        text = text.rsplit("</think>", 1)[1].strip()
    elif "<think>" in text or thinking:
        return None  # still thinking when the length limit came: no answer given
    if not text:
        return None
    tail = text[-TAIL:]
    found = boxed(tail)
    if found:
        return found
    if found is None and re.search(r"\\(?:boxed|fbox)\s*\{", tail):
        return None  # a box opened and never closed: the answer was cut off
    for n, pattern in enumerate(_MARKED):
        hits = [h for h in pattern.findall(tail) if h.strip()]
        if hits:
            hit = hits[-1] if n < 2 else _sentence_end(hits[-1])
            return boxed(hit) or hit.strip() or None
    if "\n" not in text and len(text) <= SHORT:
        return text
    numbers = _NUMBER.findall(tail)
    return numbers[-1] if numbers else None


_WRAPPERS = re.compile(r"\\(?:text|textbf|mathrm|mathbf|mbox)\s*\{([^{}]*)\}")
_FRAC = re.compile(r"\\[dt]?frac\s*\{([^{}]+)\}\s*\{([^{}]+)\}|\\[dt]?frac(\d)(\d)")
_ONE_NUMBER = re.compile(r"(?:[a-z]+=?)?(-?\d[\d,]*(?:\.\d+)?(?:/\d+)?)(?:%|[a-z]+)?")
"""A normalised answer that is one number with words around it ('x=4', 'thereare7', '18dollarsaday')."""


def normal(answer: str) -> str:
    """An answer's text with LaTeX spacing, dollars, \\text{} wrappers, braces around one character and a closing
    full stop set aside."""
    out = _WRAPPERS.sub(r"\1", answer)
    for token in ("\\left", "\\right", "\\!", "\\,", "\\;", "\\:", "\\ ", "\\$", "$", "^\\circ", "^{\\circ}", "\\%"):
        out = out.replace(token, "%" if token == "\\%" else "")
    out = out.replace("{,}", ",")
    out = _FRAC.sub(lambda m: f"({m.group(1) or m.group(3)})/({m.group(2) or m.group(4)})", out)
    out = re.sub(r"\{(\w)\}", r"\1", out)  # e^{2} = e^2, \sqrt{2} = \sqrt2
    out = re.sub(r"\s+", "", out).rstrip(".").lower()
    out = re.sub(r"^(-?)\((-?[\d.]+)\)/\((-?[\d.]+)\)$", r"\1\2/\3", out).replace("--", "")
    return re.sub(r"^\(([a-z])\)$", r"\1", out)  # a choice written (B)


def number(answer: str) -> Fraction | None:
    """The answer as an exact number (commas between digit groups allowed, a/b fractions, a trailing % dropped)."""
    text = normal(answer).rstrip("%")
    if re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?", text):
        text = text.replace(",", "")
    if not re.fullmatch(r"-?\d+/\d+|-?(\d+\.?\d*|\.\d+)(e-?\d{1,3})?", text):  # exponents bounded: 1e9999999 is text
        return None
    try:
        return Fraction(text)
    except (ValueError, ZeroDivisionError):
        return None


def same_answer(answer: str | None, reference: str | None) -> bool:
    """Whether two final answers agree: equal as numbers where both are numbers, else as normalised text."""
    if not answer or not reference:
        return False
    a, r = number(answer), number(reference)
    if a is None and r is not None:
        one = _ONE_NUMBER.fullmatch(normal(answer))
        a = number(one.group(1)) if one else None
    if a is not None and r is not None:
        return a == r
    return normal(answer) == normal(reference)


def marks_answer(text: str) -> bool:
    """Whether a worked solution states where its final answer is: a box, a closing '#### ...' line or <answer>
    tags (the marks datasets use; 'the answer is' in a support reply is not one)."""
    tail = str(text or "")[-TAIL:]
    return boxed(tail) is not None or any(p.search(tail) for p in _STRONG)


def answer_matches(completion: str, reference: str, thinking: bool = False) -> float:
    """1.0 when the completion's final answer agrees with the reference's, else 0.0 (`thinking`: as final_answer)."""
    return float(same_answer(final_answer(completion, thinking), final_answer(reference)))


def prompt_opens_thinking(tokenizer: Any) -> bool:
    """Whether the model's chat template ends the prompt with <think> itself (DeepSeek-R1's distills do): its
    answers then carry no <think> of their own, and one without </think> was cut off while still thinking."""
    if not getattr(tokenizer, "chat_template", None):
        return False
    try:
        text = tokenizer.apply_chat_template([{"role": "user", "content": "What is 1 + 1?"}], tokenize=False,
                                             add_generation_prompt=True)
    except Exception:  # a template that cannot render this: its runs fail elsewhere, with their own sentence
        return False
    return str(text).rstrip().endswith("<think>")
