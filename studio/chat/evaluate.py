"""Held-out evaluation: exact match of greedy answers, token-level loss / perplexity, ROUGE-L and BLEU
against the references, the share of right final answers where the data says what they are (maths), and
optionally a judge model's mean grade (studio/chat/scores.py).

    studio eval RUN_OR_MODEL --data assets/data/support_eval.jsonl --json [--checkpoints] [--judge MODEL]

Each row is a conversation whose last turn is the reference answer. A row counts as an exact match
when the greedy answer to the turns before it, stripped of whitespace, equals the reference. Loss
is the mean negative log-likelihood of the reference answer's tokens given the prompt.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.data.load import load_records


@dataclass
class EvalResult:
    model: str
    rows: int
    exact_match: float
    loss: float
    perplexity: float
    answers: list[dict[str, str]] = field(default_factory=list)
    rouge_l: float = 0.0
    bleu: float = 0.0
    judge: float | None = None
    """The judge's mean grade (1-5) over the rows it graded; None without a judge."""
    judged_by: str = ""
    final_answer: float | None = None
    """Share of answers whose final result (a box, '#### 72' ...) equals the reference's; None for data whose
    references mark no final answer and have no reference column (studio/methods/answers.py)."""

    def to_dict(self, with_answers: bool = False) -> dict[str, Any]:
        out = {"model": self.model, "rows": self.rows, "exact_match": self.exact_match, "loss": self.loss,
               "perplexity": self.perplexity, "rouge_l": self.rouge_l, "bleu": self.bleu}
        if self.final_answer is not None:
            out["final_answer"] = self.final_answer
        if self.judged_by:
            out.update(judge=self.judge, judged_by=self.judged_by)
        if with_answers:
            out["answers"] = self.answers
        return out


EVALUATIONS = "evaluations.jsonl"


def scored_split(path: str, split: str | None, subset: str | None = None) -> str:
    """Which part of the eval data was scored, as results say it: the subset and split of a folder or a hub
    dataset ('main/test', 'eval'); '' for a file, which has no splits."""
    if Path(path).is_file():
        return ""
    return "/".join(part for part in (subset, split or "train") if part)


def save_result(ws: Any, result: EvalResult, data: str, split: str = "") -> Path | None:
    """Keep an evaluation of a run (or of one of its checkpoints, RUN@checkpoint-N) with the run: one JSON
    line in runs/<id>/evaluations.jsonl, with the data and the split scored; None when the model evaluated is
    not a run of this workspace."""
    from studio.workspace import RUN_ID

    run_id, _, checkpoint = result.model.partition("@")
    run_dir = ws.runs / run_id
    if not RUN_ID.match(run_id) or not (run_dir / "config.yaml").exists():
        return None
    line = {"time": round(time.time(), 1), "data": data, **({"split": split} if split else {}), **result.to_dict()}
    if checkpoint:
        line["checkpoint"] = checkpoint
    with open(run_dir / EVALUATIONS, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(line) + "\n")
    return run_dir / EVALUATIONS


def evaluations(run_dir: Path) -> list[dict[str, Any]]:
    """A run's saved evaluations, oldest first (lines that are not one evaluation's record are passed over)."""
    try:
        lines = (Path(run_dir) / EVALUATIONS).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(record, dict):
            out.append(record)
    return out


def final_evaluations(run_dir: Path) -> list[dict[str, Any]]:
    """A run's evaluations of its final model (not of a checkpoint), oldest first; records without the figures
    every evaluation writes (rows, exact match, loss, perplexity: a hand edit, a damaged line) are passed over."""
    def number(value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)

    return [e for e in evaluations(run_dir) if not e.get("checkpoint")
            and all(number(e.get(k)) for k in ("rows", "exact_match", "loss", "perplexity"))]


TRAINING_READ_BYTES = 64 * 2**20
"""The largest training data (unpacked) read to see whether eval rows were trained on."""


def _prompt_key(messages: list[dict[str, Any]]) -> tuple[tuple[str, str], ...]:
    """A conversation up to its last answer, without system messages (a run may add its own)."""
    return tuple((str(m.get("role")), " ".join(str(m.get("content") or "").split())) for m in messages[:-1]
                 if m.get("role") != "system")


def trained_on(run_dir: Path, rows: list[dict[str, Any]]) -> int | None:
    """How many of the eval `rows` ask what the run's own training data asks (so their scores are not held out);
    None where that cannot be told cheaply: hub data, data over TRAINING_READ_BYTES, data that is not
    conversations (a DPO run's pairs), or a run config that cannot be read."""
    from studio.data.load import resolve_project_path
    from studio.data.readers import data_bytes
    from studio.errors import StudioError
    from studio.workspace import read_run_config

    try:
        data = read_run_config(run_dir).get("data") or {}
        path = resolve_project_path(str(data.get("train") or ""))
        if not data.get("train") or not path.exists() or data_bytes(path, TRAINING_READ_BYTES) > TRAINING_READ_BYTES:
            return None
        records, _ = load_records(str(path), ("sft",), data.get("split") or "train", data.get("subset"),
                                  fmt=data.get("format"), mapping=data.get("map"), purpose="evaluation")
    except (StudioError, ValueError, OSError, AttributeError, TypeError):
        return None
    seen = {_prompt_key(r["messages"]) for r in records}
    return sum(_prompt_key(r["messages"]) in seen for r in rows)


def eval_rows(source: str, limit: int | None = None, split: str = "train", subset: str | None = None
              ) -> list[dict[str, Any]]:
    """Conversations ending in an assistant turn, from any SFT-shaped file (or a dataset folder's or hub
    dataset's `split` of `subset`)."""
    records, _ = load_records(source, ("sft",), split, subset, purpose="evaluation")
    rows = [r for r in records if r["messages"][-1]["role"] == "assistant"]
    return rows[:limit] if limit else rows


def _prompt(tokenizer: Any, messages: list[dict[str, str]]) -> str:
    if tokenizer.chat_template:
        return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return "\n".join(m["content"] for m in messages) + "\n"


def generate_answers(model: Any, tokenizer: Any, rows: list[dict[str, Any]], batch_size: int = 32,
                     max_new_tokens: int | None = None) -> list[str]:
    """Greedy answers to each row's conversation without its last turn, in row order."""
    if max_new_tokens is None:  # room for the longest reference, so a longer wrong answer still shows
        longest = max(len(tokenizer(r["messages"][-1]["content"])["input_ids"]) for r in rows)
        max_new_tokens = longest + 8
    return batch_answers(model, tokenizer, [r["messages"][:-1] for r in rows], max_new_tokens, batch_size=batch_size)


def batch_answers(model: Any, tokenizer: Any, conversations: list[list[dict[str, str]]], max_new_tokens: int,
                  temperature: float = 0.0, batch_size: int = 32,
                  progress: Callable[[float], None] | None = None) -> list[str]:
    """One answer per conversation, in order, generated in batches: greedy at temperature 0, sampled
    above it. `progress` hears the share done after each batch."""
    import torch

    prompts = [_prompt(tokenizer, c) for c in conversations]
    sampling = {"do_sample": True, "temperature": temperature, "top_p": 1.0} if temperature > 0 else \
        {"do_sample": False}
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    answers: list[str] = []
    try:
        with torch.no_grad():
            for start in range(0, len(prompts), batch_size):
                batch = tokenizer(prompts[start:start + batch_size], return_tensors="pt", padding=True,
                                  add_special_tokens=False).to(model.device)
                out = model.generate(**batch, max_new_tokens=max_new_tokens, eos_token_id=tokenizer.eos_token_id,
                                     pad_token_id=tokenizer.pad_token_id, **sampling)
                answers += [t.strip() for t in tokenizer.batch_decode(out[:, batch["input_ids"].shape[1]:],
                                                                      skip_special_tokens=True)]
                if progress:
                    progress(len(answers) / len(prompts))
    finally:
        tokenizer.padding_side = side
    return answers


def answer_loss(model: Any, tokenizer: Any, rows: list[dict[str, Any]], batch_size: int = 16) -> float:
    """Mean NLL per reference-answer token."""
    import torch

    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            chunk = rows[start:start + batch_size]
            ids, labels = [], []
            for r in chunk:
                prompt = tokenizer(_prompt(tokenizer, r["messages"][:-1]), add_special_tokens=False)["input_ids"]
                answer = tokenizer(r["messages"][-1]["content"] + (tokenizer.eos_token or ""),
                                   add_special_tokens=False)["input_ids"]
                ids.append(prompt + answer)
                labels.append([-100] * len(prompt) + answer)
            width = max(len(x) for x in ids)
            pad = tokenizer.pad_token_id or 0
            input_ids = torch.tensor([x + [pad] * (width - len(x)) for x in ids], device=model.device)
            mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in ids], device=model.device)
            target = torch.tensor([y + [-100] * (width - len(y)) for y in labels], device=model.device)
            logits = model(input_ids=input_ids, attention_mask=mask).logits[:, :-1].float()
            shifted = target[:, 1:]
            nll = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), shifted.reshape(-1),
                                                    ignore_index=-100, reduction="sum")
            total += nll.item()
            count += int((shifted != -100).sum().item())
    return total / max(count, 1)


def final_answer_checks(rows: list[dict[str, Any]], answers: list[str], thinking: bool = False
                        ) -> list[tuple[str, bool]] | None:
    """(the reference's final answer, whether the answer's agrees) per row, the reference being the row's
    reference column, else its last turn; None when no row has a reference column and no reference marks
    where its final answer is. `thinking`: the prompts opened <think> (answers.prompt_opens_thinking)."""
    from studio.methods.answers import answer_matches, final_answer, marks_answer

    refs = [r.get("reference") or r["messages"][-1]["content"] for r in rows]
    if not any(r.get("reference") for r in rows) and not any(marks_answer(ref) for ref in refs):
        return None
    return [(final_answer(ref) or "", bool(answer_matches(a, ref, thinking))) for a, ref in zip(answers, refs)]


def right_share(checks: list[tuple[str, bool]] | None) -> float | None:
    """The share of final answers checked right; None where there was nothing to check."""
    return None if not checks else sum(right for _, right in checks) / len(checks)


def evaluate_model(name: str, model: Any, tokenizer: Any, rows: list[dict[str, Any]], judge: Any = None,
                   rubric: str = "", system: str = "") -> EvalResult:
    """Score `model` on `rows`; with `judge` (a loaded model), also its mean grade of the answers. `system` (the
    run's data.system) opens each conversation that has no system turn, as in the run's training."""
    from studio.chat import scores
    from studio.data.turns import with_default_system
    from studio.methods.answers import prompt_opens_thinking

    if not rows:
        from studio.errors import StudioError

        raise StudioError("The eval data has no conversation ending in an assistant answer.")
    rows = with_default_system(rows, system)
    answers = generate_answers(model, tokenizer, rows)
    refs = [r["messages"][-1]["content"].strip() for r in rows]
    hits = sum(a == ref for a, ref in zip(answers, refs))
    loss = answer_loss(model, tokenizer, rows)
    table = [{"prompt": r["messages"][-2]["content"] if len(r["messages"]) > 1 else "", "reference": ref,
              "answer": a} for r, ref, a in zip(rows, refs, answers)]
    checks = final_answer_checks(rows, answers, prompt_opens_thinking(tokenizer))
    for row, (final, right) in zip(table, checks or []):
        row.update(final=final, right="yes" if right else "no")
    result = EvalResult(name, len(rows), hits / len(rows), loss, math.exp(min(loss, 50)), table,
                        rouge_l=scores.rouge_l(answers, refs), bleu=scores.bleu(answers, refs),
                        final_answer=right_share(checks))
    if judge is not None:
        grades = scores.judge_answers(judge, table, rubric or scores.RUBRIC)
        for row, grade in zip(table, grades):
            row["grade"] = "" if grade is None else str(grade)
        result.judge, result.judged_by = scores.mean_grade(grades), judge.name
    return result
