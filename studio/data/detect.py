"""Guess a dataset's format from its columns and first rows.

    guess = detect(rows)     # Detection(name="sharegpt", mapping={"conversations": ...}, reason="...")

The order of the checks matters: pairs (chosen/rejected) before rated answers (a true/false label), before
conversations, before two answers and a verdict or ranked answers (only in files with no answer column of
their own), before instruction columns, before plain text, before texts taking turns.
"""

from __future__ import annotations

from typing import Any

from studio.data.formats import (
    LABEL_COLUMNS,
    REFERENCE_COLUMNS,
    TOOL_COLUMNS,
    Detection,
    columns_of,
    default_mapping,
    label_value,
    reference_text,
)
from studio.data.pairs import ranked_answers
from studio.data.readers import BROKEN
from studio.data.turns import ROLE_ALIASES, RowProblem, decoded, kind_of


def detect(rows: list[dict[str, Any]]) -> Detection:
    """Guess the format from column names and the first row's value types."""
    found = _detect(rows)
    ref = found.mapping.get("reference")
    first = next((r for r in rows if isinstance(r, dict) and BROKEN not in r), {})
    if ref and reference_text(first.get(ref)) is None:  # a list of answers, a flag: no reference
        found.mapping = {k: v for k, v in found.mapping.items() if k != "reference"}
    return found


def _detect(rows: list[dict[str, Any]]) -> Detection:
    cols = columns_of(rows)
    low = {c.lower() for c in cols}
    first = next((r for r in rows if isinstance(r, dict) and BROKEN not in r), {})

    def pick(name: str, reason: str) -> Detection:
        return Detection(name, default_mapping(name, cols), reason, cols)

    def value(col: str) -> Any:
        for key in first:
            if str(key).lower() == col:
                return first[key]
        return None

    listed = _index_entries(rows)
    if listed is not None:
        return Detection(None, {}, "this is LLaMA-Factory's dataset_info.json, an index of datasets rather than data; "
                         f"open one of the files it lists ({', '.join(listed[:6]) or 'none named'})", cols,
                         mappable=False)
    for c_col, r_col in (("chosen_messages", "rejected_messages"), ("chosen_conversations", "rejected_conversations")):
        if {c_col, r_col} <= low:
            mapping = {"chosen": _orig(cols, c_col), "rejected": _orig(cols, r_col)} | _prompt_column(cols)
            return Detection("preference_messages", mapping, f"{c_col} and {r_col} hold message lists", cols)
    if {"input", "preferred_output", "non_preferred_output"} <= low:  # OpenAI's preference fine-tuning files
        mapping = {"prompt": _orig(cols, "input"), "chosen": _orig(cols, "preferred_output"),
                   "rejected": _orig(cols, "non_preferred_output")}
        return Detection("preference_messages", mapping,
                         "'input' holds the prompt turns; preferred_output and non_preferred_output the answers", cols)
    for c_col, r_col, why in (("response_j", "response_k", "response_j is the answer ranked above response_k"),
                              ("chosen_response", "rejected_response", "chosen_response and rejected_response")):
        if {c_col, r_col} <= low:
            prompt = next(({"prompt": _orig(cols, c)} for c in ("prompt", "question", "instruction", "input")
                           if c in low), {})
            mapping = prompt | {"chosen": _orig(cols, c_col), "rejected": _orig(cols, r_col)} | _opt(cols, "system")
            return Detection("preference", mapping, why, cols)
    if {"chosen", "rejected"} <= low:
        chosen = value("chosen")
        conversation = next((c for c in ("conversations", "messages") if c in low), None)
        if isinstance(chosen, list) and "prompt" in low:  # UltraFeedback's binarized files
            return pick("preference_messages", "a prompt column; chosen and rejected hold whole conversations")
        if isinstance(chosen, (list, dict)) and conversation:  # LLaMA-Factory's ranking files
            mapping = {"prompt": _orig(cols, conversation), "chosen": _orig(cols, "chosen"),
                       "rejected": _orig(cols, "rejected")} | _opt(cols, "system")
            return Detection("preference_messages", mapping,
                             f"'{conversation}' holds the prompt turns; chosen and rejected the answers", cols)
        if isinstance(chosen, (list, dict)):
            return pick("preference_messages", "chosen and rejected hold message lists")
        if "prompt" not in low and "question" not in low and "instruction" not in low:
            if "input" in low and not _transcript(chosen):  # argilla's and others' input/chosen/rejected files
                return Detection("preference", {"prompt": _orig(cols, "input"), "chosen": _orig(cols, "chosen"),
                                                "rejected": _orig(cols, "rejected")} | _opt(cols, "system"),
                                 "input, chosen and rejected columns", cols)
            return pick("hh", "chosen and rejected are whole Human:/Assistant: transcripts")
        found = pick("preference", "prompt, chosen and rejected columns")
        if found.mapping.get("prompt", "").lower() != "instruction":  # input and history go with Alpaca's shape only
            found.mapping = {k: v for k, v in found.mapping.items() if k not in ("input", "history")}
        return found
    label = next((c for c in LABEL_COLUMNS if c in low and _labels_like(rows, _orig(cols, c))), None)
    if label and default_mapping("unpaired", cols).get("prompt"):
        return pick("unpaired", f"'{_orig(cols, label)}' says whether each answer is good or bad")
    for col in ("messages", "conversations", "conversation", "chat"):
        if col not in low:
            continue
        found = _conversation_value(value(col))
        if found is None:
            return Detection("messages", {"messages": _orig(cols, col)},
                             f"'{col}' should hold a list of turns but holds {kind_of(value(col))}", cols)
        tools = next(({"tools": _orig(cols, c)} for c in TOOL_COLUMNS if c in low), {})
        tools |= _reference(cols, col)
        if _ends_on_user(rows, _orig(cols, col)):
            return Detection("prompt_only", {"prompt": _orig(cols, col)} | _opt(cols, "system") | tools,
                             f"every conversation in '{col}' ends on the user's turn, waiting for an answer", cols)
        turn = found[0] if found and isinstance(found[0], dict) else {}
        if "from" in turn or "value" in turn:
            return Detection("sharegpt", {"conversations": _orig(cols, col)} | _opt(cols, "system") | tools,
                             f"'{col}' holds turns with from/value", cols)
        what = "input/output exchanges, read as user and assistant turns" if "input" in turn and "output" in turn \
            else "plain texts, read as user and assistant in turn" if found and isinstance(found[0], str) \
            else "role/content turns"
        return Detection("messages", {"messages": _orig(cols, col)} | tools, f"'{col}' holds {what}", cols)
    if not low & set(ANSWER_COLUMNS):  # two answers and a verdict, or ranked answers, and no answer of its own
        verdict = default_mapping("verdict", cols)
        if {"answer_a", "answer_b", "verdict"} <= set(verdict):
            return Detection("verdict", verdict, f"{verdict['answer_a']} and {verdict['answer_b']} are two "
                             f"answers; '{verdict['verdict']}' says which is better", cols)
        ranked = default_mapping("ranked", cols)
        if {"prompt", "answers"} <= set(ranked) and _ranked(value(ranked["answers"].lower())):
            return Detection("ranked", ranked, f"'{ranked['answers']}' lists answers with their rank or score; "
                             "the best is chosen against the worst", cols)
    if "instruction" in low and "output" in low:
        return pick("alpaca", "instruction and output columns")
    if "instruction" in low and "response" in low:
        return pick("dolly", "instruction and response columns")
    pc = default_mapping("prompt_completion", cols)
    if "prompt" in pc and "completion" in pc:
        return Detection("prompt_completion", pc, f"{pc['prompt']} and {pc['completion']} columns", cols)
    prompts = default_mapping("prompt_only", cols)
    others = [c for c in cols if c not in prompts.values() and c.lower() not in NOT_ANSWERS]
    if prompts.get("prompt") and not others:
        return pick("prompt_only", f"a '{prompts['prompt']}' column with no answers: prompts to answer")
    text = default_mapping("text", cols).get("text")
    if text:
        others = [c for c in cols if c != text and c.lower() not in NOT_ANSWERS + BESIDE_TEXT and
                  (_prose(rows, c) or c.lower() in ("role", "speaker", "sender"))]  # one turn a row: a chat log
        if not others:
            return pick("text", "a text column")
        return Detection(None, {}, f"'{text}' could be plain text, but then {_listing(others)} would not be "
                         f"trained on; map the columns by hand (or choose plain text to train on '{text}' alone)",
                         cols)
    for col in ("data", "dialog", "dialogue"):  # UltraChat's, DailyDialog's: texts taking turns
        found = _conversation_value(value(col)) if col in low else None
        if found and len(found) >= 2 and all(isinstance(t, str) for t in found):
            return Detection("messages", {"messages": _orig(cols, col)},
                             f"'{col}' holds the turns as plain texts, read as user and assistant in turn", cols)
    strings = [c for c in cols if isinstance(first.get(c), str)]
    if len(cols) == 1 and strings:
        return Detection("text", {"text": strings[0]}, "a single text column", cols)
    return Detection(None, {}, "no known format matches these columns; map them by hand", cols)


ANSWER_COLUMNS = ("completion", "output", "response", "answer", "chosen", "messages", "conversations",
                  "conversation")
"""A file with one of these has answers of its own: two more columns of answers are not what it trains on."""
NOT_ANSWERS = ("id", "idx", "source", "category", "split", "intent", "task", "lang", "language", "dataset",
               "images", "image", "metadata", "meta", "system", "tools")
"""Columns that sit beside prompts without being answers: a file of a prompt and these is prompt-only."""


BESIDE_TEXT = ("url", "title", "timestamp", "date", "created", "created_at", "added", "author", "license", "path",
               "file", "filename", "file_path", "repo", "repo_name", "subset", "score", "length", "token_count",
               "n_tokens", "label", "labels", "rating", "tags", "dump", "language_score")
"""Columns that describe a document rather than hold more to learn: a text column beside these (or beside
columns that hold no text: a label, a rating, tags) is plain text."""


def _prose(rows: list[dict[str, Any]], col: str) -> bool:
    """Whether a column holds more text to learn from (a summary, an answer): most of its first values are words
    with spaces between them, not numbers, labels or tags (a CSV gives every value as text)."""
    values = [r.get(col) for r in rows[:20] if isinstance(r, dict) and BROKEN not in r]
    texts = [v.strip() for v in values if isinstance(v, str) and v.strip()]
    words = [v for v in texts if " " in v and not v.replace(".", "", 1).replace("-", "", 1).isdigit()]
    return bool(values) and len(words) * 2 >= len(values)


def _listing(columns: list[str]) -> str:
    return ", ".join(f"'{c}'" for c in columns[:4]) + (f" and {len(columns) - 4} more" if len(columns) > 4 else "")


def _index_entries(rows: list[dict[str, Any]]) -> list[str] | None:
    """The data files a LLaMA-Factory dataset_info.json names, when `rows` is that file (one object whose every
    value describes a dataset by file_name, hf_hub_url ...); None otherwise."""
    if len(rows) != 1 or not isinstance(rows[0], dict) or not rows[0]:
        return None
    keys = ("file_name", "hf_hub_url", "ms_hub_url", "om_hub_url", "script_url", "cloud_file_name")
    entries = list(rows[0].values())
    if not all(isinstance(e, dict) and any(k in e for k in keys) for e in entries):
        return None
    return [str(e.get("file_name") or e.get("hf_hub_url") or e.get("ms_hub_url") or "") for e in entries]


def _ranked(value: Any) -> bool:
    """Whether a first row's answers read as ranked or scored answers (each an object with text and a number)."""
    try:
        return len(ranked_answers(value, "answers")) >= 2
    except RowProblem:
        return False


def _transcript(value: Any) -> bool:
    """Whether a text reads as a Human:/Assistant: transcript."""
    return isinstance(value, str) and ("Human:" in value or "\nH:" in value) and "Assistant:" in value


def _labels_like(rows: list[dict[str, Any]], col: str, sample: int = 50) -> bool:
    """Whether the first values given in `col` read as true/false marks (true/false, yes/no, 1/0 ...); a
    few odd values (typos, 'maybe') still count, and are reported row by row."""
    given = [r[col] for r in rows[:sample * 4] if isinstance(r, dict) and r.get(col) is not None][:sample]
    return bool(given) and sum(label_value(v) is not None for v in given) >= 0.7 * len(given)


def _conversation_value(value: Any) -> list[Any] | None:
    """The first row's turns, decoding JSON text; None when the column does not hold a list."""
    try:
        value = decoded(value, "")
    except RowProblem:
        return None
    return value if isinstance(value, list) else None


def _ends_on_user(rows: list[dict[str, Any]], col: str, sample: int = 200) -> bool:
    """Whether every sampled conversation in `col` (200 spread over the file) ends on a user turn:
    prompts, not examples."""
    seen = 0
    for row in rows[::max(1, len(rows) // sample)]:
        found = _conversation_value(row.get(col)) if isinstance(row, dict) else None
        if not found or not isinstance(found[-1], dict):
            continue
        last = found[-1].get("role", found[-1].get("from"))
        if ROLE_ALIASES.get(str(last).strip().lower()) != "user":
            return False
        seen += 1
    return seen > 0


def _prompt_column(cols: list[str]) -> dict[str, str]:
    low = {c.lower() for c in cols}
    name = next((c for c in ("prompt", "question", "conversations", "messages") if c in low), None)
    return {"prompt": _orig(cols, name)} if name else {}


def _orig(cols: list[str], lower: str) -> str:
    return next(c for c in cols if c.lower() == lower)


def _reference(cols: list[str], used: str) -> dict[str, str]:
    """The reference-answer column beside the conversation column `used` (a maths problem's final answer)."""
    found = next((c for c in REFERENCE_COLUMNS if c in {x.lower() for x in cols} and c != used.lower()), None)
    return {"reference": _orig(cols, found)} if found else {}


def _opt(cols: list[str], name: str) -> dict[str, str]:
    return {name: _orig(cols, name)} if name in {c.lower() for c in cols} else {}
