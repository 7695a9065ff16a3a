"""The rewards a policy is trained towards: a reward-model run, built-in rules, or a function the admin writes.

    funcs = reward_functions(cfg)              # what rl.rewards names, as TRL reward callables
    funcs[0](prompts=[...], completions=[...], reference=[...])   # one float per completion

Built-in rules (each returns one number per answer):
    exact_match   1 when the answer equals the row's reference answer (case and spacing ignored), else 0
    overlap       how many words the answer shares with the reference: the F1 of their word counts, 0 to 1
    contains      1 when the reference answer appears inside the answer, else 0
    final_answer  1 when the answer's final result (\\boxed{...}, '#### 72', <answer> tags, 'the answer is ...', else
                  its last number) equals the reference's, as numbers where both are numbers, else 0
                  (see studio/methods/answers.py)
    regex         1 when rl.pattern is found in the answer, else 0
    json_valid    1 when the answer is valid JSON, else 0
    length        0 up to rl.max_chars characters, falling to -1 at twice that (a length penalty)
    model         the reward-model run named in rl.reward_model (loaded by the trainer's module)
    code          `def reward(prompt, completion, **row) -> float` from rl.reward_code (the code, or a .py file's
                  path): Python the admin wrote, run inside the training worker only

Prompts and answers reach a function as plain text (the last user message, the assistant's words), so the
same rule works for conversational and plain data. The reference answer is the row's `reference` column:
an SFT row's last answer, a preference row's chosen answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from studio.config_rl import REWARDS as BUILT_IN
from studio.errors import StudioError
from studio.methods.answers import answer_matches


def text_of(value: Any) -> str:
    """A prompt or completion as TRL passes it (a string, or a list of chat messages) as plain text."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        turns = [m for m in value if isinstance(m, dict)]
        last = [m for m in turns if m.get("role") in ("assistant", "user")]
        return str((last[-1] if last else turns[-1] if turns else {}).get("content") or "")
    return str(value or "")


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


NOT_ROW = {"prompt", "completion", "prompts", "completions", "completion_ids", "trainer_state", "log_extra",
           "log_metric"}


def row_of(columns: dict[str, Any], i: int, n: int) -> dict[str, Any]:
    """Row `i`'s own columns (reference, intent ...) out of the batch TRL hands a reward function."""
    return {k: v[i] for k, v in columns.items() if k not in NOT_ROW and isinstance(v, list) and len(v) == n}


def _per_answer(name: str, score: Callable[[str, str, dict[str, Any]], float]) -> Callable[..., list[float]]:
    """A TRL reward function from `score(answer, reference, row)`; TRL logs it under `name`."""
    def reward(prompts: list[Any], completions: list[Any], **columns: Any) -> list[float]:
        refs = columns.get("reference") or [""] * len(completions)
        out = []
        for i, completion in enumerate(completions):
            row = row_of(columns, i, len(completions))
            out.append(float(score(text_of(completion), text_of(refs[i]) if refs[i] is not None else "", row)))
        return out
    reward.__name__ = name
    return reward


def word_f1(answer: str, reference: str) -> float:
    """F1 of the words two texts share (counted with repeats, case and punctuation ignored)."""
    from collections import Counter

    words = lambda text: Counter(re.findall(r"\w+", text.lower()))  # noqa: E731
    a, r = words(answer), words(reference)
    common = sum((a & r).values())
    if not common:
        return 0.0
    precision, recall = common / sum(a.values()), common / sum(r.values())
    return 2 * precision * recall / (precision + recall)


def _json_valid(answer: str) -> float:
    try:
        json.loads(answer)
    except ValueError:
        return 0.0
    return 1.0


def rule(name: str, pattern: str = "", max_chars: int = 400, thinking: bool = False) -> Callable[..., list[float]]:
    """One built-in rule as a TRL reward function (`thinking`: the prompt opens <think>, see answers.final_answer)."""
    if name == "exact_match":
        return _per_answer(name, lambda a, ref, row: float(bool(ref) and _norm(a) == _norm(ref)))
    if name == "overlap":
        return _per_answer(name, lambda a, ref, row: word_f1(a, ref))
    if name == "contains":
        return _per_answer(name, lambda a, ref, row: float(bool(ref) and _norm(ref) in _norm(a)))
    if name == "final_answer":
        return _per_answer(name, lambda a, ref, row: answer_matches(a, ref, thinking))
    if name == "regex":
        if not pattern:
            raise StudioError("The regex reward needs a pattern: set rl.pattern.")
        try:
            compiled = re.compile(pattern)
        except re.error as err:
            raise StudioError(f"rl.pattern is not a valid regular expression: {err}.") from None
        return _per_answer(name, lambda a, ref, row: float(compiled.search(a) is not None))
    if name == "json_valid":
        return _per_answer(name, lambda a, ref, row: _json_valid(a.strip()))
    if name == "length":
        return _per_answer(name, lambda a, ref, row: -min(1.0, max(0, len(a) - max_chars) / max_chars))
    raise StudioError(f"Unknown reward {name!r}: choose from {', '.join(BUILT_IN)}.")


def names_a_file(source: str) -> bool:
    """Whether rl.reward_code names a .py file rather than holding the code itself."""
    return source.strip().endswith(".py") and "\n" not in source.strip()


def code_reward(source: str) -> Callable[..., list[float]]:
    """The admin's `reward(prompt, completion, **row)` compiled from `source` (the code itself, or the path of
    a .py file that holds it); errors name the line."""
    where = "rl.reward_code"
    if names_a_file(source):
        from pathlib import Path

        from studio.paths import read_text

        where = source.strip()
        source = read_text(Path(where).expanduser(), "The reward code file", StudioError)
    namespace: dict[str, Any] = {"__name__": "studio_reward"}
    try:
        exec(compile(source, where, "exec"), namespace)  # an admin's code, run in the worker
    except SyntaxError as err:
        raise StudioError(f"{where}, line {err.lineno}: {err.msg}.") from None
    except Exception as err:
        raise StudioError(f"{where} failed while loading: {type(err).__name__}: {err}.") from None
    fn = namespace.get("reward")
    if not callable(fn):
        raise StudioError("rl.reward_code must define a function `reward(prompt, completion, **row)` "
                          "that returns a number.")

    def reward(prompts: list[Any], completions: list[Any], **columns: Any) -> list[float]:
        out = []
        for i, (prompt, completion) in enumerate(zip(prompts, completions)):
            row = row_of(columns, i, len(completions))
            try:
                value = fn(text_of(prompt), text_of(completion), **row)
                out.append(float(value))
            except Exception as err:
                raise StudioError(f"rl.reward_code: reward() failed on answer {i + 1} of a batch: "
                                  f"{type(err).__name__}: {err}.") from None
        return out
    reward.__name__ = "code"
    return reward


def check_rewards(names: list[str], reward_model: str | None, reward_code: str) -> None:
    """Config-time checks: known names, and what each one needs."""
    if not names:
        raise ValueError("rl.rewards is empty: name at least one reward (for example model or exact_match).")
    unknown = [n for n in names if n not in BUILT_IN]
    if unknown:
        raise ValueError(f"rl.rewards: unknown reward {unknown[0]!r}; choose from {', '.join(BUILT_IN)}.")
    if len(set(names)) != len(names):
        raise ValueError("rl.rewards names a reward twice.")
    if "model" in names and not reward_model:
        raise ValueError("rl.rewards has 'model' but rl.reward_model names no reward-model run.")
    if "code" in names and not reward_code.strip():
        raise ValueError("rl.rewards has 'code' but rl.reward_code is empty.")
