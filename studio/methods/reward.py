"""Reward modelling with TRL's RewardTrainer: a sequence-classification head that scores answers.

    studio train presets/tiny-reward.yaml

Trained on (prompt, chosen, rejected) pairs so that chosen answers score higher; the result scores
generations in the RLHF stage. With LoRA the new score head trains in full alongside the adapters.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from studio.config import RunConfig
from studio.methods import common
from studio.models.loading import load_tokenizer
from studio.stages import stage

STAGE = stage("reward")


def build_trainer(cfg: RunConfig, run_dir: Path, callbacks: list[Any]) -> Any:
    from transformers import AutoModelForSequenceClassification
    from trl import RewardConfig, RewardTrainer

    precision = common.resolve_precision(cfg.train.precision)
    tokenizer = load_tokenizer(cfg.model.name, cfg.model.revision, cfg.model.trust_remote_code)
    train, evaluation = common.train_and_eval(cfg, STAGE.data_kinds, run_dir)
    args = RewardConfig(
        **common.training_arguments(cfg, run_dir, precision, has_eval=evaluation is not None),
        max_length=cfg.data.max_length,
    )
    model = common.load_causal_lm(cfg, precision, model_class=AutoModelForSequenceClassification,
                                  run_dir=run_dir, num_labels=1)
    model.config.pad_token_id = tokenizer.pad_token_id
    return RewardTrainer(**common.trainer_inputs(cfg, model, args, (train, evaluation), tokenizer, callbacks,
                                                 task_type=STAGE.peft_task))
