"""Every preset in presets/ loads, validates and round-trips."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.config import dump_config, load_config
from studio.paths import PRESETS, resolve_project_path
from studio.stages import available_stages, stage

PRESET_FILES = sorted(PRESETS.glob("*.yaml"))


def test_presets_cover_the_newcomer_recipes_and_only_stages_that_train():
    names = {p.name for p in PRESET_FILES}
    assert {"llama2-7b-full-sft.yaml", "llama2-7b-lora-sft.yaml", "mistral-7b-qlora-sft.yaml",
            "tiny-sft-lora.yaml"} <= names
    for path in PRESET_FILES:  # the Train tab offers every preset: each must be able to start
        assert stage(load_config(path).method.stage).available, f"{path.name} names a stage that cannot train"


@pytest.mark.parametrize("path", PRESET_FILES, ids=lambda p: p.name)
def test_preset_loads_and_validates(path: Path, tmp_path):
    cfg = load_config(path)
    copy = tmp_path / path.name
    copy.write_text(dump_config(cfg), encoding="utf-8")
    assert load_config(copy) == cfg
    assert resolve_project_path(cfg.data.train).exists(), f"{path.name} names missing data {cfg.data.train}"


def _preset(name: str):
    return load_config(PRESETS / name)


def test_newcomer_presets_hold_the_published_recipes():
    full = _preset("llama2-7b-full-sft.yaml")
    assert (full.model.name, full.method.name, full.train.learning_rate, full.train.epochs,
            full.train.batch_size) == ("meta-llama/Llama-2-7b-hf", "full", 2e-5, 3, 4)
    lora = _preset("llama2-7b-lora-sft.yaml")
    assert (lora.lora.r, lora.lora.alpha, lora.lora.targets, lora.lora.dropout) == (
        8, 32, ["q_proj", "v_proj"], 0.05)
    q = _preset("mistral-7b-qlora-sft.yaml")
    assert (q.method.name, q.quant.bits, q.quant.quant_type, q.quant.compute_dtype) == (
        "qlora", 4, "nf4", "bfloat16")
    assert (q.lora.r, q.lora.alpha, q.lora.targets) == (16, 32, ["q_proj", "k_proj", "v_proj", "o_proj"])
    t = q.train
    assert (t.learning_rate, t.batch_size, t.grad_accum, t.epochs, t.warmup_ratio) == (2e-4, 4, 4, 3, 0.03)
    assert q.data.max_length == 512


def test_tiny_presets_cover_every_stage():
    tiny = [load_config(p) for p in PRESET_FILES if p.name.startswith("tiny-")]
    assert all(c.model.name == "tiny" for c in tiny)
    assert {c.method.stage for c in tiny} == {s.name for s in available_stages()}
    assert {c.method.name for c in tiny if c.method.stage == "sft"} == {"full", "lora", "qlora"}
    assert all(c.train.precision in ("fp32", "auto") for c in tiny)
