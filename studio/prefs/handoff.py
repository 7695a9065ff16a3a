"""From votes to a run: save the votes (or the thumbs up/down) as a dataset and start a DPO, KTO or
reward-model run on it, starting from an SFT run.

    run_dir = train_on_votes(ws, "dpo", parent_run="20261127-101500-sft-lora", started_by="me")

The new run takes the parent run's model, method and LoRA settings. On the built-in tiny model it takes
the stage's tiny preset instead (its learning rate and length suit the demo). Elsewhere the learning rate
is capped at the stage's usual one (an SFT rate of 2e-4 would wreck a DPO run) and the run is one epoch. DPO and reward models
train on the votes (pairs); KTO trains on the votes and, where there are any, the rated answers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from studio.config import RunConfig, apply_overrides, load_config
from studio.config_form import config_with
from studio.data.store import save_dataset
from studio.errors import StudioError
from studio.paths import PRESETS
from studio.prefs.store import PreferenceStore
from studio.workspace import Workspace

STAGES_FROM_VOTES = ("dpo", "kto", "reward")
PREFERENCE_LR = {("dpo", "full"): 5e-7, ("dpo", "adapter"): 5e-6, ("kto", "full"): 5e-7, ("kto", "adapter"): 5e-6,
                 ("reward", "full"): 1e-5, ("reward", "adapter"): 1e-4}
"""The highest learning rate a run on votes gets: the published recipes' rates (TRL's DPO and KTO guidance,
the alignment handbook's Zephyr runs, TRL's reward-model example), for full fine-tuning and for adapters."""


def votes_dataset(ws: Workspace, stage: str, created_by: str = "") -> tuple[str, int]:
    """(dataset name, rows) saved from the store for `stage`: pairs for DPO and reward models; for KTO the
    pairs and the rated answers together, as rated answers (each pair gives one good and one bad)."""
    store = PreferenceStore(ws.prefs_db)
    pairs = store.export_rows()
    if stage == "kto":
        rows = [r for p in pairs for r in _unpaired(p)] + store.rating_rows()
        if not rows:
            raise StudioError("No decisive votes and no thumbs up or down yet: there is nothing to train on.")
        save_dataset(ws, "kto-data", rows, "unpaired", source="votes and ratings", created_by=created_by)
        return "kto-data", len(rows)
    if not pairs:
        raise StudioError("No decisive votes (A or B better) yet: there is nothing to train on.")
    save_dataset(ws, "votes", pairs, "preference", source="preference votes", created_by=created_by)
    return "votes", len(pairs)


def _unpaired(pair: dict[str, Any]) -> list[dict[str, Any]]:
    prompt = pair["prompt"] if isinstance(pair["prompt"], list) else [{"role": "user", "content": pair["prompt"]}]

    def answer(value: Any) -> list[dict[str, str]]:
        return value if isinstance(value, list) else [{"role": "assistant", "content": value}]
    return [{"prompt": prompt, "completion": answer(pair["chosen"]), "label": True},
            {"prompt": prompt, "completion": answer(pair["rejected"]), "label": False}]


def votes_run_config(ws: Workspace, stage: str, parent_run: str, data: str, rows: int,
                     overrides: list[str] | None = None) -> RunConfig:
    """The config of a `stage` run on dataset `data` (`rows` long) that starts from `parent_run`; a tenth
    of the rows is kept for evaluation once there are 20 or more."""
    if stage not in STAGES_FROM_VOTES:
        raise StudioError(f"Votes train a {', '.join(STAGES_FROM_VOTES)} run (got {stage!r}).")
    parent = ws.run_dir(parent_run)
    base = load_config(parent / "config.yaml")
    preset = PRESETS / f"tiny-{stage}.yaml"
    if base.model.name == "tiny" and preset.exists():
        raw: dict[str, Any] = load_config(preset).to_dict()
    else:
        raw = base.to_dict()
        raw["method"]["stage"] = stage
        for section in ("dpo", "kto", "rl"):
            raw.pop(section, None)
        kind = "full" if raw["method"]["name"] == "full" else "adapter"
        train = raw.setdefault("train", {})
        train["learning_rate"] = min(float(train.get("learning_rate") or 1.0), PREFERENCE_LR[stage, kind])
        if int(train.get("max_steps") or -1) <= 0:  # a run measured in epochs
            train["epochs"] = 1
    raw["name"] = f"{stage} on {data}"
    values = {"model.parent_run": parent.name, "data.train": data, "data.eval": None,
              "data.eval_fraction": 0.1 if rows >= 20 else 0.0, "data.split": "train", "data.subset": None,
              "data.eval_split": None, "data.format": None, "data.map": {},  # the parent data's shape is not the votes'
              "data.system": base.data.system}  # the votes' prompts were asked with the parent's system message
    cfg = config_with(raw, values)
    if overrides:
        cfg = RunConfig.from_dict(apply_overrides(cfg.to_dict(), overrides))
    return cfg.validate()


def train_on_votes(ws: Workspace, stage: str, parent_run: str, started_by: str = "",
                   overrides: list[str] | None = None, check: Callable[[RunConfig], None] | None = None) -> Path:
    """Save the votes as a dataset and start the run; returns its folder at once. `check` (the web app's) may
    refuse the run config first: it inherits the parent run's model settings."""
    from studio.train import runner

    data, rows = votes_dataset(ws, stage, created_by=started_by)
    cfg = votes_run_config(ws, stage, parent_run, data, rows, overrides)
    if check is not None:
        check(cfg)
    return runner.start_run(ws, cfg, started_by=started_by)
