"""A full disk in the middle of a run: marked failed with the reason; finished checkpoints and
other runs stay intact, and the run resumes once there is room again."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from studio.config import load_config
from studio.errors import StudioError
from studio.paths import PRESETS
from studio.train.runs import list_runs
from studio.train.worker import latest_checkpoint, run_training
from studio.workspace import Workspace

pytestmark = pytest.mark.slow


@pytest.fixture
def small_disk():
    """A 10 MiB tmpfs: room for two LoRA checkpoints of the tiny model, not three."""
    mount = Path(f"/tmp/studio-small-{uuid.uuid4().hex[:8]}")
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=10M", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        mount.rmdir()
        pytest.skip("mounting a small tmpfs needs root")
    yield mount
    subprocess.run(["umount", str(mount)], capture_output=True)
    mount.rmdir()


def test_full_disk_fails_cleanly_and_keeps_earlier_work(small_disk, tmp_path):
    ws = Workspace.open(small_disk / "ws")
    other = ws.new_run_dir("other")  # an earlier run in the same workspace
    (other / "config.yaml").write_text("model: {name: tiny}\n")
    (other / "notes.txt").write_text("keep me")

    cfg = load_config(PRESETS / "tiny-sft-lora.yaml", ["train.max_steps=8", "train.save_steps=1",
                                                      "train.logging_steps=1", "train.save_total_limit=5"])
    run_dir = ws.new_run_dir("full")
    with pytest.raises(StudioError, match="The disk is full"):
        run_training(cfg, run_dir)
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "failed" and status["error"].startswith("The disk is full")
    finished = latest_checkpoint(run_dir)
    assert finished is not None
    assert all((c / "trainer_state.json").exists() for c in (run_dir / "checkpoints").glob("checkpoint-*"))
    assert (other / "notes.txt").read_text() == "keep me"
    assert {r["run"]: r["status"] for r in list_runs(ws)}[run_dir.name] == "failed"

    # make room (move the run to a roomy disk), resume: the step count continues from the checkpoint
    roomy = Workspace.open(tmp_path / "ws")
    moved = roomy.runs / run_dir.name
    shutil.copytree(run_dir, moved)
    resumed_from = int(latest_checkpoint(moved).name.split("-")[1])
    run_training(load_config(moved / "config.yaml"), moved, resume=True)
    assert json.loads((moved / "status.json").read_text())["state"] == "completed"
    steps = [json.loads(x)["step"] for x in (moved / "metrics.jsonl").read_text().splitlines() if '"loss"' in x]
    assert steps[-1] == 8 and resumed_from < 8
    assert steps == sorted(set(steps))  # the steps after the checkpoint are logged once, not twice
