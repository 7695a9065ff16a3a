"""Every training stage, declared once: what it is called, what it needs and what it costs.

Config validation, the CLI's choices, the Method and Train tabs, the memory estimate, parameter
counting, the runs table, chat and the worker all read these declarations; none keeps a list of its
own. Adding a stage is its declaration here, its module in studio/methods/ (a `build_trainer`), a
preset and a test.

    from studio.stages import stage, available_stages
    stage("dpo").data_kinds        # ('preference',)
    [s.name for s in available_stages()]
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from studio.errors import StudioError


@dataclass(frozen=True)
class Stage:
    name: str
    """The value of method.stage in a config (sft, reward, dpo ...)."""
    label: str
    """What the UI calls it."""
    card: str
    """One paragraph for the Method tab and the Guide: what it does and what it costs."""
    data_kinds: tuple[str, ...]
    """The kinds of data it trains on ('sft', 'text', 'preference', 'unpaired', 'prompt'), as studio.data
    detects them."""
    head: str = "lm"
    """'lm' (the language-model head) or 'score' (one number per answer, a reward model)."""
    paired: bool = False
    """Each row is a chosen and a rejected answer, so a step holds twice the activations."""
    reference_copy: bool = False
    """Keeps a frozen copy of the starting model (free with LoRA: the adapter is switched off)."""
    reward_model: bool = False
    """Holds a reward model in memory during training."""
    generates: bool = False
    """Writes answers during training (a KV cache on top of the training step)."""
    chat: bool = True
    """Its result writes answers, so it can be chatted with, evaluated and exported for chat."""
    section: str | None = None
    """The config section of this stage's own settings (dpo, kto, rl), or None."""
    module: str | None = None
    """The module whose `build_trainer(cfg, run_dir, callbacks)` builds the trainer; None while the
    stage is declared but cannot train yet."""
    metrics: tuple[str, ...] = ()
    """Logged metrics worth a chart beside the loss."""

    @property
    def available(self) -> bool:
        return self.module is not None

    @property
    def loss_label(self) -> str:
        """What its loss measures, for chart axes: losses of different kinds are not drawn on one scale."""
        return "RL loss" if self.generates else f"{self.label} loss"

    @property
    def peft_task(self) -> str:
        return "SEQ_CLS" if self.head == "score" else "CAUSAL_LM"

    def trainer_module(self) -> ModuleType:
        """The module that builds this stage's trainer; a clear error while the stage cannot train."""
        if self.module is None:
            raise StudioError(f"The {self.label} stage cannot train yet in this version of the studio; "
                             f"choose one of {', '.join(s.name for s in available_stages())}.")
        return importlib.import_module(self.module)


_PAIR_METRICS = ("rewards/accuracies", "rewards/margins", "eval_rewards/accuracies", "eval_rewards/margins")

STAGES: dict[str, Stage] = {s.name: s for s in (
    Stage(
        name="sft", label="SFT", data_kinds=("sft", "text"), module="studio.methods.sft",
        metrics=("mean_token_accuracy", "eval_mean_token_accuracy"),
        card="**SFT** — learns from examples of good answers: a prompt and the reply you want. The first "
             "stage of almost every project, and often the only one needed.",
    ),
    Stage(
        name="reward", label="Reward model", data_kinds=("preference",), head="score", paired=True, chat=False,
        module="studio.methods.reward", metrics=("accuracy", "margin", "eval_accuracy", "eval_margin"),
        card="**Reward model** — learns to give an answer a score, from pairs where one answer was "
             "preferred. Its head outputs one number instead of a word, so the counts include that head, "
             "which trains in full. Used to steer RLHF; it scores answers rather than writing them.",
    ),
    Stage(
        name="dpo", label="DPO", data_kinds=("preference",), paired=True, reference_copy=True, section="dpo",
        module="studio.methods.dpo", metrics=_PAIR_METRICS,
        card="**DPO** — learns straight from preferred / rejected pairs, with no reward model: it raises the "
             "chosen answer's likelihood against a frozen reference. With LoRA the reference is the base "
             "with the adapter switched off, so it costs no memory; full fine-tuning keeps a second copy.",
    ),
    Stage(
        name="kto", label="KTO", data_kinds=("unpaired", "preference"), paired=True, reference_copy=True,
        section="kto", module="studio.methods.kto",
        metrics=("rewards/chosen", "rewards/rejected", "rewards/margins", "kl", "eval_rewards/margins"),
        card="**KTO** — learns from single answers marked good or bad (thumbs up or down), no pairs needed: "
             "it raises good answers and lowers bad ones against a frozen reference, like DPO. Preference "
             "pairs work too (each pair gives one good and one bad answer). Each step also scores a "
             "mismatched answer to estimate the drift from the reference, so it costs about what DPO costs.",
    ),
    Stage(
        name="rlhf", label="RLHF", data_kinds=("prompt", "sft", "preference"), reference_copy=True,
        reward_model=True, generates=True, section="rl", module="studio.methods.rlhf",
        metrics=("reward", "reward_std", "kl", "entropy", "completions/mean_length"),
        card="**RLHF (GRPO / RLOO)** — the model answers each prompt several times, rewards score the answers "
             "(a reward model, rules such as exact match or valid JSON, or your own function), and the policy "
             "moves towards the answers that beat the others while a KL penalty keeps it near where it "
             "started. No value model: the group of answers is the baseline. It generates during training, "
             "so it is slower per step than SFT.",
    ),
    Stage(
        name="ppo", label="PPO", data_kinds=("prompt", "sft", "preference"), reference_copy=True,
        reward_model=True, generates=True, section="rl", module="studio.methods.ppo",
        metrics=("reward", "kl", "value_loss", "clipfrac", "entropy", "completions/mean_length"),
        card="**PPO** — classic RLHF: the model answers, the rewards score each answer, a value head learns "
             "what an answer is worth token by token, and clipped updates move the policy towards better "
             "answers while a per-token KL penalty keeps it near where it started. Needs no group of answers "
             "per prompt, at the cost of the value head.",
    ),
)}


def stage(name: str) -> Stage:
    """The declaration of `name`; ValueError naming the known stages otherwise."""
    try:
        return STAGES[name]
    except (KeyError, TypeError):
        raise ValueError(f"method.stage must be one of {', '.join(STAGES)} (got {name!r}).") from None


def available_stages() -> list[Stage]:
    """The stages that can train now, in the order the UI shows them."""
    return [s for s in STAGES.values() if s.available]


def chat_stage(name: str | None) -> bool:
    """Whether a run of stage `name` writes answers (unknown or missing: assume it does)."""
    return STAGES[name].chat if name in STAGES else True
