"""Direct preference optimisation with TRL's DPOTrainer.

    studio train presets/tiny-dpo.yaml

Learns from (prompt, chosen, rejected) pairs without a reward model. With LoRA the reference model
is the base with the adapter switched off, so no second copy of the model is held in memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from studio.config import RunConfig
from studio.methods import common
from studio.models.loading import load_tokenizer
from studio.stages import stage

STAGE = stage("dpo")


def build_trainer(cfg: RunConfig, run_dir: Path, callbacks: list[Any]) -> Any:
    from trl import DPOConfig, DPOTrainer

    precision = common.resolve_precision(cfg.train.precision)
    tokenizer = load_tokenizer(cfg.model.name, cfg.model.revision, cfg.model.trust_remote_code)
    train, evaluation = common.train_and_eval(cfg, STAGE.data_kinds, run_dir)
    args = DPOConfig(
        **common.training_arguments(cfg, run_dir, precision, has_eval=evaluation is not None),
        max_length=cfg.data.max_length,
        beta=cfg.dpo.beta,
        loss_type=[cfg.dpo.loss_type, *(["sft"] if cfg.dpo.sft_weight > 0 else [])],
        loss_weights=[1.0, cfg.dpo.sft_weight] if cfg.dpo.sft_weight > 0 else None,
    )
    model = common.load_causal_lm(cfg, precision, run_dir=run_dir)
    return DPOTrainer(**common.trainer_inputs(cfg, model, args, (train, evaluation), tokenizer, callbacks))
