"""RLHF by group comparison with TRL: GRPOTrainer or RLOOTrainer, from an SFT run, on prompts.

    studio train presets/tiny-grpo.yaml --set model.parent_run=<an SFT run>

Each prompt is answered rl.num_generations times; the rewards rl.rewards names (a reward-model run, rules,
or the admin's own function) score every answer, summed. GRPO moves the policy towards answers that beat
their group's mean, scaled by the group's spread; RLOO towards answers that beat the mean of the others.
A KL penalty (rl.kl_coef) to the frozen starting policy keeps it near where it began; with LoRA the
reference is the same model with the adapter switched off. A few answers and their rewards are written to
samples.jsonl every few steps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from studio.config import RunConfig
from studio.errors import StudioError
from studio.methods import common, rl_common
from studio.models.loading import load_tokenizer
from studio.stages import stage

STAGE = stage("rlhf")


def prompt_data(cfg: RunConfig, run_dir: Path | None) -> tuple[Any, Any]:
    """(train, eval) datasets of {"prompt": turns, "reference": answer} from any data with prompts."""
    import datasets

    train, evaluation = common.train_and_eval(cfg, STAGE.data_kinds, run_dir)

    def convert(data: Any) -> Any:
        if data is None:
            return None
        rows = rl_common.prompt_rows(list(data))
        if not rows:
            raise StudioError(f"{cfg.data.train}: no prompt ends on a user message, so there is nothing to answer.")
        return datasets.Dataset.from_list(rows)
    return convert(train), convert(evaluation)


def build_trainer(cfg: RunConfig, run_dir: Path, callbacks: list[Any]) -> Any:
    from trl import GRPOConfig, GRPOTrainer, RLOOConfig, RLOOTrainer

    rl = cfg.rl
    if cfg.train.batch_size % rl.num_generations:
        raise StudioError(f"train.batch_size ({cfg.train.batch_size}) holds whole groups of answers: make it a "
                          f"multiple of rl.num_generations ({rl.num_generations}).")
    precision = common.resolve_precision(cfg.train.precision)
    tokenizer = load_tokenizer(cfg.model.name, cfg.model.revision, cfg.model.trust_remote_code)
    train, evaluation = prompt_data(cfg, run_dir)
    log = rl_common.SampleLog(run_dir, every=max(1, cfg.train.logging_steps))
    funcs = log.wrap(rl_common.reward_functions(cfg, run_dir, tokenizer))
    config_class, trainer_class = (GRPOConfig, GRPOTrainer) if rl.algorithm == "grpo" else (RLOOConfig, RLOOTrainer)
    args = config_class(
        **{**common.training_arguments(cfg, run_dir, precision, has_eval=evaluation is not None),
           "remove_unused_columns": False},  # the reward functions read the reference column
        num_generations=rl.num_generations,
        max_completion_length=rl.max_new_tokens,
        temperature=rl.temperature,
        beta=rl.kl_coef,
    )
    model = common.load_causal_lm(cfg, precision, run_dir=run_dir)
    trainer = trainer_class(model=model, reward_funcs=funcs, args=args, train_dataset=train, eval_dataset=evaluation,
                            processing_class=tokenizer, peft_config=common.lora_config(cfg), callbacks=callbacks)
    log.training = lambda: bool(trainer.model.training)  # the trainer scores eval answers too: those are not samples
    return trainer
