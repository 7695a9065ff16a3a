"""What the stages that learn from their own answers share (rlhf through TRL, the studio's ppo): prompts
with their reference answers, the reward functions a config names, a log of sample answers, and the
held-out mean reward that says whether a policy got better.

    rows = prompt_rows(records)                 # [{"prompt": [turns], "reference": "..."}]
    funcs = reward_functions(cfg, run_dir)      # TRL-style callables, one number per answer
    mean_reward(model, tokenizer, rows, funcs)  # greedy answers to held-out prompts, scored
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from studio.config import RunConfig, load_config
from studio.errors import StudioError
from studio.methods import rewards
from studio.workspace import run_result

RewardFn = Callable[..., list[float]]


def prompt_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each record's conversation before its (last) answer, ending on the user, with the answer it had as
    the reference: the record's own reference column where it has one, else the last assistant turn of chat
    data, the chosen answer of preference data."""
    out = []
    for r in records:
        reference = ""
        if "messages" in r:
            msgs = r["messages"]
            last = max((i for i, m in enumerate(msgs) if m["role"] == "assistant"), default=len(msgs))
            turns = msgs[:last]
            reference = msgs[last]["content"] if last < len(msgs) else ""
        else:
            turns = r["prompt"] if isinstance(r["prompt"], list) else [{"role": "user", "content": r["prompt"]}]
            if r.get("chosen") is not None:
                reference = rewards.text_of(r["chosen"])
        reference = r.get("reference") or reference  # a column of its own (a maths problem's final answer)
        if turns and turns[-1]["role"] == "user":
            out.append({"prompt": [{"role": m["role"], "content": m["content"]} for m in turns],
                        "reference": reference or ""})
    return out


def reward_model_dir(cfg: RunConfig, run_dir: Path | None) -> Path:
    """The reward-model run named in rl.reward_model: a folder, or a run id in the workspace of `run_dir`."""
    named = Path(str(cfg.rl.reward_model))
    if not named.is_dir() and run_dir is not None:
        named = Path(run_dir).parent / str(cfg.rl.reward_model)
    if not (named / "config.yaml").exists():
        raise StudioError(f"rl.reward_model: no reward-model run {cfg.rl.reward_model!r} in this workspace.")
    return named


def load_reward_model(folder: Path) -> tuple[Any, Any]:
    """(model, tokenizer) of a finished reward-model run, its adapter merged, in eval mode."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    from studio.methods.common import base_model_path
    from studio.models.loading import load_tokenizer

    reward_cfg = load_config(folder / "config.yaml")
    if reward_cfg.method.stage != "reward":
        raise StudioError(f"rl.reward_model: {folder.name} is a {reward_cfg.method.stage} run, not a reward model.")
    result = run_result(folder)
    if result is None:
        raise StudioError(f"rl.reward_model: the run {folder.name} has not finished (no adapter or model yet).")
    kind, weights = result
    tokenizer = load_tokenizer(reward_cfg.model.name, reward_cfg.model.revision, reward_cfg.model.trust_remote_code)
    source = weights if kind == "model" else base_model_path(reward_cfg, folder)
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the score head is new in the base: the adapter brings its weights
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            source, num_labels=1, dtype=torch.float32, trust_remote_code=reward_cfg.model.trust_remote_code)
    finally:
        hf_logging.set_verbosity(level)
    if kind == "adapter":
        model = PeftModel.from_pretrained(model, str(weights)).merge_and_unload()
    model.config.pad_token_id = tokenizer.pad_token_id
    return model.eval(), tokenizer


def model_reward(model: Any, tokenizer: Any, batch_size: int = 16) -> RewardFn:
    """A reward model as a reward function: the score of the prompt and answer, rendered as a chat."""
    import torch

    def score(prompts: list[Any], completions: list[Any], **columns: Any) -> list[float]:
        texts = []
        for prompt, completion in zip(prompts, completions):
            turns = prompt if isinstance(prompt, list) else [{"role": "user", "content": str(prompt)}]
            answer = [{"role": "assistant", "content": rewards.text_of(completion)}]
            texts.append(tokenizer.apply_chat_template(turns + answer, tokenize=False))
        out: list[float] = []
        device = next(model.parameters()).device
        with torch.no_grad():
            for start in range(0, len(texts), batch_size):
                batch = tokenizer(texts[start:start + batch_size], return_tensors="pt", padding=True,
                                  add_special_tokens=False).to(device)
                out += model(**batch).logits[:, 0].float().tolist()
        return out
    score.__name__ = "model"
    return score


def reward_functions(cfg: RunConfig, run_dir: Path | None = None, tokenizer: Any = None) -> list[RewardFn]:
    """The rewards rl.rewards names, in order, as callables `f(prompts, completions, **columns)`; `tokenizer` (the
    policy's) says whether its prompts open <think>, where an answer cut off while thinking has no final answer."""
    from studio.methods.answers import prompt_opens_thinking

    thinking = prompt_opens_thinking(tokenizer)
    out = []
    for name in cfg.rl.rewards:
        if name == "model":
            model, tokenizer = load_reward_model(reward_model_dir(cfg, run_dir))
            out.append(model_reward(model, tokenizer))
        elif name == "code":
            out.append(rewards.code_reward(cfg.rl.reward_code))
        else:
            out.append(rewards.rule(name, pattern=cfg.rl.pattern, max_chars=cfg.rl.max_chars, thinking=thinking))
    return out


class SampleLog:
    """Writes a few answers with their rewards to samples.jsonl every `every` steps, so the run shows what
    the policy writes, not only its curves. Wraps the reward functions: the last one of a batch writes."""

    def __init__(self, run_dir: Path | None, every: int, per_step: int = 4):
        self.path = Path(run_dir) / "samples.jsonl" if run_dir is not None else None
        self.every, self.per_step = max(1, every), per_step
        self.step, self.written_at = 0, -1
        self.training: Callable[[], bool] = lambda: True
        """Whether the answers being scored are training answers (the trainer sets this; eval answers are not
        written as samples)."""
        self.pending: dict[str, list[float]] = {}

    def wrap(self, funcs: list[RewardFn]) -> list[RewardFn]:
        names = [f.__name__ for f in funcs]

        def wrapped(fn: RewardFn, last: bool) -> RewardFn:
            def call(prompts: list[Any], completions: list[Any], **columns: Any) -> list[float]:
                values = fn(prompts=prompts, completions=completions, **columns)
                state = columns.get("trainer_state")
                self.step = int(getattr(state, "global_step", self.step))
                self.pending[fn.__name__] = values
                if last:
                    self.record(prompts, completions, {n: self.pending.get(n, []) for n in names},
                                columns.get("reference"))
                return values
            call.__name__ = fn.__name__
            return call
        return [wrapped(f, i == len(funcs) - 1) for i, f in enumerate(funcs)]

    def record(self, prompts: list[Any], completions: list[Any], scores: dict[str, list[float]],
               references: list[Any] | None = None) -> None:
        if self.path is None or self.step == self.written_at or self.step % self.every or not self.training():
            return
        self.written_at = self.step
        with open(self.path, "a", encoding="utf-8") as fh:
            for i in range(min(self.per_step, len(completions))):
                row = {"step": self.step, "time": round(time.time(), 2),
                       "prompt": rewards.text_of(prompts[i]), "answer": rewards.text_of(completions[i]),
                       "rewards": {n: round(float(v[i]), 4) for n, v in scores.items() if i < len(v)}}
                if references and i < len(references) and references[i]:  # what the rule rewards compared with
                    row["reference"] = rewards.text_of(references[i])
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def read_samples(run_dir: Path, last: int = 20) -> list[dict[str, Any]]:
    """The latest sample answers a run wrote (newest last)."""
    try:
        lines = (Path(run_dir) / "samples.jsonl").read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    out = []
    for line in lines[-last:]:
        try:
            out.append(json.loads(line))
        except ValueError:
            continue  # a line being written right now
    return out


def mean_reward(model: Any, tokenizer: Any, rows: list[dict[str, Any]], funcs: list[RewardFn],
                max_new_tokens: int = 64) -> dict[str, float]:
    """Greedy answers to `rows`' prompts, scored: the mean of each reward and of their sum ('total')."""
    from studio.chat.evaluate import batch_answers

    answers = batch_answers(model, tokenizer, [r["prompt"] for r in rows], max_new_tokens)
    columns = {"reference": [r.get("reference", "") for r in rows]}
    prompts = [r["prompt"] for r in rows]
    means: dict[str, float] = {}
    total = [0.0] * len(rows)
    for fn in funcs:
        values = fn(prompts=prompts, completions=answers, **columns)
        means[fn.__name__] = sum(values) / len(values)
        total = [t + v for t, v in zip(total, values)]
    means["total"] = sum(total) / len(total)
    return means
