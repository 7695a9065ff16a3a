"""Kahneman-Tversky optimisation with TRL's KTOTrainer.

    studio train presets/tiny-kto.yaml

Learns from single answers marked good or bad (thumbs up / down in Chat, or a file with a true/false
label); preference pairs are accepted too and split into one good and one bad answer each. Like DPO
it holds a frozen reference: with LoRA that is the base with the adapter switched off.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from studio.config import RunConfig
from studio.errors import StudioError
from studio.methods import common
from studio.models.loading import load_tokenizer
from studio.stages import stage

STAGE = stage("kto")


def unpaired_in_mixed_order(ds: Any, seed: int) -> Any:
    """Pairs split into a good and a bad answer, and every row shuffled once. KTO walks the data in a fixed
    order (each answer's drift estimate uses its neighbour in the batch), so a file sorted by label, or
    pairs unpaired into all the good answers then all the bad, would give batches of one label only."""
    if "chosen" in ds.column_names:
        from trl.data_utils import unpair_preference_dataset

        ds = unpair_preference_dataset(ds)
    return ds.shuffle(seed=seed).flatten_indices()


def check_labels(ds: Any, name: str) -> None:
    """KTO needs both kinds of answer; with only good (or only bad) ones it has nothing to contrast."""
    if "label" not in ds.column_names:
        return
    good = sum(1 for v in ds["label"] if v)
    if good in (0, len(ds)):
        which = "good" if good else "bad"
        raise StudioError(f"The {name} data holds only answers marked {which}; KTO needs some of each "
                          "(thumbs up and thumbs down).")


def build_trainer(cfg: RunConfig, run_dir: Path, callbacks: list[Any]) -> Any:
    from trl import KTOConfig, KTOTrainer

    if cfg.train.batch_size < 2:
        raise StudioError("KTO compares each answer with another in its batch: set train.batch_size to 2 or more.")
    precision = common.resolve_precision(cfg.train.precision)
    tokenizer = load_tokenizer(cfg.model.name, cfg.model.revision, cfg.model.trust_remote_code)
    train, evaluation = common.train_and_eval(cfg, STAGE.data_kinds, run_dir)
    train = unpaired_in_mixed_order(train, cfg.train.seed)
    evaluation = unpaired_in_mixed_order(evaluation, cfg.train.seed) if evaluation is not None else None
    check_labels(train, "training")
    args = KTOConfig(
        **common.training_arguments(cfg, run_dir, precision, has_eval=evaluation is not None),
        max_length=cfg.data.max_length,
        beta=cfg.kto.beta,
        desirable_weight=cfg.kto.desirable_weight,
        undesirable_weight=cfg.kto.undesirable_weight,
    )
    model = common.load_causal_lm(cfg, precision, run_dir=run_dir)
    return KTOTrainer(**common.trainer_inputs(cfg, model, args, (train, evaluation), tokenizer, callbacks))
