"""Pair generation as a background job: a real child process answers with the tiny model, and its folder
is the only thing the app reads."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from studio.errors import StudioError
from studio.prefs import jobs
from studio.prefs.generate import typed_prompts
from studio.prefs.jobs import latest_job, read_job, start_generation, stop_job, write_status
from studio.prefs.store import PreferenceStore
from studio.workspace import Workspace

CONVERSATION = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Where is order 7?"},
                {"role": "assistant", "content": "Which shop?"}, {"role": "user", "content": "Pebble & Pine."}]


def wait_for(job, states, timeout=180.0):
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        status = read_job(job)
        seen.append(status.fraction)
        if status.state in states:
            return status, seen
        time.sleep(0.2)
    raise AssertionError(f"job still {read_job(job)} after {timeout} s:\n{(job / 'output.log').read_text()}")


def test_a_job_answers_in_a_child_process_and_stores_the_pairs(tmp_path):
    ws = Workspace.open(tmp_path / "ws")
    prompts = [CONVERSATION, *typed_prompts("Do you sell gift cards?\nCan I pay by invoice?")]
    with pytest.raises(StudioError, match="temperature above 0"):
        start_generation(ws, prompts, "tiny", "tiny")
    job = start_generation(ws, prompts, "tiny", "tiny", temperature=1.5, max_new_tokens=16, needed=2,
                           created_by="adm")
    assert latest_job(ws) == job and read_job(job).active
    with pytest.raises(StudioError, match="being made already"):
        start_generation(ws, prompts, "tiny", "tiny", temperature=1.0)
    status, fractions = wait_for(job, {jobs.DONE, jobs.FAILED})
    assert status.state == jobs.DONE, status.error
    assert status.pairs + status.same_answers == 3 and status.pairs >= 1
    assert fractions == sorted(fractions) and status.fraction == 1.0
    store = PreferenceStore(ws.prefs_db)
    stored = [store.pair(i) for i in range(1, status.pairs + 1)]
    assert all(p["needed"] == 2 and p["created_by"] == "adm" and p["model_a"] == "tiny" for p in stored)
    turns = [json.loads(p["prompt_turns"]) for p in stored if p["prompt_turns"]]
    assert all(t == CONVERSATION for t in turns)  # a multi-turn prompt is kept whole
    assert "Stored" in status.line() and "tiny vs tiny, 3 prompts" in status.line()


def test_a_stopped_job_stores_nothing_and_stays_stopped(tmp_path):
    ws = Workspace.open(tmp_path / "ws")
    job = start_generation(ws, typed_prompts("\n".join(f"Question {i}?" for i in range(200))), "tiny", "tiny",
                           temperature=1.0, max_new_tokens=64)
    status = stop_job(job)
    assert status.state == jobs.STOPPED
    pid = status.pid
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and os.path.exists(f"/proc/{pid}") and \
            open(f"/proc/{pid}/stat").read().rsplit(")", 1)[-1].split()[0] != "Z":
        time.sleep(0.1)
    write_status(job, state=jobs.DONE, pairs=5)  # a late report from the child cannot undo the stop
    assert read_job(job).state == jobs.STOPPED and "nothing of it was stored" in read_job(job).line()
    assert PreferenceStore(ws.prefs_db).counts()["pairs"] == 0
    # and another job may start now
    assert start_generation(ws, typed_prompts("Hi"), "tiny", "tiny", temperature=1.0, max_new_tokens=4) != job


def test_a_job_whose_process_died_reads_as_failed_with_its_last_words(tmp_path):
    job = tmp_path / "jobs" / "20261127-000000-pairs"
    job.mkdir(parents=True)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    write_status(job, pid=child.pid, source_a="tiny", source_b="run-x", prompts=4)
    (job / "output.log").write_text("loading...\nerror: run-x: no such run in this workspace.\n")
    assert read_job(job).state == jobs.RUNNING
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    status = read_job(job, grace=0)
    assert status.state == jobs.FAILED and status.error == "run-x: no such run in this workspace."
    assert status.line() == "⚠️ Making pairs (tiny vs run-x, 4 prompts) failed: run-x: no such run in this workspace."


def test_a_source_that_cannot_load_fails_the_job_in_one_sentence(tmp_path):
    ws = Workspace.open(tmp_path / "ws")
    job = start_generation(ws, typed_prompts("Hi"), "tiny", "no-such-run-here", max_new_tokens=4)
    status, _ = wait_for(job, {jobs.DONE, jobs.FAILED})
    assert status.state == jobs.FAILED and "no-such-run-here" in status.error and "Traceback" not in status.error
    assert "\n" not in status.error
