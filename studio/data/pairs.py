"""Preference pairs as datasets publish them, made into {"prompt", "chosen", "rejected"} message lists.

    preference_pair(row, {"prompt": "question", "chosen": "chosen", "rejected": "rejected"})
    hh_pair(row, {"chosen": "chosen", "rejected": "rejected"})        # Human:/Assistant: transcripts
    verdict_pair(row, {"answer_a": ..., "answer_b": ..., "verdict": "winner"})   # two answers and a verdict

A row that cannot give a pair raises RowProblem naming the column to blame.
"""

from __future__ import annotations

import json
import re
from typing import Any

from studio.data.turns import (
    RowProblem,
    alpaca_prompt,
    check_conversation,
    decoded,
    field_value,
    system_first,
    text_of,
    turns,
    turns_json,
)

_HH_TURN = re.compile(r"(?:^|\n\n)(Human|Assistant|H|A):\s?", re.MULTILINE)
_HH_TURN_LONG = re.compile(r"(?:^|\n\n)(Human|Assistant):\s?", re.MULTILINE)
"""Only the long speaker names: for prompts whose text may hold lines such as 'A: Paris' (Nectar's)."""
_HH_SPEAKS_LONG = re.compile(r"(?:\A|\n\n)\s*(Human|Assistant):")
"""A transcript written with the long names: one at the start or after a blank line, not inside a turn's text."""


def answer_turns(value: Any, col: str) -> list[dict[str, str]]:
    value = turns_json(value)
    if isinstance(value, dict):  # one turn, as LLaMA-Factory writes {"from": "gpt", "value": ...}
        return turns([value], col)
    if isinstance(value, list):
        return turns(value, col)
    text = text_of(value, col)
    return [{"role": "assistant", "content": text}]


def preference_pair(row: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    """Strings or message lists; prompt turns repeated at the start of chosen/rejected are split off, and so are
    the turns both share after them (argilla's Capybara DPO: the first question as prompt, whole chats as answers)."""
    ccol, rcol = mapping["chosen"], mapping["rejected"]
    chosen = answer_turns(field_value(row, mapping, "chosen"), ccol)
    rejected = answer_turns(field_value(row, mapping, "rejected"), rcol)
    check_scores(row, mapping)
    prompt_value = row.get(mapping["prompt"]) if mapping.get("prompt") else None
    if isinstance(prompt_value, dict) and "messages" in prompt_value:  # OpenAI's {"messages": [...], "tools": ...}
        prompt_value = prompt_value["messages"]
    if (mapping.get("input") or mapping.get("history")) and not isinstance(prompt_value, list):
        # Alpaca's shape (LLaMA-Factory's ranking files): the instruction, its input below it, earlier turns;
        # an empty instruction is refused by field_value inside, with the same sentence as below
        prompt = alpaca_prompt(row, mapping, "prompt")
    elif prompt_value is None or (isinstance(prompt_value, str) and not prompt_value.strip()):
        if mapping.get("prompt") and len(chosen) == 1:
            raise RowProblem(mapping["prompt"], f"'{mapping['prompt']}' is missing or empty")
        prompt, chosen, rejected = split_shared_prefix(chosen, rejected, ccol)
    elif isinstance(prompt_value, list):
        prompt = turns(prompt_value, mapping["prompt"])
    else:
        prompt = [{"role": "user", "content": text_of(prompt_value, mapping["prompt"])}]
    prompt = system_first(row, mapping, prompt)
    n = len(prompt)
    if _same_turns(chosen[:n], prompt):
        chosen = chosen[n:]
    if _same_turns(rejected[:n], prompt):
        rejected = rejected[n:]
    shared = []
    if chosen[:1] and rejected[:1] and chosen[0]["role"] == rejected[0]["role"] == "assistant":
        shared, chosen, rejected = split_shared_prefix(chosen, rejected, ccol)  # whole chats past a first question
    return finish_pair(prompt + shared, chosen, rejected, ccol, rcol)


def _same_turns(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    """The same turns, whitespace around each text aside (a prompt column often keeps a trailing newline that
    the chat's copy of it lacks)."""
    strip = lambda turns: [t | {"content": str(t.get("content") or "").strip()} for t in turns]  # noqa: E731
    return len(a) == len(b) and strip(a) == strip(b)


SCORE_COLUMNS = (("score_chosen", "score_rejected"), ("chosen_score", "rejected_score"),
                 ("chosen_rating", "rejected_rating"), ("chosen_avg_rating", "rejected_avg_rating"))
"""Ratings published beside pairs (UltraFeedback's binarized files, argilla's mixes)."""


def check_scores(row: dict[str, Any], mapping: dict[str, str]) -> None:
    """A pair whose own ratings do not put the chosen answer above the rejected one teaches nothing, or
    the opposite of what was meant. Checked only where chosen and rejected are read from columns named for
    them (chosen, chosen_response ...; a file mapped the other way round is the user's call)."""
    if not (str(mapping.get("chosen", "")).lower().startswith("chosen")
            and str(mapping.get("rejected", "")).lower().startswith("rejected")):
        return
    low = {str(k).lower(): k for k in row}
    for c, r in SCORE_COLUMNS:
        if c in low and r in low:
            a, b = _number(row[low[c]]), _number(row[low[r]])
            if a is not None and b is not None and a <= b:
                what = "prefers neither answer" if a == b else "prefers the rejected answer"
                raise RowProblem(low[c], f"'{low[c]}' ({a:g}) is not above '{low[r]}' ({b:g}): the pair {what}")
            return


def _number(value: Any) -> float | None:
    """A score as JSON or a CSV cell gives it; None when it is not a number (or is NaN)."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number else None


def finish_pair(prompt: list[dict[str, str]], chosen: list[dict[str, str]], rejected: list[dict[str, str]],
                ccol: str, rcol: str) -> dict[str, Any]:
    if not prompt:
        raise RowProblem(ccol, "no prompt: chosen and rejected share no opening turns and no prompt column is mapped")
    for col, answer in ((ccol, chosen), (rcol, rejected)):
        if not answer or not any(m["content"].strip() for m in answer):
            raise RowProblem(col, f"'{col}' has no answer after the prompt")
        if answer[0]["role"] != "assistant":
            raise RowProblem(col, f"'{col}' should continue with an assistant answer, found {answer[0]['role']}")
    check_conversation(prompt + chosen, ccol)
    if chosen == rejected:
        raise RowProblem(rcol, "chosen and rejected are identical, so there is nothing to prefer")
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected}


def split_shared_prefix(chosen: list[dict[str, str]], rejected: list[dict[str, str]], col: str):
    n = 0
    while n < min(len(chosen), len(rejected)) - 1 and chosen[n] == rejected[n]:
        n += 1
    while n > 0 and chosen[n - 1]["role"] == "assistant":  # the prompt ends on a user turn
        n -= 1
    return chosen[:n], chosen[n:], rejected[n:]


def parse_hh(text: str, col: str, short_names: bool = True) -> list[dict[str, str]]:
    """'\\n\\nHuman: hi\\n\\nAssistant: hello' -> user/assistant turns. 'H:' and 'A:' name speakers only in
    transcripts that never write 'Human:' or 'Assistant:' (and with `short_names`): in HH-RLHF an answer's own
    lines may start so ('H: hydrogen', 'A: 4')."""
    short = short_names and not _HH_SPEAKS_LONG.search(text)
    parts = (_HH_TURN if short else _HH_TURN_LONG).split(text)
    if len(parts) < 3:
        raise RowProblem(col, f"'{col}' has no 'Human:' / 'Assistant:' turns")
    if parts[0].strip():
        raise RowProblem(col, f"'{col}' has text before the first 'Human:' turn")
    out = []
    for speaker, content in zip(parts[1::2], parts[2::2]):
        role = "user" if speaker in ("Human", "H") else "assistant"
        out.append({"role": role, "content": content.strip()})
    return out


def hh_pair(row: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    ccol, rcol = mapping["chosen"], mapping["rejected"]
    chosen = parse_hh(text_of(field_value(row, mapping, "chosen"), ccol), ccol)
    rejected = parse_hh(text_of(field_value(row, mapping, "rejected"), rcol), rcol)
    for col, said in ((ccol, chosen), (rcol, rejected)):
        if not any(t["role"] == "assistant" for t in said):
            raise RowProblem(col, f"'{col}' has no assistant answer (no 'Assistant:' turn)")
    prompt, chosen, rejected = split_shared_prefix(chosen, rejected, ccol)
    return finish_pair(prompt, chosen, rejected, ccol, rcol)


A_WORDS = {"a", "model_a", "response_a", "answer_a", "first", "left"}
B_WORDS = {"b", "model_b", "response_b", "answer_b", "second", "right"}
TIE_WORDS = ("tie", "both", "neither", "equal", "draw", "none")
ONE_HOT = ("winner_model_a", "winner_model_b", "winner_tie")
SIGNED = ("overall_preference", "preference_strength")
"""Below 0 when the first answer is the better one, above 0 for the second (HelpSteer2 and 3)."""


def verdict_pair(row: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    """Two answers and a verdict saying which is better (Chatbot Arena, Stanford SHP, PKU-SafeRLHF,
    HelpSteer): the better one becomes chosen. Answers are texts, whole conversations, or one text per turn
    (JSON lists) beside a prompt column that lists the user's turns the same way."""
    a_col, b_col = mapping["answer_a"], mapping["answer_b"]
    chosen_col, rejected_col = (a_col, b_col) if _winner(row, mapping) == "a" else (b_col, a_col)
    pcol = mapping.get("prompt")
    questions = _text_list(row.get(pcol)) if pcol else None
    if questions is not None and len(questions) == 1 and _text_list(row.get(chosen_col)) is None:
        row, questions = row | {pcol: questions[0]}, None  # one question in a list, plain answers
    if questions is None:
        picked = {"prompt": pcol, "chosen": chosen_col, "rejected": rejected_col, "system": mapping.get("system")}
        return preference_pair(row, {k: v for k, v in picked.items() if v})
    sides = {}
    for col in (chosen_col, rejected_col):
        answers = _text_list(row.get(col))
        if answers is None or len(answers) != len(questions):
            raise RowProblem(col, f"'{col}' should list one answer for each of the {len(questions)} turns in "
                                  f"'{pcol}'")
        sides[col] = [{"role": role, "content": text_of(text, col)} for q, a in zip(questions, answers)
                      for role, text in (("user", q), ("assistant", a))]
    picked = {"chosen": chosen_col, "rejected": rejected_col, "system": mapping.get("system")}
    return preference_pair(row | sides, {k: v for k, v in picked.items() if v})


def _text_list(value: Any) -> list[Any] | None:
    """A list of texts (None for a missing one), or the same as JSON text; None for anything else."""
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            value = json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            return None
    if isinstance(value, list) and value and all(v is None or isinstance(v, str) for v in value):
        return value
    return None


def _winner(row: dict[str, Any], mapping: dict[str, str]) -> str:
    """'a' or 'b'; a tie, or a verdict that names neither answer, is a RowProblem."""
    col = mapping["verdict"]
    if col.lower() in ONE_HOT:  # one 0/1 column per outcome, as Chatbot Arena's 55k file has them
        low = {str(k).lower(): k for k in row}
        marks = [_mark(row.get(low.get(f"winner_model_{side}", ""))) for side in "ab"]
        if None in marks:
            raise RowProblem(col, "'winner_model_a' and 'winner_model_b' should hold 0 or 1")
        if marks[0] != marks[1]:
            return "a" if marks[0] else "b"
        raise RowProblem(col, "a tie: 'winner_model_a' and 'winner_model_b' name no single winner, so there is "
                              "nothing to prefer")
    value = field_value(row, mapping, "verdict")
    if col.lower() in SIGNED:  # HelpSteer: -3 (the first answer much better) to 3 (the second much better)
        number = _number(value)
        if number is None:
            raise RowProblem(col, f"'{col}' should be a number from -3 to 3, found {value!r}")
        if number == 0:
            raise RowProblem(col, f"a tie: '{col}' is 0, so there is nothing to prefer")
        return "a" if number < 0 else "b"
    if isinstance(value, bool):
        return "a" if value else "b"
    text = str(value).strip().lower()
    named = [side for side in "ab" if text == mapping[f"answer_{side}"].lower()]  # the better answer's column
    if named:
        return named[0]
    if text in A_WORDS or text in B_WORDS:
        return "a" if text in A_WORDS else "b"
    if re.fullmatch(r"\d+(\.0+)?", text):
        number = int(float(text))
        numbered = [re.search(r"(\d+)$", mapping[f"answer_{side}"]) for side in "ab"]
        if all(numbered):  # response_0 / response_1 with the better one's number (PKU-SafeRLHF)
            ids = [int(m.group(1)) for m in numbered if m]
            if number in ids:
                return "ab"[ids.index(number)]
        elif col.lower() == "labels" and number in (0, 1):  # Stanford SHP: 1 when A is the better one
            return "a" if number == 1 else "b"
        else:
            raise RowProblem(col, f"'{col}' holds the number {value!r}, which does not say which of "
                                  f"{mapping['answer_a']} and {mapping['answer_b']} is better; write A or B")
    if text.startswith(TIE_WORDS):
        raise RowProblem(col, f"a tie: '{col}' says {value!r}, so there is nothing to prefer")
    raise RowProblem(col, f"'{col}' should say which answer is better ({mapping['answer_a']} or "
                          f"{mapping['answer_b']}), found {value!r}")


def _mark(value: Any) -> bool | None:
    text = str(value).strip().lower()
    return {"1": True, "1.0": True, "true": True, "0": False, "0.0": False, "false": False}.get(text)


ANSWER_TEXT = ("answer", "response", "text", "content", "completion", "output")
RANK_KEYS = ("rank",)
"""Lower is better (Nectar's 1 to 7)."""
SCORE_KEYS = ("fine-grained_score", "overall_score", "score", "rating", "pm_score")
"""Higher is better (UltraFeedback's completions: the mean of the aspect ratings first, as argilla advises)."""


def ranked_pair(row: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    """One prompt and a list of ranked or scored answers (Nectar, UltraFeedback before binarizing): the
    best-ranked answer is chosen against the worst, so each row gives one pair."""
    col = mapping["answers"]
    ranked = ranked_answers(row.get(col), col)
    if len(ranked) < 2:
        raise RowProblem(col, f"'{col}' needs two answers of different rank to give a pair")
    (best_place, best), (worst_place, worst) = ranked[0], ranked[-1]
    if best_place == worst_place:
        raise RowProblem(col, f"a tie: every answer in '{col}' has the same rank, so there is nothing to prefer")
    pcol = mapping["prompt"]
    value = field_value(row, mapping, "prompt")
    text = text_of(value, pcol) if not isinstance(value, list) else None
    if text is not None and text.lstrip().startswith("Human:"):  # Nectar's prompts are HH transcripts
        prompt = parse_hh("\n\n" + text.strip(), pcol, short_names=False)
        if prompt[-1]["role"] == "assistant" and not prompt[-1]["content"]:
            prompt = prompt[:-1]
    else:
        prompt = turns(value, pcol) if text is None else [{"role": "user", "content": text}]
    prompt = system_first(row, mapping, prompt)
    check_conversation(prompt, pcol, need_answer=False)
    if prompt[-1]["role"] != "user":
        raise RowProblem(pcol, f"'{pcol}' should end on the user's turn, before the answers")
    return finish_pair(prompt, [{"role": "assistant", "content": best}], [{"role": "assistant", "content": worst}],
                       col, col)


def ranked_answers(value: Any, col: str) -> list[tuple[float, str]]:
    """(place, text) of every answer, best first: place is the rank, or the score negated. Every answer is
    placed by the same key: the first of RANK_KEYS and SCORE_KEYS that all of them give as a number."""
    value = decoded(value, col)
    if not isinstance(value, list) or not value or not all(isinstance(a, dict) for a in value):
        raise RowProblem(col, f"'{col}' should be a list of answers, each with its text and rank or score")
    for n, answer in enumerate(value, start=1):
        if not any(k in answer for k in ANSWER_TEXT):
            raise RowProblem(col, f"answer {n} in '{col}' has no text ({', '.join(ANSWER_TEXT[:3])} ...)")
    key = next((k for k in RANK_KEYS + SCORE_KEYS if all(_is_number(a.get(k)) for a in value)), None)
    if key is None:
        raise RowProblem(col, f"the answers in '{col}' share no rank or score to order them by "
                              f"({', '.join(RANK_KEYS + SCORE_KEYS)})")
    sign = 1 if key in RANK_KEYS else -1
    out = []
    for n, answer in enumerate(value, start=1):
        text_key = next(k for k in ANSWER_TEXT if k in answer)
        try:
            out.append((sign * float(answer[key]), text_of(answer[text_key], col)))
        except RowProblem as problem:
            raise RowProblem(col, f"answer {n} in '{col}': {problem.message}") from None
    return sorted(out, key=lambda a: a[0])


def _is_number(value: Any) -> bool:
    return _number(value) is not None
