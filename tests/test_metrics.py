"""metrics.jsonl is read incrementally and survives torn lines; progress and the runs table read it."""

from __future__ import annotations

import json

from studio.train.metrics import MetricsReader, MetricsWriter, read_all
from studio.train.status import RunState, RunStatus


def test_reader_returns_only_new_records(tmp_path):
    writer = MetricsWriter(tmp_path)
    reader = MetricsReader(tmp_path)
    assert reader.read_new() == []
    writer.write({"step": 1, "loss": 2.0})
    writer.write({"step": 2, "loss": float("nan")})
    got = reader.read_new()
    assert [r["step"] for r in got] == [1, 2] and got[1]["loss"] == "nan"
    assert reader.read_new() == []
    writer.write({"step": 3, "loss": 1.0})
    assert [r["step"] for r in reader.read_new()] == [3]
    writer.close()


def test_partial_line_waits_and_garbage_is_skipped(tmp_path):
    path = tmp_path / "metrics.jsonl"
    reader = MetricsReader(tmp_path)
    with open(path, "w") as fh:
        fh.write(json.dumps({"step": 1}) + "\n{\"step\": 2, \"lo")
    assert [r["step"] for r in reader.read_new()] == [1]
    with open(path, "a") as fh:
        fh.write("ss\": 1.5}\nnot json\n" + json.dumps({"step": 3}) + "\n")
    assert [r["step"] for r in reader.read_new()] == [2, 3]


def test_progress_after_a_resume_keeps_the_clock_and_paces_from_the_restart():
    from studio.train.runs import progress

    # resumed at step 50 after 300 s in earlier attempts; 10 steps logged 10 s into the loop, at t=110
    status = RunStatus(state=RunState.RUNNING, step=60, total_steps=100, start_step=50, started=100.0,
                       earlier=300.0, elapsed=10.0, updated=110.0)
    p = progress(status, now=110.0)
    assert p["elapsed"] == 310.0 and p["eta"] == 40.0  # 10 steps took 10 s; 40 remain
    # between two logs the ETA counts down with the clock instead of climbing
    assert progress(status, now=113.0)["eta"] == 37.0 and progress(status, now=200.0)["eta"] == 0.0
    assert progress(RunStatus(state=RunState.QUEUED))["eta"] is None
    status.dead = True
    assert progress(status, now=110.0)["eta"] is None and progress(status)["state"] == "dead"
    # a dead run's clock stopped at its last word: asking later does not add the time since
    assert progress(status, now=500.0)["elapsed"] == progress(status, now=900.0)["elapsed"] == 310.0
    # resumed, then stopped in the queue: that attempt never trained, its `started` is the attempt's before
    stopped = RunStatus(state=RunState.STOPPED, started=1000.0, resumed=2000.0, finished=2100.0, earlier=500.0)
    assert stopped.attempt_started is None and progress(stopped, now=3000.0)["elapsed"] == 500.0


def test_resuming_carries_the_time_already_spent(tmp_path):
    from studio.config import RunConfig, save_config
    from studio.train import runner
    from studio.train.status import read_status, update_status

    run_dir = tmp_path / "run"
    (run_dir / "checkpoints" / "checkpoint-2").mkdir(parents=True)
    save_config(RunConfig().validate(), run_dir / "config.yaml")
    for state in (RunState.QUEUED, RunState.STARTING, RunState.RUNNING, RunState.STOPPING, RunState.STOPPED):
        update_status(run_dir, state=state, started=1000.0, finished=1100.0, earlier=50.0)
    runner.prepare_resume(run_dir)
    assert read_status(run_dir).earlier == 150.0 and read_status(run_dir).state is RunState.QUEUED


def test_queued_caption_never_says_none():
    from studio.ui.tabs.train import progress_html

    assert "None" not in progress_html(RunStatus(state=RunState.QUEUED))
    assert "waiting for run-a to finish" in progress_html(RunStatus(state=RunState.QUEUED, waiting_for="run-a"))


def test_failure_text_is_escaped_in_the_progress_bar():
    from studio.ui.tabs.train import progress_html

    shown = progress_html(RunStatus(state=RunState.FAILED, error="<img src=x onerror=alert(1)>"))
    assert "<img" not in shown and "&lt;img" in shown


def test_last_loss_reads_the_end_of_a_long_file(tmp_path):
    from studio.train.runs import last_loss

    writer = MetricsWriter(tmp_path)
    for step in range(1, 3001):
        writer.write({"step": step, "loss": 1.0 / step, "learning_rate": 1e-4})
    writer.write({"step": 3000, "train_runtime": 12.0})
    writer.close()
    assert last_loss(tmp_path, tail=4096) == 1.0 / 3000
    only_start = tmp_path / "early"
    only_start.mkdir()
    w = MetricsWriter(only_start)
    w.write({"step": 1, "loss": 2.5})
    for step in range(2, 500):
        w.write({"step": step, "eval_loss": 1.0})
    w.close()
    assert last_loss(only_start, tail=512) == 2.5  # no loss near the end: the whole file is read
    assert last_loss(tmp_path / "missing") is None


def test_a_resume_drops_the_steps_after_its_checkpoint_and_readers_start_over(tmp_path):
    from studio.train.metrics import drop_after

    writer = MetricsWriter(tmp_path)
    for step in (5, 10, 15, 20):
        writer.write({"step": step, "loss": 1.0 / step})
    writer.close()
    reader = MetricsReader(tmp_path)
    assert [r["step"] for r in reader.read_new()] == [5, 10, 15, 20] and not reader.restarted
    assert drop_after(tmp_path, 12) == 2
    again = MetricsWriter(tmp_path)  # the resumed worker logs from the checkpoint on
    again.write({"step": 15, "loss": 0.5})
    again.close()
    assert [r["step"] for r in reader.read_new()] == [5, 10, 15] and reader.restarted
    assert [r["step"] for r in read_all(tmp_path)] == [5, 10, 15]
    assert drop_after(tmp_path, 100) == 0
