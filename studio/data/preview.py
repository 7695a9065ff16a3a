"""Show what the model really sees: a row through the chat template, token by token, each marked as
trained (the loss falls on it) or masked.

    spans = template_preview(record, tokenizer)   # Preview(tokens=[(text, trained), ...], ...)

The rule matches the SFT stage: with a template that marks assistant turns ({% generation %}), every
assistant turn is trained; otherwise only the final answer is, after the prompt rendered with the
generation prompt. For preference rows the chosen answer is shown.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from studio.data.turns import mask_without_weight_0
from studio.models.loading import training_template


@dataclass
class Preview:
    tokens: list[tuple[str, bool]]
    rendered: str
    trained: int
    total: int
    rule: str

    def html(self) -> str:
        """Trained tokens highlighted, masked ones dimmed; token edges shown by alternating shades."""
        parts = []
        for n, (text, trained) in enumerate(self.tokens):
            cls = "tok-train" if trained else "tok-mask"
            alt = " tok-alt" if n % 2 else ""
            shown = html.escape(text).replace("\n", "↵<br>")
            parts.append(f'<span class="{cls}{alt}">{shown}</span>')
        return '<div class="token-preview">' + "".join(parts) + "</div>"


def _messages_of(record: dict[str, Any]) -> list[dict[str, Any]] | None:
    if "messages" in record:
        return record["messages"]
    if "prompt" in record and "chosen" in record:
        return record["prompt"] + record["chosen"]
    if "prompt" in record:
        return record["prompt"] + record.get("completion", [])
    return None


def template_preview(record: dict[str, Any], tokenizer: Any) -> Preview:
    msgs = _messages_of(record)
    if msgs is None:  # plain text: every token trains
        ids = tokenizer(record.get("text", ""), add_special_tokens=False)["input_ids"]
        return _build(tokenizer, ids, [1] * len(ids), "plain text: every token is trained")
    tools = record.get("tools")
    if "chosen" in record:  # DPO and reward models score the answer after the whole prompt
        rejected = " / ".join(m["content"] for m in record["rejected"] if m.get("content")).strip()
        shown = rejected if len(rejected) <= 300 else rejected[:300] + " …"
        return _final_answer(msgs, tokenizer, tools, "preference pair: the chosen answer after the prompt is "
                             f"scored against the rejected one, «{shown}», the same way; the prompt is context")
    if "completion" in record:
        verdict = "good" if record.get("label") else "bad"
        return _final_answer(msgs, tokenizer, tools, f"rated answer ({verdict}): KTO scores the answer after "
                             "the prompt; the prompt is context")
    if "messages" not in record:
        return _final_answer(msgs, tokenizer, tools, "")
    template = training_template(tokenizer)
    if template is not None:
        out = tokenizer.apply_chat_template(msgs, tools=tools, chat_template=template, tokenize=True,
                                            return_dict=True, return_assistant_tokens_mask=True)
        if not any(m.get("weight") == 0 for m in msgs):
            return _build(tokenizer, out["input_ids"], out["assistant_masks"], "every assistant turn is trained")
        mask = mask_without_weight_0(list(out["assistant_masks"]), msgs)
        if mask is not None:  # the SFT stage trains such a conversation the same way, in one pass
            return _build(tokenizer, out["input_ids"], mask,
                          "every assistant turn is trained but those marked weight 0, which are context")
        return _final_answer(msgs, tokenizer, tools, "each answer not marked weight 0 trains as an example of "
                             "its own, after the turns before it; shown: the final answer")
    return _final_answer(msgs, tokenizer, tools, "the final answer is trained; earlier turns are context")


def _final_answer(msgs: list[dict[str, Any]], tokenizer: Any, tools: Any, rule: str) -> Preview:
    last = max((i for i, m in enumerate(msgs) if m["role"] == "assistant"), default=None)
    full = _ids(tokenizer.apply_chat_template(msgs, tools=tools, tokenize=True))
    if last is None:
        return _build(tokenizer, full, [0] * len(full), "a prompt with no answer: the model writes the answer "
                      "during RLHF; nothing here is a target")
    prompt = _ids(tokenizer.apply_chat_template(msgs[:last], tools=tools, tokenize=True, add_generation_prompt=True))
    n = len(prompt) if full[:len(prompt)] == prompt else _common_prefix(prompt, full)
    mask = [0] * n + [1] * (len(full) - n)
    return _build(tokenizer, full, mask, rule)


def _ids(value: Any) -> list[int]:
    if isinstance(value, dict) or hasattr(value, "keys"):
        value = value["input_ids"]
    return list(value)


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def _build(tokenizer: Any, ids: list[int], mask: list[int], rule: str) -> Preview:
    # decode growing prefixes so multi-byte characters split across tokens still read correctly
    texts, prev = [], ""
    for i in range(len(ids)):
        cur = tokenizer.decode(ids[: i + 1], skip_special_tokens=False)
        texts.append(cur[len(prev):] if cur.startswith(prev) else tokenizer.decode([ids[i]]))
        prev = cur
        if i > 2000:  # long rows: per-token decoding is enough past this point
            texts += [tokenizer.decode([t]) for t in ids[i + 1:]]
            break
    tokens = [(t, bool(m)) for t, m in zip(texts, mask)]
    rendered = "".join(t for t, _ in tokens)
    return Preview(tokens, rendered, sum(1 for _, m in tokens if m), len(tokens), rule)
