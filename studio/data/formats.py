"""Recognise the shape of a dataset and normalise it into TRL's standard forms.

    guess = detect(rows)                      # Detection(name="alpaca", mapping={...}, ...)
    records, issues = normalise(rows, guess.name, guess.mapping)

Normalised records are one of:
    {"messages": [{"role": ..., "content": ...}, ...]}                      (SFT, conversational)
    {"prompt": [msgs], "chosen": [assistant msg], "rejected": [assistant msg]}  (preference)
    {"text": "..."}                                                         (plain text)
A row that cannot be normalised becomes None, with an `Issue` naming its field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from studio.data.readers import BROKEN


@dataclass(frozen=True)
class FormatSpec:
    name: str
    label: str
    kind: str
    """sft, preference or text: which normalised form it produces."""
    fields: dict[str, tuple[str, ...]]
    """target field -> column names tried in order when detecting."""
    optional: tuple[str, ...] = ()


SPECS = {s.name: s for s in [
    FormatSpec("messages", "Chat messages (role/content)", "sft", {"messages": ("messages", "conversation", "chat")}),
    FormatSpec("sharegpt", "ShareGPT (from/value)", "sft",
               {"conversations": ("conversations", "conversation", "messages"), "system": ("system",)},
               optional=("system",)),
    FormatSpec("alpaca", "Alpaca (instruction/input/output)", "sft",
               {"instruction": ("instruction",), "input": ("input",), "output": ("output",),
                "system": ("system",), "history": ("history",)}, optional=("input", "system", "history")),
    FormatSpec("dolly", "Dolly (instruction/context/response)", "sft",
               {"instruction": ("instruction",), "context": ("context",), "response": ("response",)},
               optional=("context",)),
    FormatSpec("prompt_completion", "Prompt and completion", "sft",
               {"prompt": ("prompt", "question", "query", "input"),
                "completion": ("completion", "response", "answer", "output", "target"), "system": ("system",)},
               optional=("system",)),
    FormatSpec("preference", "Preference pairs (prompt/chosen/rejected)", "preference",
               {"prompt": ("prompt", "question", "instruction"), "chosen": ("chosen",), "rejected": ("rejected",),
                "system": ("system",)}, optional=("system",)),
    FormatSpec("preference_messages", "Preference pairs as message lists", "preference",
               {"prompt": ("prompt", "question", "conversations", "messages"),
                "chosen": ("chosen", "chosen_messages", "chosen_conversations"),
                "rejected": ("rejected", "rejected_messages", "rejected_conversations"), "system": ("system",)},
               optional=("prompt", "system")),
    FormatSpec("hh", "Anthropic HH (Human:/Assistant: transcripts)", "preference",
               {"chosen": ("chosen",), "rejected": ("rejected",)}),
    FormatSpec("text", "Plain text", "text", {"text": ("text", "content", "document", "body")}),
]}

ROLE_ALIASES = {"system": "system", "user": "user", "human": "user", "assistant": "assistant", "gpt": "assistant",
                "bot": "assistant", "model": "assistant", "tool": "tool", "function": "tool", "observation": "tool",
                "function_call": "assistant", "chatgpt": "assistant", "prompter": "user"}
_HH_TURN = re.compile(r"(?:^|\n\n)(Human|Assistant|H|A):\s?", re.MULTILINE)


@dataclass
class Issue:
    index: int
    """0-based row index in the file."""
    field: str
    message: str
    severity: str = "error"
    """error: the row cannot be used. warning: usable, but look at it."""


@dataclass
class Detection:
    name: str | None
    mapping: dict[str, str] = field(default_factory=dict)
    reason: str = ""
    columns: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str | None:
        return SPECS[self.name].kind if self.name else None


def columns_of(rows: list[dict[str, Any]], sample: int = 200) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows[:sample]:
        if BROKEN in row:
            continue
        for key in row:
            seen.setdefault(str(key), None)
    return list(seen)


def spec_of(name: str) -> FormatSpec:
    if name not in SPECS:
        raise ValueError(f"Unknown format '{name}'; choose one of {', '.join(SPECS)}.")
    return SPECS[name]


def default_mapping(name: str, columns: list[str]) -> dict[str, str]:
    spec = spec_of(name)
    lower = {c.lower(): c for c in columns}
    mapping = {}
    for target, candidates in spec.fields.items():
        for cand in candidates:
            if cand in lower:
                mapping[target] = lower[cand]
                break
    return mapping


def detect(rows: list[dict[str, Any]]) -> Detection:
    """Guess the format from column names and the first row's value types."""
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

    for c_col, r_col in (("chosen_messages", "rejected_messages"), ("chosen_conversations", "rejected_conversations")):
        if {c_col, r_col} <= low:
            mapping = {"chosen": _orig(cols, c_col), "rejected": _orig(cols, r_col)} | _prompt_column(cols)
            return Detection("preference_messages", mapping, f"{c_col} and {r_col} hold message lists", cols)
    if {"chosen", "rejected"} <= low:
        chosen = value("chosen")
        conversation = next((c for c in ("conversations", "messages") if c in low), None)
        if isinstance(chosen, (list, dict)) and conversation:  # LLaMA-Factory's ranking files
            mapping = {"prompt": _orig(cols, conversation), "chosen": _orig(cols, "chosen"),
                       "rejected": _orig(cols, "rejected")} | _opt(cols, "system")
            return Detection("preference_messages", mapping,
                             f"'{conversation}' holds the prompt turns; chosen and rejected the answers", cols)
        if isinstance(chosen, (list, dict)):
            return pick("preference_messages", "chosen and rejected hold message lists")
        if "prompt" not in low and "question" not in low and "instruction" not in low:
            return pick("hh", "chosen and rejected are whole Human:/Assistant: transcripts")
        return pick("preference", "prompt, chosen and rejected columns")
    for col in ("messages", "conversations", "conversation", "chat"):
        if col in low and isinstance(value(col), list):
            turns = value(col)
            turn = turns[0] if turns and isinstance(turns[0], dict) else {}
            if "from" in turn or "value" in turn:
                return Detection("sharegpt", {"conversations": _orig(cols, col)} | _opt(cols, "system"),
                                 f"'{col}' holds turns with from/value", cols)
            return Detection("messages", {"messages": _orig(cols, col)}, f"'{col}' holds role/content turns", cols)
    if "instruction" in low and "output" in low:
        return pick("alpaca", "instruction and output columns")
    if "instruction" in low and "response" in low:
        return pick("dolly", "instruction and response columns")
    pc = default_mapping("prompt_completion", cols)
    if "prompt" in pc and "completion" in pc:
        return Detection("prompt_completion", pc, f"{pc['prompt']} and {pc['completion']} columns", cols)
    if default_mapping("text", cols):
        return pick("text", "a text column")
    strings = [c for c in cols if isinstance(first.get(c), str)]
    if len(cols) == 1 and strings:
        return Detection("text", {"text": strings[0]}, "a single text column", cols)
    return Detection(None, {}, "no known format matches these columns; map them by hand", cols)


def _prompt_column(cols: list[str]) -> dict[str, str]:
    low = {c.lower() for c in cols}
    name = next((c for c in ("prompt", "question", "conversations", "messages") if c in low), None)
    return {"prompt": _orig(cols, name)} if name else {}


def _orig(cols: list[str], lower: str) -> str:
    return next(c for c in cols if c.lower() == lower)


def _opt(cols: list[str], name: str) -> dict[str, str]:
    return {name: _orig(cols, name)} if name in {c.lower() for c in cols} else {}


def missing_fields(name: str, mapping: dict[str, str]) -> list[str]:
    spec = SPECS[name]
    return [f for f in spec.fields if f not in spec.optional and not mapping.get(f)]


def normalise(rows: list[dict[str, Any]], name: str, mapping: dict[str, str] | None = None
              ) -> tuple[list[dict[str, Any] | None], list[Issue]]:
    """Convert every row; rows that cannot be used become None and get an Issue."""
    spec_of(name)
    mapping = dict(mapping or default_mapping(name, columns_of(rows)))
    lacking = missing_fields(name, mapping)
    if lacking:
        raise ValueError(f"The {SPECS[name].label} format needs a column for {', '.join(lacking)}.")
    convert = _CONVERTERS[name]
    records: list[dict[str, Any] | None] = []
    issues: list[Issue] = []
    for i, row in enumerate(rows):
        if BROKEN in row:
            records.append(None)
            issues.append(Issue(i, "line", row[BROKEN]))
            continue
        try:
            records.append(convert(row, mapping))
        except RowProblem as p:
            records.append(None)
            issues.append(Issue(i, p.field, p.message))
    return records, issues


class RowProblem(Exception):
    def __init__(self, field_name: str, message: str):
        super().__init__(message)
        self.field = field_name
        self.message = message


def _get(row: dict[str, Any], mapping: dict[str, str], target: str, required: bool = True) -> Any:
    col = mapping.get(target)
    value = row.get(col) if col else None
    if required and (value is None or (isinstance(value, str) and not value.strip())):
        raise RowProblem(col or target, f"'{col or target}' is missing or empty")
    return value


def _text(value: Any, col: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, list) and all(isinstance(p, dict) for p in value):  # content parts
        texts = [p for p in value if p.get("type", "text") == "text"]
        text = "".join(str(p.get("text", p.get("value", ""))) for p in texts)
        others = sorted({str(p.get("type")) for p in value if p not in texts})
        if not text.strip() and others:
            raise RowProblem(col, f"'{col}' holds only {', '.join(others)} parts; the studio trains on text")
        return text
    raise RowProblem(col, f"'{col}' should be text, found {_kind(value)}")


def _kind(value: Any) -> str:
    return {list: "a list", dict: "an object", bool: "true/false", int: "a number", float: "a number",
            str: "text", type(None): "null"}.get(type(value), type(value).__name__)


def _turns(value: Any, col: str, role_key: str = "role", content_key: str = "content") -> list[dict[str, str]]:
    if hasattr(value, "tolist"):
        value = value.tolist()
    if not isinstance(value, list):
        raise RowProblem(col, f"'{col}' must be a list of turns, found {_kind(value)}")
    if not value:
        raise RowProblem(col, f"'{col}' has no turns")
    out = []
    for n, turn in enumerate(value, start=1):
        if not isinstance(turn, dict):
            raise RowProblem(col, f"turn {n} of '{col}' must be an object, found {_kind(turn)}")
        raw_role = turn.get(role_key, turn.get("role", turn.get("from")))
        role = ROLE_ALIASES.get(str(raw_role).strip().lower()) if raw_role is not None else None
        if role is None:
            raise RowProblem(col, f"turn {n} of '{col}' has unknown role {raw_role!r}")
        content = _text(turn.get(content_key, turn.get("content", turn.get("value"))), col)
        out.append({"role": role, "content": content})
    return out


def check_conversation(msgs: list[dict[str, str]], col: str, need_answer: bool = True) -> None:
    """System first if present, then user and assistant taking turns (tool replies after the assistant)."""
    body = msgs[1:] if msgs and msgs[0]["role"] == "system" else msgs
    for n, m in enumerate(msgs, start=1):
        if m["role"] == "system" and n != 1:
            raise RowProblem(col, f"turns out of order: a system turn at position {n}; it belongs first")
        if m["role"] in ("user", "assistant") and not m["content"].strip():
            raise RowProblem(col, f"turn {n} of '{col}' ({m['role']}) is empty")
    if body and body[0]["role"] != "user":
        raise RowProblem(col, f"turns out of order: the conversation opens with {body[0]['role']}, not user")
    prev = None
    for n, m in enumerate(body, start=len(msgs) - len(body) + 1):
        if m["role"] == prev and m["role"] in ("user", "assistant"):
            raise RowProblem(col, f"turns out of order: two {m['role']} turns in a row at turn {n}")
        if m["role"] != "tool":
            prev = m["role"]
    if need_answer and not any(m["role"] == "assistant" for m in msgs):
        raise RowProblem(col, f"'{col}' has no assistant turn to learn from")


def _messages(row: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    col = mapping["messages"]
    msgs = _turns(row.get(col), col)
    check_conversation(msgs, col)
    return {"messages": msgs}


def _sharegpt(row: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    col = mapping["conversations"]
    msgs = _turns(row.get(col), col, role_key="from", content_key="value")
    system = _text(row.get(mapping["system"]), mapping["system"]) if mapping.get("system") else ""
    if system.strip() and msgs[0]["role"] != "system":
        msgs.insert(0, {"role": "system", "content": system})
    check_conversation(msgs, col)
    return {"messages": msgs}


def _with_system(system: str, msgs: list[dict[str, str]]) -> list[dict[str, str]]:
    return ([{"role": "system", "content": system}] if system.strip() else []) + msgs


def _alpaca(row: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    instruction = _text(_get(row, mapping, "instruction"), mapping["instruction"])
    extra = _text(row.get(mapping.get("input", "")), mapping.get("input", "input")) if mapping.get("input") else ""
    output = _text(_get(row, mapping, "output"), mapping["output"])
    system = _text(row.get(mapping["system"]), mapping["system"]) if mapping.get("system") else ""
    history: list[dict[str, str]] = []
    raw_history = row.get(mapping["history"]) if mapping.get("history") else None
    if raw_history:
        if not isinstance(raw_history, list):
            raise RowProblem(mapping["history"], f"'{mapping['history']}' must be a list of [question, answer] pairs")
        for n, pair in enumerate(raw_history, start=1):
            if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
                raise RowProblem(mapping["history"], f"history item {n} must be a [question, answer] pair")
            history += [{"role": "user", "content": _text(pair[0], "history")},
                        {"role": "assistant", "content": _text(pair[1], "history")}]
    prompt = f"{instruction}\n\n{extra}" if extra.strip() else instruction
    msgs = _with_system(system, history + [{"role": "user", "content": prompt},
                                           {"role": "assistant", "content": output}])
    check_conversation(msgs, mapping["output"])
    return {"messages": msgs}


def _dolly(row: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    instruction = _text(_get(row, mapping, "instruction"), mapping["instruction"])
    context = _text(row.get(mapping["context"]), mapping["context"]) if mapping.get("context") else ""
    response = _text(_get(row, mapping, "response"), mapping["response"])
    prompt = f"{context}\n\n{instruction}" if context.strip() else instruction
    return {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]}


def _prompt_completion(row: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    prompt = _get(row, mapping, "prompt")
    completion = _get(row, mapping, "completion")
    system = _text(row.get(mapping["system"]), mapping["system"]) if mapping.get("system") else ""
    if isinstance(prompt, list):
        msgs = _turns(prompt, mapping["prompt"])
    else:
        msgs = [{"role": "user", "content": _text(prompt, mapping["prompt"])}]
    if isinstance(completion, list):
        msgs += _turns(completion, mapping["completion"])
    else:
        msgs.append({"role": "assistant", "content": _text(completion, mapping["completion"])})
    msgs = _with_system(system, msgs) if msgs[0]["role"] != "system" else msgs
    check_conversation(msgs, mapping["completion"])
    return {"messages": msgs}


def _text_row(row: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    return {"text": _text(_get(row, mapping, "text"), mapping["text"])}


def _answer(value: Any, col: str) -> list[dict[str, str]]:
    if isinstance(value, dict):  # one turn, as LLaMA-Factory writes {"from": "gpt", "value": ...}
        return _turns([value], col)
    if isinstance(value, list):
        return _turns(value, col)
    text = _text(value, col)
    return [{"role": "assistant", "content": text}]


def _preference(row: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    """Strings or message lists; prompt turns repeated at the start of chosen/rejected are split off."""
    ccol, rcol = mapping["chosen"], mapping["rejected"]
    chosen = _answer(_get(row, mapping, "chosen"), ccol)
    rejected = _answer(_get(row, mapping, "rejected"), rcol)
    prompt_value = row.get(mapping["prompt"]) if mapping.get("prompt") else None
    if prompt_value is None or (isinstance(prompt_value, str) and not prompt_value.strip()):
        if mapping.get("prompt") and len(chosen) == 1:
            raise RowProblem(mapping["prompt"], f"'{mapping['prompt']}' is missing or empty")
        prompt, chosen, rejected = _split_shared_prefix(chosen, rejected, ccol)
    elif isinstance(prompt_value, list):
        prompt = _turns(prompt_value, mapping["prompt"])
    else:
        prompt = [{"role": "user", "content": _text(prompt_value, mapping["prompt"])}]
    system = _text(row.get(mapping["system"]), mapping["system"]) if mapping.get("system") else ""
    if system.strip() and prompt[0]["role"] != "system":
        prompt.insert(0, {"role": "system", "content": system})
    n = len(prompt)
    if chosen[:n] == prompt:
        chosen = chosen[n:]
    if rejected[:n] == prompt:
        rejected = rejected[n:]
    return _finish_pair(prompt, chosen, rejected, ccol, rcol)


def _finish_pair(prompt: list[dict[str, str]], chosen: list[dict[str, str]], rejected: list[dict[str, str]],
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


def _split_shared_prefix(chosen: list[dict[str, str]], rejected: list[dict[str, str]], col: str):
    n = 0
    while n < min(len(chosen), len(rejected)) - 1 and chosen[n] == rejected[n]:
        n += 1
    while n > 0 and chosen[n - 1]["role"] == "assistant":  # the prompt ends on a user turn
        n -= 1
    return chosen[:n], chosen[n:], rejected[n:]


def parse_hh(text: str, col: str) -> list[dict[str, str]]:
    """'\\n\\nHuman: hi\\n\\nAssistant: hello' -> user/assistant turns."""
    parts = _HH_TURN.split(text)
    if len(parts) < 3:
        raise RowProblem(col, f"'{col}' has no 'Human:' / 'Assistant:' turns")
    if parts[0].strip():
        raise RowProblem(col, f"'{col}' has text before the first 'Human:' turn")
    turns = []
    for speaker, content in zip(parts[1::2], parts[2::2]):
        role = "user" if speaker in ("Human", "H") else "assistant"
        turns.append({"role": role, "content": content.strip()})
    return turns


def _hh(row: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    ccol, rcol = mapping["chosen"], mapping["rejected"]
    chosen = parse_hh(_text(_get(row, mapping, "chosen"), ccol), ccol)
    rejected = parse_hh(_text(_get(row, mapping, "rejected"), rcol), rcol)
    prompt, chosen, rejected = _split_shared_prefix(chosen, rejected, ccol)
    return _finish_pair(prompt, chosen, rejected, ccol, rcol)


_CONVERTERS = {
    "messages": _messages, "sharegpt": _sharegpt, "alpaca": _alpaca, "dolly": _dolly,
    "prompt_completion": _prompt_completion, "preference": _preference, "preference_messages": _preference,
    "hh": _hh, "text": _text_row,
}
