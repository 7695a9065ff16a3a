"""Shared fixtures. Tests never touch the network: the hub is pointed at a closed local port."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from helpers import HOUSE_STEPS  # noqa: E402

# A closed port on this machine stands in for "no network": hub calls fail at once, everywhere.
os.environ.setdefault("HF_ENDPOINT", "http://127.0.0.1:9")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    return ws


@pytest.fixture(scope="session")
def house_sft_run(tmp_path_factory) -> Path:
    """One real 80-step LoRA run of the tiny preset, trained once for every test that starts from it;
    tests copy the folder into a workspace of their own (copy_run) rather than change it."""
    from studio.config import load_config
    from studio.paths import PRESETS
    from studio.train.worker import run_training
    from studio.workspace import Workspace

    ws = Workspace.open(tmp_path_factory.mktemp("house-sft") / "ws")
    run_dir = ws.new_run_dir("tiny-sft-lora")
    run_training(load_config(PRESETS / "tiny-sft-lora.yaml", [f"train.max_steps={HOUSE_STEPS}",
                                                              "train.save_steps=1000"]), run_dir)
    return run_dir
