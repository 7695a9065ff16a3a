"""Runs as child processes: stream, stop with a checkpoint, resume, queue, and die loudly."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
from helpers import wait_for

from studio.config import load_config
from studio.paths import PRESETS
from studio.train import runner
from studio.train.runs import list_runs
from studio.train.status import FINAL, RunState, read_status
from studio.workspace import Workspace

pytestmark = pytest.mark.slow


def cfg(*overrides):
    return load_config(PRESETS / "tiny-sft-lora.yaml", ["train.logging_steps=1", *overrides])


def steps_logged(run_dir):
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(x)["step"] for x in path.read_text().splitlines() if '"loss"' in x]


def test_stop_saves_a_checkpoint_and_resume_continues(tmp_path):
    ws = Workspace.open(tmp_path)
    run_dir = runner.start_run(ws, cfg("train.max_steps=400", "train.save_steps=1000"))
    wait_for(lambda: len(steps_logged(run_dir)) >= 3)
    runner.stop_run(run_dir)
    wait_for(lambda: runner.observe(run_dir).shown_state == "stopped", limit=120)
    ckpt = sorted((run_dir / "checkpoints").glob("checkpoint-*"))
    assert ckpt, "stopping must save a checkpoint"
    stopped_at = int(ckpt[-1].name.split("-")[1])
    with open(run_dir / "config.yaml") as fh:
        text = fh.read()
    (run_dir / "config.yaml").write_text(text.replace("max_steps: 400", f"max_steps: {stopped_at + 3}"))
    runner.resume_run(ws, run_dir)
    wait_for(lambda: runner.observe(run_dir).state in FINAL, limit=300)
    assert read_status(run_dir).state is RunState.COMPLETED, (run_dir / "stdout.log").read_text()[-2000:]
    steps = steps_logged(run_dir)
    assert max(steps) == stopped_at + 3
    assert steps[-1] > stopped_at  # step numbers continue rather than restart
    assert (run_dir / "adapter" / "adapter_config.json").exists()
    assert "CPU threads (OpenMP spin default)" in (run_dir / "stdout.log").read_text()  # a lone run: torch's own


def test_second_run_waits_in_the_queue_and_a_killed_run_reads_as_dead(tmp_path):
    ws = Workspace.open(tmp_path)
    first = runner.start_run(ws, cfg("train.max_steps=2000"))
    wait_for(lambda: read_status(first).state is RunState.RUNNING)
    second = runner.start_run(ws, cfg("train.max_steps=2"))
    wait_for(lambda: read_status(second).state is RunState.QUEUED and read_status(second).pid)
    assert read_status(second).waiting_for == first.name
    os.kill(read_status(first).pid, signal.SIGKILL)
    status = wait_for(lambda: (s := runner.observe(first, grace=0)).dead and s, limit=60)
    assert "ended without saying why" in status.shown_error and "see stdout.log" in status.shown_error
    assert read_status(first).state is RunState.RUNNING  # what the worker last wrote; nobody else writes
    wait_for(lambda: runner.observe(second).state is RunState.COMPLETED, limit=300)
    table = {r["run"]: r for r in list_runs(ws)}
    assert table[first.name]["status"] == "dead" and table[second.name]["status"] == "completed"
    assert "ended without saying why" in table[first.name]["error"]


def test_stopping_a_queued_run_removes_it_from_the_queue(tmp_path):
    ws = Workspace.open(tmp_path)
    first = runner.start_run(ws, cfg("train.max_steps=2000"))
    wait_for(lambda: read_status(first).state is RunState.RUNNING)
    second = runner.start_run(ws, cfg("train.max_steps=2"))
    wait_for(lambda: read_status(second).state is RunState.QUEUED and read_status(second).pid)
    runner.stop_run(second)
    wait_for(lambda: runner.observe(second).shown_state == "stopped", limit=60)
    assert not (second / "adapter").exists() and read_status(second).step == 0
    runner.stop_run(first)
    wait_for(lambda: runner.observe(first).shown_state == "stopped", limit=120)


def test_queued_runs_take_the_device_in_the_order_they_were_queued(tmp_path):
    """Two runs wait while the device is held; once it is free, the one queued first trains first (both poll the
    lock every second, so it used to be whichever asked first)."""
    import fcntl

    ws = Workspace.open(tmp_path)
    with open(ws.root / "train.lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        first = runner.start_run(ws, cfg("train.max_steps=2"))
        second = runner.start_run(ws, cfg("train.max_steps=2"))
        for run_dir in (first, second):
            wait_for(lambda r=run_dir: read_status(r).state is RunState.QUEUED and read_status(r).pid)
        time.sleep(1.5)  # both are in their waiting loop, asking once a second
    for run_dir in (first, second):
        wait_for(lambda r=run_dir: runner.observe(r).state in FINAL, limit=300)
    a, b = read_status(first), read_status(second)
    assert a.state is b.state is RunState.COMPLETED and a.started < b.started and a.finished <= b.started


def test_two_process_cpu_run_with_gloo(tmp_path):
    ws = Workspace.open(tmp_path)
    run_dir = runner.start_run(ws, cfg("train.max_steps=3", "train.num_processes=2", "train.batch_size=2"))
    state = wait_for(lambda: (s := runner.observe(run_dir).state) in FINAL and s, limit=400)
    log = (run_dir / "stdout.log").read_text()
    assert state is RunState.COMPLETED, log[-3000:]
    assert read_status(run_dir).world_size == 2
    assert "(OpenMP spin 1000)" in log and "spin default" not in log  # two processes must not spin against each other
    assert len(set(steps_logged(run_dir))) == len(steps_logged(run_dir))  # rank 0 alone writes metrics
    assert (run_dir / "adapter" / "adapter_config.json").exists()


def test_a_stop_right_after_start_is_never_lost(tmp_path):
    """Stopped while its process still loads, a queued run is stopped at once, in status.json too (the signal
    could end the process before it says a word), and its process leaves without training."""
    ws = Workspace.open(tmp_path)
    run_dir = runner.start_run(ws, cfg("train.max_steps=400"))
    launcher = read_status(run_dir).launcher_pid
    stopped = runner.stop_run(run_dir)  # before the worker has said anything
    assert stopped.state is RunState.STOPPED and stopped.finished and read_status(run_dir).state is RunState.STOPPED
    wait_for(lambda: not runner.pid_alive(launcher), limit=120)
    status = read_status(run_dir)
    assert status.state is RunState.STOPPED and status.step == 0 and not (run_dir / "adapter").exists()
    assert not (run_dir / "checkpoints").exists()
