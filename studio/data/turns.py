"""Conversation turns as datasets write them, made into the messages transformers' chat templates read.

    msgs = turns(row["messages"], "messages")          # role/content, from/value, content parts ...
    check_conversation(msgs, "messages")               # order, empty turns, an answer to learn from
    tools = tool_schemas(row["tools"], "tools")        # None, or [{"type": "function", "function": {...}}]

Tool calls come in two shapes and leave in one:
    OpenAI     {"role": "assistant", "content": null, "tool_calls": [{"type": "function",
               "function": {"name": "f", "arguments": "{\\"a\\": 1}"}}]},  {"role": "tool", "content": "..."}
    ShareGPT   {"from": "function_call", "value": "{\\"name\\": \\"f\\", \\"arguments\\": {\\"a\\": 1}}"},
               {"from": "observation", "value": "..."}       (LLaMA-Factory's tool files)
    normalised {"role": "assistant", "content": "", "tool_calls": [{"type": "function",
               "function": {"name": "f", "arguments": {"a": 1}}}]},  {"role": "tool", "content": "...", "name": "f"}
"""

from __future__ import annotations

import json
from typing import Any

ROLE_ALIASES = {"system": "system", "user": "user", "human": "user", "assistant": "assistant", "gpt": "assistant",
                "bot": "assistant", "model": "assistant", "tool": "tool", "function": "tool", "observation": "tool",
                "function_call": "assistant", "chatgpt": "assistant", "prompter": "user", "ipython": "tool",
                "developer": "system", "ai": "assistant"}
"""Roles as projects write them; 'developer' is OpenAI's newer name for the system message, 'ai' LangChain's
for the assistant."""
CALL_ROLES = ("function_call",)
"""Raw roles whose turn is a tool call written as JSON text (ShareGPT)."""


class RowProblem(Exception):
    """A row that cannot be used, with the field to blame and one sentence saying why."""

    def __init__(self, field_name: str, message: str):
        super().__init__(message)
        self.field = field_name
        self.message = message


def kind_of(value: Any) -> str:
    return {list: "a list", dict: "an object", bool: "true/false", int: "a number", float: "a number",
            str: "text", type(None): "null"}.get(type(value), type(value).__name__)


def text_of(value: Any, col: str) -> str:
    """Text from a string, a number or a list of content parts; other values are a RowProblem."""
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
    raise RowProblem(col, f"'{col}' should be text, found {kind_of(value)}")


def decoded(value: Any, col: str) -> Any:
    """A list or object stored as JSON text (CSV and Parquet exports do this) is decoded; others pass."""
    if isinstance(value, str) and value.lstrip()[:1] in ("[", "{"):
        try:
            return json.loads(value, parse_constant=lambda name: None)  # NaN: missing, as the readers read it
        except json.JSONDecodeError as err:
            raise RowProblem(col, f"'{col}' looks like JSON but does not parse ({err.msg} at character "
                                  f"{err.pos})") from None
        except RecursionError:
            raise RowProblem(col, f"'{col}' holds JSON nested too deeply to read") from None
    return value


def turns_json(value: Any) -> Any:
    """Turns stored as JSON text decoded; any other text (an answer that starts with '[', say) kept as text."""
    if isinstance(value, str) and value.lstrip()[:1] in ("[", "{"):
        try:
            found = json.loads(value)
        except json.JSONDecodeError:
            return value
        items = found if isinstance(found, list) else [found]
        if items and all(isinstance(t, dict) and ("role" in t or "from" in t) for t in items):
            return found
    return value


def turns(value: Any, col: str, role_key: str = "role", content_key: str = "content",
          roleless: bool = False) -> list[dict[str, Any]]:
    """Normalised turns of one conversation; a RowProblem names the turn that is wrong. With `roleless`,
    turns written without roles are given them (see `_with_roles`)."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    value = decoded(value, col)
    if not isinstance(value, list):
        raise RowProblem(col, f"'{col}' must be a list of turns, found {kind_of(value)}")
    if not value:
        raise RowProblem(col, f"'{col}' has no turns")
    if roleless:
        value = _with_roles(value)
    out: list[dict[str, Any]] = []
    for n, turn in enumerate(value, start=1):
        if not isinstance(turn, dict):
            raise RowProblem(col, f"turn {n} of '{col}' must be an object, found {kind_of(turn)}")
        raw_role = turn.get(role_key, turn.get("role", turn.get("from")))
        key = str(raw_role).strip().lower() if raw_role is not None else ""
        role = ROLE_ALIASES.get(key)
        if role is None:
            raise RowProblem(col, f"turn {n} of '{col}' has unknown role {raw_role!r}")
        content = turn.get(content_key, turn.get("content", turn.get("value")))
        where = f"turn {n} of '{col}'"
        if key in CALL_ROLES:
            out.append({"role": "assistant", "content": "", "tool_calls": tool_calls(_call_json(content, col, where),
                                                                                      col, where)})
            continue
        try:
            text = text_of(content, col)
        except RowProblem as problem:
            raise RowProblem(col, f"{where}: {problem.message}") from None
        msg: dict[str, Any] = {"role": role, "content": text}
        calls = turn.get("tool_calls") or turn.get("function_call")  # function_call: OpenAI's older form
        if role == "assistant" and calls:
            msg["tool_calls"] = tool_calls(calls, col, where)
        weight = turn.get("weight")
        if role == "assistant" and weight is not None and not isinstance(weight, bool) and weight == 0:
            msg["weight"] = 0  # OpenAI's "do not train on this turn": context only
        if role == "tool":
            name = turn.get("name") or _called_name(out, turn.get("tool_call_id"))
            if name:
                msg["name"] = str(name)
            if turn.get("tool_call_id"):
                msg["tool_call_id"] = str(turn["tool_call_id"])
        out.append(msg)
    return _merge_parallel_calls(out)


def _with_roles(value: list[Any]) -> list[Any]:
    """Turns written without roles, given them: plain texts take user and assistant in turn (UltraChat's
    `data`), and {"input": ..., "output": ...} exchanges become a user and an assistant turn (Capybara)."""
    if all(isinstance(t, str) for t in value):
        return [{"role": ("user", "assistant")[n % 2], "content": t} for n, t in enumerate(value)]
    if all(isinstance(t, dict) and "input" in t and "output" in t and not {"role", "from"} & set(t) for t in value):
        return [{"role": role, "content": t[key]} for t in value for role, key in (("user", "input"),
                                                                                   ("assistant", "output"))]
    return value


def _call_json(value: Any, col: str, where: str) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as err:
        raise RowProblem(col, f"{where}: the tool call is not valid JSON ({err.msg} at character {err.pos})") from None


def tool_calls(value: Any, col: str, where: str) -> list[dict[str, Any]]:
    """[{"type": "function", "function": {"name": str, "arguments": dict}}, ...] from the shapes in use;
    `where` ('turn 3 of 'messages'') starts any problem's sentence."""
    calls = value if isinstance(value, list) else [value]
    out = []
    for call in calls:
        if not isinstance(call, dict):
            raise RowProblem(col, f"{where}: a tool call must be an object with a name, found {kind_of(call)}")
        fn = call.get("function", call)
        name = fn.get("name") if isinstance(fn, dict) else None
        if not name or not isinstance(name, str):
            raise RowProblem(col, f"{where}: a tool call has no function name")
        args = fn.get("arguments", fn.get("parameters", {}))
        if isinstance(args, str):
            try:
                args = json.loads(args) if args.strip() else {}
            except json.JSONDecodeError:
                raise RowProblem(col, f"{where}: the arguments of tool call '{name}' are not valid JSON") from None
        if not isinstance(args, dict):
            raise RowProblem(col, f"{where}: the arguments of tool call '{name}' must be an object, "
                                  f"found {kind_of(args)}")
        args = {k: v for k, v in args.items() if v is not None}  # Arrow fills other rows' keys with nulls
        entry: dict[str, Any] = {"type": "function", "function": {"name": name, "arguments": args}}
        if call.get("id"):
            entry["id"] = str(call["id"])
        out.append(entry)
    if not out:
        raise RowProblem(col, f"{where}: an empty list of tool calls")
    return out


def _called_name(previous: list[dict[str, Any]], call_id: Any) -> str | None:
    """The function a tool reply answers: the call with its id; without an id, the call in the same
    place among the latest assistant turn's calls as this reply among the replies after it."""
    if call_id is not None:
        for msg in reversed(previous):
            for call in msg.get("tool_calls", []):
                if call.get("id") == call_id:
                    return call["function"]["name"]
    replies = 0
    for msg in reversed(previous):
        if msg["role"] == "tool":
            replies += 1
        elif msg.get("tool_calls"):
            calls = msg["tool_calls"]
            return calls[min(replies, len(calls) - 1)]["function"]["name"]
        else:
            return None
    return None


def _merge_parallel_calls(msgs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A tool-call turn right after an assistant turn joins it: ShareGPT writes parallel calls, and a
    thought followed by its call, as separate turns."""
    out: list[dict[str, Any]] = []
    for m in msgs:
        prev = out[-1] if out else None
        if prev is not None and prev["role"] == "assistant" and m.get("tool_calls") and not m["content"]:
            prev["tool_calls"] = prev.get("tool_calls", []) + m["tool_calls"]
            continue
        out.append(m)
    return out


def tool_schemas(value: Any, col: str) -> list[dict[str, Any]] | None:
    """The functions a conversation may call, in transformers' shape; None when there are none."""
    value = decoded(value, col)
    if value in (None, "", []):
        return None
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise RowProblem(col, f"'{col}' must be a list of function descriptions, found {kind_of(value)}")
    out = []
    for n, tool in enumerate(value, start=1):
        fn = tool.get("function", tool) if isinstance(tool, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise RowProblem(col, f"tool {n} in '{col}' has no function name")
        out.append({"type": "function", "function": _without_nulls(fn)})
    return out


def _without_nulls(value: Any) -> Any:
    """A JSON schema with null entries removed: Parquet and hub files store a column of schemas as one
    Arrow struct, which gives every row the other rows' keys as nulls."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def has_tools(record: dict[str, Any]) -> bool:
    """Whether a normalised record carries tool descriptions or tool calls."""
    if record.get("tools"):
        return True
    return any(m.get("tool_calls") or m["role"] == "tool" for m in conversation(record))


def conversation(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The turns a model reads for a normalised record (for a pair, the prompt and the longer answer)."""
    if "messages" in record:
        return record["messages"]
    prompt = record.get("prompt") or []
    if "chosen" in record:
        size = lambda ms: sum(len(m["content"]) for m in ms)  # noqa: E731
        return prompt + max(record["chosen"], record["rejected"], key=size)
    return prompt + record.get("completion", [])


def check_conversation(msgs: list[dict[str, Any]], col: str, need_answer: bool = True) -> None:
    """System first if present, then user and assistant taking turns; tool replies follow a tool call."""
    body = msgs[1:] if msgs and msgs[0]["role"] == "system" else msgs
    for n, m in enumerate(msgs, start=1):
        if m["role"] == "system" and n != 1:
            raise RowProblem(col, f"turns out of order: a system turn at position {n}; it belongs first")
        if m["role"] in ("user", "assistant") and not m["content"].strip() and not m.get("tool_calls"):
            raise RowProblem(col, f"turn {n} of '{col}' ({m['role']}) is empty")
    if body and body[0]["role"] != "user":
        raise RowProblem(col, f"turns out of order: the conversation opens with {body[0]['role']}, not user")
    prev = None
    for n, m in enumerate(body, start=len(msgs) - len(body) + 1):
        if m["role"] == prev and m["role"] in ("user", "assistant"):
            raise RowProblem(col, f"turns out of order: two {m['role']} turns in a row at turn {n}")
        if m["role"] == "tool" and prev not in ("assistant", "tool"):
            raise RowProblem(col, f"turns out of order: a tool reply at turn {n} answers no tool call")
        prev = m["role"]
    if need_answer and not any(m["role"] == "assistant" for m in msgs):
        raise RowProblem(col, f"'{col}' has no assistant turn to learn from")


def mask_without_weight_0(mask: list[int], msgs: list[dict[str, Any]]) -> list[int] | None:
    """The chat template's assistant-token mask with the turns marked weight 0 cleared, so those turns are
    read as context and every other answer is trained, all in one pass. None when the marked spans are
    not one per assistant turn (a turn the template hides, say), as then which span is which is unknown."""
    weights = [m.get("weight") for m in msgs if m["role"] == "assistant"]
    spans: list[list[int]] = []
    for i, marked in enumerate(mask):
        if marked and (not spans or spans[-1][1] != i):
            spans.append([i, i])
        if marked:
            spans[-1][1] = i + 1
    if len(spans) != len(weights):
        return None
    out = list(mask)
    for (start, end), weight in zip(spans, weights):
        if weight == 0:
            out[start:end] = [0] * (end - start)
    return out


def as_prompt(record: dict[str, Any]) -> dict[str, Any] | None:
    """A normalised record as prompt-only data: the conversation up to the user's last question before its
    last answer (tool calls and replies before that kept, and the tool descriptions), with the answer it had
    as its reference (the record's own reference column first; a pair's chosen answer, a rated answer marked
    good); None when no user question comes before the answer."""
    msgs = record["messages"] if "messages" in record else record.get("prompt") or []
    last = max((i for i, m in enumerate(msgs) if m["role"] == "assistant"), default=len(msgs)) \
        if "messages" in record else len(msgs)
    asked = [i for i in range(last) if msgs[i]["role"] == "user"]
    if not asked:
        return None
    out: dict[str, Any] = {"prompt": msgs[:asked[-1] + 1]}
    if record.get("tools"):
        out["tools"] = record["tools"]
    answer = msgs[last]["content"] if "messages" in record and last < len(msgs) else \
        record.get("chosen") or (record.get("completion") if record.get("label") else None)
    if isinstance(answer, list):  # a pair's or rated answer's turns: the assistant's last words
        answer = next((m.get("content") for m in reversed(answer) if m.get("role") == "assistant"), None)
    reference = record.get("reference") or answer
    if isinstance(reference, str) and reference.strip():
        out["reference"] = reference
    return out


def check_weights(msgs: list[dict[str, Any]], col: str) -> None:
    """A chat whose every answer says "weight": 0 has nothing to learn (pairs and rated answers ignore weights)."""
    if all(m.get("weight") == 0 for m in msgs if m["role"] == "assistant"):
        raise RowProblem(col, f"every assistant turn in '{col}' has weight 0, so nothing in it is learnt")


def field_value(row: dict[str, Any], mapping: dict[str, str], target: str, required: bool = True) -> Any:
    """The value of the column `mapping` names for `target`; a required one missing or blank is a RowProblem."""
    col = mapping.get(target)
    value = row.get(col) if col else None
    if required and (value is None or (isinstance(value, str) and not value.strip())):
        raise RowProblem(col or target, f"'{col or target}' is missing or empty")
    return value


def with_system(system: str, msgs: list[dict[str, str]]) -> list[dict[str, str]]:
    return ([{"role": "system", "content": system}] if system.strip() else []) + msgs


def with_default_system(records: list[dict[str, Any]], system: str | None) -> list[dict[str, Any]]:
    """Normalised records with `system` put first in each conversation or prompt that has no system turn
    (a run's data.system); plain text and pairs without a prompt stay as they are."""
    if not system or not system.strip():
        return records
    out = []
    for record in records:
        key = "messages" if "messages" in record else "prompt" if isinstance(record.get("prompt"), list) else None
        opened = system_before(system, record[key]) if key else None
        out.append(record if opened is None or opened is record[key] else record | {key: opened})
    return out


def system_before(system: str, msgs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`msgs` opened by `system`, unless they open with a system turn already, are empty or `system` is blank
    (then `msgs` itself comes back)."""
    return msgs if not msgs or msgs[0].get("role") == "system" or not system.strip() else with_system(system, msgs)


def system_first(row: dict[str, Any], mapping: dict[str, str], msgs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`msgs` opened by the row's system column (when one is mapped and holds text), unless they open with a
    system turn already or are empty (a pair with no prompt, refused later with its own sentence)."""
    system = text_of(row.get(mapping["system"]), mapping["system"]) if mapping.get("system") else ""
    return system_before(system, msgs)


def alpaca_prompt(row: dict[str, Any], mapping: dict[str, str], field: str) -> list[dict[str, str]]:
    """The turns before the answer in Alpaca's shape: the system text, the earlier [question, answer] pairs
    of `history`, then the instruction (`field`) with its input below it."""
    instruction = text_of(field_value(row, mapping, field), mapping[field])
    extra = text_of(row.get(mapping.get("input", "")), mapping.get("input", "input")) if mapping.get("input") else ""
    system = text_of(row.get(mapping["system"]), mapping["system"]) if mapping.get("system") else ""
    history: list[dict[str, str]] = []
    raw_history = decoded(row.get(mapping["history"]), mapping["history"]) if mapping.get("history") else None
    if raw_history:
        if not isinstance(raw_history, list):
            raise RowProblem(mapping["history"], f"'{mapping['history']}' must be a list of [question, answer] pairs")
        for n, pair in enumerate(raw_history, start=1):
            if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
                raise RowProblem(mapping["history"], f"history item {n} must be a [question, answer] pair")
            history += [{"role": "user", "content": text_of(pair[0], "history")},
                        {"role": "assistant", "content": text_of(pair[1], "history")}]
    prompt = f"{instruction}\n\n{extra}" if extra.strip() else instruction
    return with_system(system, history + [{"role": "user", "content": prompt}])
