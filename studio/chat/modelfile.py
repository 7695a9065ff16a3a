"""An Ollama Modelfile for an exported GGUF: the chat template rewritten in Ollama's template language,
and the stop tokens.

    text = modelfile("model.gguf", tokenizer)     # FROM ./model.gguf, TEMPLATE \"\"\"...\"\"\", PARAMETER stop ...

The tokenizer's chat template is rendered with marker texts to find what it writes around each role's
message; the Go template is built from those pieces and kept only if it rebuilds the rendering exactly.
A template that depends on more than the role (tools, dates, first-turn rules) gets no TEMPLATE line, so
Ollama falls back to the template stored in the GGUF file, and the Modelfile says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MARKS = {"system": "\u2402SYSTEM\u2402", "user": "\u2402USER\u2402", "assistant": "\u2402ANSWER\u2402",
         "user2": "\u2402AGAIN\u2402"}


@dataclass
class RolePieces:
    start: str     # once, before everything (a BOS token)
    system: tuple[str, str] | None
    user: tuple[str, str]
    assistant: tuple[str, str]
    generation: str  # what asks the model to answer


def _render(tokenizer: Any, messages: list[dict[str, str]], generation: bool) -> str:
    return tokenizer.apply_chat_template(messages, add_generation_prompt=generation, tokenize=False)


def _between(text: str, first: str, second: str) -> str:
    return text[text.index(first) + len(first):text.index(second)]


def role_pieces(tokenizer: Any) -> RolePieces | None:
    """What the chat template writes around each role's message; None when it is not that simple."""
    m = MARKS
    user, answer, again = ({"role": "user", "content": m["user"]}, {"role": "assistant", "content": m["assistant"]},
                           {"role": "user", "content": m["user2"]})
    try:
        plain = _render(tokenizer, [user, answer, again], True)
        alone = _render(tokenizer, [user], False)
        asking = _render(tokenizer, [user], True)
        try:
            with_system = _render(tokenizer, [{"role": "system", "content": m["system"]}, user, answer, again], True)
        except Exception:  # a template without a system role
            with_system = None
    except Exception:
        return None
    if not asking.startswith(alone) or m["user"] not in alone:
        return None
    before_user = alone[:alone.index(m["user"])]
    for n in _token_ends(tokenizer, before_user):  # the shortest start written once (often a BOS token)
        pieces = _pieces(before_user[:n], plain, alone, asking[len(alone):], with_system)
        if pieces is not None:
            return pieces
    return None


def _token_ends(tokenizer: Any, text: str) -> list[int]:
    """Where tokens of `text` end (0 first): a start is whole tokens, never half of one."""
    try:
        offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    except Exception:  # a slow tokenizer has no offsets: every character is a candidate
        return list(range(len(text) + 1))
    return sorted({0, len(text), *(end for _, end in offsets)})


def _pieces(start: str, plain: str, alone: str, generation: str, with_system: str | None) -> RolePieces | None:
    m = MARKS
    before_user = alone[:alone.index(m["user"])]
    user_open, user_close = before_user[len(start):], alone[alone.index(m["user"]) + len(m["user"]):]
    between_turns = _between(plain, m["user"], m["assistant"])  # user close + assistant open
    after_answer = _between(plain, m["assistant"], m["user2"])  # assistant close + user open
    if not between_turns.startswith(user_close) or not after_answer.endswith(user_open):
        return None
    pieces = RolePieces(start=start, system=None, user=(user_open, user_close),
                        assistant=(between_turns[len(user_close):], after_answer[:len(after_answer) - len(user_open)]),
                        generation=generation)
    if _rebuild(pieces, [("user", m["user"]), ("assistant", m["assistant"]), ("user", m["user2"])]) != plain:
        return None
    if with_system is not None:
        if not with_system.startswith(start) or m["system"] not in with_system:
            return None
        system_open = with_system[len(start):with_system.index(m["system"])]
        system_close = _between(with_system, m["system"], m["user"])
        if not system_close.endswith(user_open):
            return None
        pieces.system = (system_open, system_close[:len(system_close) - len(user_open)])
        if _rebuild(pieces, [("system", m["system"]), ("user", m["user"]), ("assistant", m["assistant"]),
                             ("user", m["user2"])]) != with_system:
            return None
    return pieces


def _rebuild(p: RolePieces, turns: list[tuple[str, str]]) -> str:
    wraps = {"system": p.system, "user": p.user, "assistant": p.assistant}
    return p.start + "".join(wraps[role][0] + text + wraps[role][1] for role, text in turns) + p.generation


def go_template(p: RolePieces) -> str:
    """The same prompt in Ollama's (Go) template language."""
    system = f"{{{{ if .System }}}}{p.system[0]}{{{{ .System }}}}{p.system[1]}{{{{ end }}}}" if p.system else ""
    return (f"{p.start}{system}{{{{ range .Messages }}}}"
            f"{{{{ if eq .Role \"user\" }}}}{p.user[0]}{{{{ .Content }}}}{p.user[1]}"
            f"{{{{ else if eq .Role \"assistant\" }}}}{p.assistant[0]}{{{{ .Content }}}}{p.assistant[1]}"
            f"{{{{ end }}}}{{{{ end }}}}{p.generation}")


def stop_words(tokenizer: Any, pieces: RolePieces | None) -> list[str]:
    words = [tokenizer.eos_token] if getattr(tokenizer, "eos_token", None) else []
    if pieces is not None:
        words += [w.strip() for w in (pieces.assistant[1], pieces.user[0]) if w.strip()]
    return list(dict.fromkeys(words))


def modelfile(gguf_name: str, tokenizer: Any, system: str = "") -> str:
    """An Ollama Modelfile for the GGUF file: its chat template in Go, its stop words, and `system` (the run's
    data.system) as the SYSTEM message chats get when they send none."""
    pieces = role_pieces(tokenizer) if getattr(tokenizer, "chat_template", None) else None
    lines = [f"FROM ./{gguf_name}", ""]
    if pieces is not None:
        lines += ['TEMPLATE """' + go_template(pieces) + '"""', ""]
    else:
        lines += ["# This chat template depends on more than each message's role, so it is not rewritten here:",
                  "# Ollama uses the template stored in the GGUF file.", ""]
    if system.strip():
        if pieces is not None and pieces.system is None:
            lines.append("# The run trained with this system message, but the chat template has no place for one.")
        lines += ['SYSTEM """' + system + '"""' if '"""' not in system else f"SYSTEM {json.dumps(system)}", ""]
    lines += [f"PARAMETER stop {json.dumps(w)}" for w in stop_words(tokenizer, pieces)]  # quotes escaped
    return "\n".join(lines) + "\n"
