"""Recognise the shape of a dataset and normalise it into TRL's standard forms.

    guess = detect(rows)                      # Detection(name="alpaca", mapping={...}, ...)
    records, issues = normalise(rows, guess.name, guess.mapping)

Normalised records are one of:
    {"messages": [{"role": ..., "content": ...}, ...], "tools"?: [...]}           (sft: conversational)
    {"prompt": [msgs], "chosen": [assistant msg], "rejected": [assistant msg]}  (preference: a pair)
    {"prompt": [msgs], "completion": [assistant msg], "label": true/false}      (unpaired: one rated answer)
    {"prompt": [msgs ending on the user's turn], "tools"?: [...]}               (prompt: prompts for RLHF)
    {"text": "..."}                                                             (text: plain text)
A row that cannot be normalised becomes None, with an `Issue` naming its field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from studio.data.pairs import answer_turns, hh_pair, preference_pair, ranked_pair, verdict_pair
from studio.data.readers import BROKEN
from studio.data.turns import (
    RowProblem,
    alpaca_prompt,
    check_conversation,
    check_weights,
    field_value,
    system_first,
    text_of,
    tool_schemas,
    turns,
    turns_json,
    with_system,
)


@dataclass(frozen=True)
class FormatSpec:
    name: str
    label: str
    kind: str
    """sft, preference, unpaired, prompt or text: which normalised form it produces."""
    fields: dict[str, tuple[str, ...]]
    """target field -> column names tried in order when detecting."""
    optional: tuple[str, ...] = ()


LABEL_COLUMNS = ("label", "kto_tag", "thumbs_up", "desirable")
"""Columns that say whether one answer is good (true) or bad (false): unpaired preference data."""
TOOL_COLUMNS = ("tools", "functions")
"""Columns describing the functions a conversation may call."""
ANSWER_A = ("response_a", "answer_a", "completion_a", "output_a", "conversation_a", "human_ref_a", "response_0",
            "response_1", "response1")
ANSWER_B = ("response_b", "answer_b", "completion_b", "output_b", "conversation_b", "human_ref_b", "response_2",
            "response2", "response_1")
"""In this order, response_0 / response_1 (PKU-SafeRLHF) and response_1 / response_2 (HelpSteer2) both pair up."""
VERDICT_COLUMNS = ("winner", "preferred", "preference", "better", "choice", "labels", "better_response_id",
                   "winner_model_a", "overall_preference", "preference_strength")
"""Two answers to one prompt and a column saying which is better (Chatbot Arena, Stanford SHP, PKU-SafeRLHF,
HelpSteer)."""

REFERENCE_COLUMNS = ("reference", "ground_truth", "gold", "gold_answer", "final_answer", "expected_answer", "answer",
                     "solution")
"""Columns holding the answer a checked reward compares with (a maths problem's final answer), beside the
answer the model trains on: RLHF's rule rewards take it as the row's reference; SFT leaves it aside."""

SPECS = {s.name: s for s in [
    FormatSpec("messages", "Chat messages (role/content)", "sft",
               {"messages": ("messages", "conversation", "chat"), "tools": TOOL_COLUMNS,
                "reference": REFERENCE_COLUMNS}, optional=("tools", "reference")),
    FormatSpec("sharegpt", "ShareGPT (from/value)", "sft",
               {"conversations": ("conversations", "conversation", "messages"), "system": ("system",),
                "tools": TOOL_COLUMNS, "reference": REFERENCE_COLUMNS}, optional=("system", "tools", "reference")),
    FormatSpec("alpaca", "Alpaca (instruction/input/output)", "sft",
               {"instruction": ("instruction",), "input": ("input",), "output": ("output",),
                "system": ("system",), "history": ("history",)}, optional=("input", "system", "history")),
    FormatSpec("dolly", "Dolly (instruction/context/response)", "sft",
               {"instruction": ("instruction",), "context": ("context",), "response": ("response",)},
               optional=("context",)),
    FormatSpec("prompt_completion", "Prompt and completion", "sft",
               {"prompt": ("prompt", "question", "query", "input", "problem"),
                "completion": ("completion", "response", "solution", "generated_solution", "answer", "output",
                               "target"),
                "system": ("system",), "reference": REFERENCE_COLUMNS},
               optional=("system", "reference")),
    FormatSpec("preference", "Preference pairs (prompt/chosen/rejected)", "preference",
               {"prompt": ("prompt", "question", "instruction"), "input": ("input",), "chosen": ("chosen",),
                "rejected": ("rejected",), "system": ("system",), "history": ("history",)},
               optional=("input", "system", "history")),
    FormatSpec("preference_messages", "Preference pairs as message lists", "preference",
               {"prompt": ("prompt", "question", "conversations", "messages"),
                "chosen": ("chosen", "chosen_messages", "chosen_conversations", "preferred_output"),
                "rejected": ("rejected", "rejected_messages", "rejected_conversations", "non_preferred_output"),
                "system": ("system",)},
               optional=("prompt", "system")),
    FormatSpec("verdict", "Two answers and a verdict (which is better)", "preference",
               {"prompt": ("prompt", "question", "history", "instruction", "input", "context"),
                "answer_a": ANSWER_A, "answer_b": ANSWER_B, "verdict": VERDICT_COLUMNS, "system": ("system",)},
               optional=("prompt", "system")),
    FormatSpec("ranked", "Ranked answers (the best against the worst)", "preference",
               {"prompt": ("prompt", "instruction", "question"), "answers": ("answers", "completions", "responses"),
                "system": ("system",)}, optional=("system",)),
    FormatSpec("hh", "Anthropic HH (Human:/Assistant: transcripts)", "preference",
               {"chosen": ("chosen",), "rejected": ("rejected",)}),
    FormatSpec("unpaired", "Rated answers (a true/false label each, for KTO)", "unpaired",
               {"prompt": ("prompt", "question", "instruction", "messages", "conversations", "conversation"),
                "completion": ("completion", "response", "answer", "output"), "label": LABEL_COLUMNS,
                "system": ("system",)}, optional=("completion", "system")),
    FormatSpec("prompt_only", "Prompts only (for RLHF)", "prompt",
               {"prompt": ("prompt", "question", "query", "instruction", "input", "problem", "messages",
                           "conversations"),
                "system": ("system",), "tools": TOOL_COLUMNS, "reference": REFERENCE_COLUMNS},
               optional=("system", "tools", "reference")),
    FormatSpec("text", "Plain text", "text", {"text": ("text", "content", "document", "body")}),
]}

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
    mappable: bool = True
    """False when naming columns by hand cannot help (the file is not data at all)."""

    @property
    def kind(self) -> str | None:
        return SPECS[self.name].kind if self.name else None


def columns_of(rows: list[dict[str, Any]]) -> list[str]:
    """Every column any row has, in the order they first appear (a column may start late in a file)."""
    seen: dict[str, None] = {}
    for row in rows:
        if BROKEN in row:
            continue
        for key in row:
            if key not in seen:
                seen[str(key)] = None
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
        taken = set(mapping.values()) if target == "reference" else set()  # a reference beside the answer, not it
        for cand in candidates:
            if cand in lower and lower[cand] not in taken:
                mapping[target] = lower[cand]
                break
    return mapping


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
        raise ValueError(f"The {name} format ({SPECS[name].label}) needs a column for {' and '.join(lacking)}.")
    for one, other in (("chosen", "rejected"), ("answer_a", "answer_b")):
        if mapping.get(one) and mapping.get(one) == mapping.get(other):
            raise ValueError(f"{one} and {other} both name the column '{mapping[one]}'; they need two columns.")
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


def _messages(row: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    col = mapping["messages"]
    msgs = turns(row.get(col), col, roleless=True)
    check_conversation(msgs, col)
    check_weights(msgs, col)
    return _with_tools({"messages": msgs}, row, mapping)


def _with_tools(record: dict[str, Any], row: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    """The record with the row's tool descriptions, when its format maps a tools column and it has some."""
    col = mapping.get("tools")
    tools = tool_schemas(row.get(col), col) if col else None
    return _with_reference(record | {"tools": tools} if tools else record, row, mapping)


def _with_reference(record: dict[str, Any], row: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    """The record with the row's reference answer, when its format maps a reference column and the row's value
    is text or a number. Other values (a list of answers, a flag) give the row no reference, never a problem:
    the column sits beside what trains, and only the rule rewards of RLHF read it."""
    value = reference_text(row.get(mapping["reference"])) if mapping.get("reference") else None
    return record if value is None else record | {"reference": value}


def reference_text(value: Any) -> str | None:
    """A reference column's value as text: text or a number; None for anything else (a list, a flag)."""
    return None if isinstance(value, bool) or not isinstance(value, (str, int, float)) else str(value).strip()


def _sharegpt(row: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    col = mapping["conversations"]
    msgs = turns(row.get(col), col, role_key="from", content_key="value")
    msgs = system_first(row, mapping, msgs)
    check_conversation(msgs, col)
    check_weights(msgs, col)
    return _with_tools({"messages": msgs}, row, mapping)


def _alpaca(row: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    output = text_of(field_value(row, mapping, "output"), mapping["output"])
    msgs = alpaca_prompt(row, mapping, "instruction") + [{"role": "assistant", "content": output}]
    check_conversation(msgs, mapping["output"])
    return {"messages": msgs}


def _dolly(row: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    instruction = text_of(field_value(row, mapping, "instruction"), mapping["instruction"])
    context = text_of(row.get(mapping["context"]), mapping["context"]) if mapping.get("context") else ""
    response = text_of(field_value(row, mapping, "response"), mapping["response"])
    prompt = f"{context}\n\n{instruction}" if context.strip() else instruction
    return {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]}


def _prompt_completion(row: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    prompt = field_value(row, mapping, "prompt")
    completion = field_value(row, mapping, "completion")
    system = text_of(row.get(mapping["system"]), mapping["system"]) if mapping.get("system") else ""
    if isinstance(prompt, list):
        msgs = turns(prompt, mapping["prompt"])
    else:
        msgs = [{"role": "user", "content": text_of(prompt, mapping["prompt"])}]
    if isinstance(completion, list):
        msgs += turns(completion, mapping["completion"])
    else:
        msgs.append({"role": "assistant", "content": text_of(completion, mapping["completion"])})
    msgs = with_system(system, msgs) if msgs[0]["role"] != "system" else msgs
    check_conversation(msgs, mapping["completion"])
    return _with_reference({"messages": msgs}, row, mapping)


def _prompt_turns(row: dict[str, Any], mapping: dict[str, str]) -> list[dict[str, Any]]:
    """The prompt column as turns (a conversation, or text as one user turn), with the system column first."""
    value = turns_json(field_value(row, mapping, "prompt"))
    msgs = turns(value, mapping["prompt"]) if isinstance(value, list) else \
        [{"role": "user", "content": text_of(value, mapping["prompt"])}]
    return system_first(row, mapping, msgs)


def _a(role: str) -> str:
    return ("an " if role == "assistant" else "a ") + role


def _prompt_only(row: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    col = mapping["prompt"]
    msgs = _prompt_turns(row, mapping)
    check_conversation(msgs, col, need_answer=False)
    if msgs[-1]["role"] != "user":
        raise RowProblem(col, f"'{col}' ends on {_a(msgs[-1]['role'])} turn; a prompt ends on the user's turn")
    return _with_tools({"prompt": msgs}, row, mapping)


LABEL_WORDS = {"true": True, "false": False, "yes": True, "no": False, "1": True, "0": False, "up": True,
               "down": False, "good": True, "bad": False}


def label_value(value: Any) -> bool | None:
    """A good/bad mark as true or false (true/false, yes/no, 1/0, up/down ...); None when it is not one."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return bool(value) if value in (0, 1) else None
    return LABEL_WORDS.get(str(value).strip().lower()) if value is not None else None


def _label(value: Any, col: str) -> bool:
    found = label_value(value)
    if found is None:
        raise RowProblem(col, f"'{col}' should be true or false, found {value!r}")
    return found


def _unpaired(row: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    """One answer and whether it is good: from prompt + completion, or a conversation whose last turn is
    the rated answer."""
    col = mapping["prompt"]
    label = _label(row.get(mapping["label"]), mapping["label"])
    msgs = _prompt_turns(row, mapping)
    if mapping.get("completion"):
        completion = answer_turns(field_value(row, mapping, "completion"), mapping["completion"])
        if any(m["role"] == "user" for m in completion):
            raise RowProblem(mapping["completion"], f"'{mapping['completion']}' holds a user turn; the rated "
                                                    "answer is the assistant's alone")
    else:
        if msgs[-1]["role"] != "assistant":
            raise RowProblem(col, f"'{col}' should end with the rated assistant answer, not "
                                  f"{_a(msgs[-1]['role'])} turn")
        msgs, completion = msgs[:-1], msgs[-1:]
    check_conversation(msgs + completion, mapping.get("completion") or col)
    if completion[0]["role"] != "assistant":
        raise RowProblem(mapping.get("completion") or col, "the rated answer must be an assistant turn")
    return {"prompt": msgs, "completion": completion, "label": label}


def _text_row(row: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    return {"text": text_of(field_value(row, mapping, "text"), mapping["text"])}


_CONVERTERS = {
    "messages": _messages, "sharegpt": _sharegpt, "alpaca": _alpaca, "dolly": _dolly,
    "prompt_completion": _prompt_completion, "preference": preference_pair, "preference_messages": preference_pair,
    "verdict": verdict_pair, "ranked": ranked_pair, "hh": hh_pair, "unpaired": _unpaired,
    "prompt_only": _prompt_only, "text": _text_row,
}
