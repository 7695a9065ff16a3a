"""status.json as one typed record: a closed set of states, moves only along NEXT, writes under a lock,
and readers that derive a dead run without writing anything."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time

import pytest

from studio.train import runner
from studio.train.status import (
    ACTIVE,
    FINAL,
    NEXT,
    RunState,
    RunStatus,
    process_start,
    read_status,
    update_status,
)


def test_fields_merge_and_the_file_is_replaced_whole(tmp_path):
    assert read_status(tmp_path).state is None and read_status(tmp_path).shown_state == "unknown"
    update_status(tmp_path, state=RunState.RUNNING, step=1)
    update_status(tmp_path, step=5, total_steps=9)
    s = read_status(tmp_path)
    assert s.state is RunState.RUNNING and (s.step, s.total_steps) == (5, 9) and s.updated
    assert json.loads((tmp_path / "status.json").read_text())["state"] == "running"
    assert not list(tmp_path.glob("*.tmp*"))
    with pytest.raises(TypeError, match="no field 'stepp'"):
        update_status(tmp_path, stepp=3)
    with pytest.raises(ValueError):
        update_status(tmp_path, state="paused")  # the set of states is closed


def test_a_damaged_or_foreign_file_reads_as_defaults(tmp_path):
    (tmp_path / "status.json").write_text('{"state": "exploded", "step": "ten", "pid": true, "extra": 1}')
    s = read_status(tmp_path)
    assert s.state is None and s.step == 0 and s.pid is None
    (tmp_path / "status.json").write_text("[1, 2")
    assert read_status(tmp_path) == RunStatus(unreadable=f"{tmp_path / 'status.json'} cannot be read (it is not "
                                                         "JSON); the run's adapter, checkpoints and metrics are as "
                                                         "they were.")


def test_states_move_only_forward_and_a_final_state_only_to_a_resume(tmp_path):
    assert set(NEXT) == set(RunState) and ACTIVE | FINAL == set(RunState)
    update_status(tmp_path, state=RunState.QUEUED)
    update_status(tmp_path, state=RunState.RUNNING)
    update_status(tmp_path, state=RunState.STOPPING)
    # the worker's next progress report still says running: the stop request stands
    after = update_status(tmp_path, state=RunState.RUNNING, step=7)
    assert after.state is RunState.STOPPING and after.step == 7
    update_status(tmp_path, state=RunState.STOPPED)
    assert update_status(tmp_path, state=RunState.RUNNING).state is RunState.STOPPED
    assert update_status(tmp_path, state=RunState.QUEUED).state is RunState.QUEUED  # a resume


def test_compare_and_set_writes_only_from_the_expected_states(tmp_path):
    update_status(tmp_path, state=RunState.COMPLETED)
    s = update_status(tmp_path, expect={RunState.RUNNING}, state=RunState.STOPPING)
    assert s.state is RunState.COMPLETED
    update_status(tmp_path, state=RunState.QUEUED)
    update_status(tmp_path, state=RunState.RUNNING)
    # a dead run is still "running" on disk; a resume that looked at it may move it to queued
    assert update_status(tmp_path, expect={RunState.RUNNING}, state=RunState.QUEUED).state is RunState.QUEUED


def _report_progress(run_dir: str, steps: int) -> None:
    for step in range(1, steps + 1):
        update_status(run_dir, state=RunState.RUNNING, step=step)


def test_no_update_is_lost_between_a_stop_request_and_the_workers_reports(tmp_path):
    update_status(tmp_path, state=RunState.RUNNING, step=0)
    ctx = multiprocessing.get_context("spawn")
    worker = ctx.Process(target=_report_progress, args=(str(tmp_path), 400))
    worker.start()
    while read_status(tmp_path).step < 50 and worker.is_alive():
        time.sleep(0.005)
    update_status(tmp_path, expect={RunState.RUNNING}, state=RunState.STOPPING, error="asked")
    worker.join(60)
    s = read_status(tmp_path)
    assert worker.exitcode == 0
    assert s.state is RunState.STOPPING and s.error == "asked" and s.step == 400


def test_a_run_whose_process_is_gone_reads_as_dead_and_nothing_is_written(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    update_status(tmp_path, state=RunState.RUNNING, pid=gone.pid, pid_start="1", step=3)
    before = (tmp_path / "status.json").read_bytes()
    seen = runner.observe(tmp_path, grace=0)
    assert seen.dead and seen.shown_state == "dead" and "ended without saying why" in seen.shown_error
    assert not seen.active
    assert (tmp_path / "status.json").read_bytes() == before  # readers never write


def test_a_reused_pid_is_not_taken_for_the_worker(tmp_path):
    me = os.getpid()
    assert runner.is_process(me, process_start(me))
    assert not runner.is_process(me, "1")  # same number, a process that started at another time
    update_status(tmp_path, state=RunState.RUNNING, pid=me, pid_start="1")
    assert runner.observe(tmp_path, grace=0).dead


def test_stop_refuses_a_finished_run_and_signals_nothing(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        update_status(tmp_path, state=RunState.COMPLETED, pid=sleeper.pid, pid_start=process_start(sleeper.pid))
        with pytest.raises(Exception, match="is not running"):
            runner.stop_run(tmp_path)
        time.sleep(0.2)
        assert sleeper.poll() is None  # a finished run's pid may belong to anyone by now
    finally:
        sleeper.kill()
        sleeper.wait()


def test_stop_signals_the_live_worker_and_marks_it_stopping(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        update_status(tmp_path, state=RunState.RUNNING, pid=sleeper.pid, pid_start=process_start(sleeper.pid))
        assert runner.stop_run(tmp_path).state is RunState.STOPPING
        assert sleeper.wait(10) != 0 and (tmp_path / "STOP").exists()
    finally:
        sleeper.kill()


def test_a_run_asked_to_stop_whose_process_is_gone_has_stopped(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    update_status(tmp_path, state=RunState.STOPPING, launcher_pid=gone.pid)
    seen = runner.observe(tmp_path, grace=0)
    assert seen.shown_state == "stopped" and seen.shown_error == "" and not seen.active
    assert read_status(tmp_path).state is RunState.STOPPING  # on disk, what was last written


def finished_run_folder(tmp_path):
    """(workspace, run folder) of an SFT run with a checkpoint and its final adapter, as training leaves them."""
    from studio.config import RunConfig, save_config
    from studio.workspace import Workspace

    ws = Workspace.open(tmp_path / "ws")
    run_dir = ws.runs / "20261127-120000-sft"
    (run_dir / "checkpoints" / "checkpoint-4").mkdir(parents=True)
    (run_dir / "adapter").mkdir()
    (run_dir / "adapter" / "adapter_config.json").write_text("{}")
    save_config(RunConfig().validate(), run_dir / "config.yaml")
    return ws, run_dir


def test_a_completed_run_is_not_resumed_and_keeps_its_result(tmp_path):
    from studio.errors import StudioError
    from studio.train.runs import finished_runs

    ws, run_dir = finished_run_folder(tmp_path)
    for state in (RunState.QUEUED, RunState.STARTING, RunState.RUNNING, RunState.COMPLETED):
        update_status(run_dir, state=state, stage="sft")
    with pytest.raises(StudioError, match="has completed: there is nothing to resume"):
        runner.resume_run(ws, run_dir)
    assert read_status(run_dir).state is RunState.COMPLETED and finished_runs(ws) == [run_dir.name]
    with pytest.raises(StudioError, match="is not running"):
        runner.stop_run(run_dir)
    assert read_status(run_dir).state is RunState.COMPLETED and finished_runs(ws) == [run_dir.name]


@pytest.mark.parametrize("damage", [b"", b'{"state": "runn', b"\xff\xfe garbage", b"[1, 2]"])
def test_a_damaged_status_file_is_named_and_hides_no_finished_run(tmp_path, damage):
    """status.json cut short by a crash (or holding anything else): the run is listed with a sentence naming the
    file, a finished run stays in the pickers, it is not resumed over its result, and the next write is whole."""
    from studio.errors import StudioError
    from studio.train.runs import finished_runs, list_runs

    ws, run_dir = finished_run_folder(tmp_path)
    (run_dir / "status.json").write_bytes(damage)
    row = list_runs(ws)[0]
    assert row["status"] == "unknown" and row["error"].startswith(f"{run_dir / 'status.json'} cannot be read (")
    assert finished_runs(ws) == finished_runs(ws, chat_models=True) == [run_dir.name]
    with pytest.raises(StudioError, match="has completed: there is nothing to resume"):
        runner.resume_run(ws, run_dir)
    update_status(run_dir, step=4)
    written = json.loads((run_dir / "status.json").read_text())
    assert written["step"] == 4 and "unreadable" not in written and "dead" not in written
    assert read_status(run_dir).unreadable == ""


def test_a_dead_run_says_what_it_left_and_what_to_do(tmp_path):
    from studio.train.runner import dead_note

    queued = RunStatus(state=RunState.QUEUED)
    assert dead_note(tmp_path, queued) == ("Its process ended before it began training (the machine restarted, or it "
                                           "was killed). It saved no checkpoint to resume from: start it again "
                                           "(Clone into the form, or the same command).")
    (tmp_path / "stdout.log").write_text("step 3\n")
    (tmp_path / "checkpoints" / "checkpoint-3").mkdir(parents=True)
    running = RunStatus(state=RunState.RUNNING, started=1.0, step=3)
    assert dead_note(tmp_path, running) == ("The training process ended without saying why (killed, or out of "
                                            "memory); see stdout.log. Resume continues from the latest checkpoint.")


def test_a_stopped_run_is_not_resumed_while_its_process_ends_and_its_wait_does_not_queue_it_again(tmp_path):
    """A queued run is stopped at once while its process may still be waiting: the waiting loop must not write it
    back to queued, and a resume must wait for that process to end (two workers trained one folder)."""
    import fcntl

    from studio.errors import StudioError
    from studio.train.worker import wait_for_device

    ws, run_dir = finished_run_folder(tmp_path)
    for part in ("adapter/adapter_config.json",):
        (run_dir / part).unlink()
    update_status(run_dir, state=RunState.QUEUED, launcher_pid=os.getpid(), launcher_start=process_start(os.getpid()))
    update_status(run_dir, state=RunState.STOPPED, left_queue=time.time())  # as stop_run writes for a queued run
    lock = ws.root / "train.lock"
    with open(lock, "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert wait_for_device(lock, run_dir, should_stop=lambda: True) is None
    assert read_status(run_dir).state is RunState.STOPPED
    with pytest.raises(StudioError, match=f"its process \\({os.getpid()}\\) is still ending; resume it in a moment"):
        runner.prepare_resume(run_dir)
    update_status(run_dir, left_queue=None)  # stopped by its own worker, which has said its last word: at once
    assert runner.prepare_resume(run_dir).method.name and read_status(run_dir).state is RunState.QUEUED


def test_an_active_run_that_names_no_process_is_dead_after_a_minute(tmp_path):
    """A run left queued when its worker could not start names no process; it must not hold the queue forever."""
    update_status(tmp_path, state=RunState.QUEUED)
    assert not runner.observe(tmp_path, grace=0).dead  # its launcher may be recorded any moment
    status = json.loads((tmp_path / "status.json").read_text())
    status["updated"] = time.time() - 61
    (tmp_path / "status.json").write_text(json.dumps(status))
    seen = runner.observe(tmp_path, grace=0)
    assert seen.dead and seen.shown_state == "dead"


def test_an_attempt_stopped_before_it_began_adds_no_time_to_the_run(tmp_path):
    """Resumed, then stopped while queued: that attempt never trained, so its wait is not the run's time (a run of
    100 s read 2 hours after a stop in the queue)."""
    ws, run_dir = finished_run_folder(tmp_path)
    (run_dir / "adapter" / "adapter_config.json").unlink()
    (run_dir / "status.json").write_text(json.dumps({
        "state": "stopped", "started": 1000.0, "resumed": 5000.0, "finished": 9000.0, "earlier": 100.0}))
    runner.prepare_resume(run_dir)
    assert read_status(run_dir).earlier == 100.0
    (run_dir / "status.json").write_text(json.dumps({  # an attempt that began: its time counts
        "state": "stopped", "started": 6000.0, "resumed": 5000.0, "finished": 9000.0, "earlier": 100.0}))
    runner.prepare_resume(run_dir)
    assert read_status(run_dir).earlier == 3100.0
