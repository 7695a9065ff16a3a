"""Pair generation in the background: a child process answers the prompts and writes its progress to a
file, so closing the page, reloading it or restarting the app loses nothing.

    job = start_generation(ws, prompts, "20261127-run", "tiny", temperature=0.8, created_by="ann")
    read_job(job)            # JobStatus: state, fraction, text, pairs, same_answers, error
    latest_job(ws)           # the newest job folder, or None
    stop_job(job)            # ends it; nothing of it is stored

A job folder (jobs/<time>-pairs/) holds prompts.jsonl (what to answer), status.json and output.log. The
child is `python -m studio prefs generate --job-dir DIR ...`, started from an argument list in its own
process session, like a training run. One job runs at a time per workspace: two would share one GPU.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from studio.errors import StudioError
from studio.train.runner import is_process, spawn
from studio.train.status import process_start
from studio.workspace import Workspace

STATUS = "status.json"
RUNNING, DONE, FAILED, STOPPED = "running", "done", "failed", "stopped"


@dataclasses.dataclass
class JobStatus:
    state: str = RUNNING
    fraction: float = 0.0
    text: str = "starting"
    pairs: int | None = None
    same_answers: int | None = None
    error: str = ""
    pid: int | None = None
    pid_start: str | None = None
    started: float = 0.0
    updated: float = 0.0
    source_a: str = ""
    source_b: str = ""
    prompts: int = 0

    @property
    def active(self) -> bool:
        return self.state == RUNNING

    def line(self) -> str:
        """One sentence for the page."""
        pair = f"{self.source_a} vs {self.source_b}, {self.prompts} prompt{'' if self.prompts == 1 else 's'}"
        if self.state == RUNNING:
            return f"⏳ Making pairs ({pair}): {self.fraction:.0%}, {self.text}."
        if self.state == DONE:
            same = f" ({self.same_answers} left out: both answers the same)" if self.same_answers else ""
            return f"Stored {self.pairs} pairs ({pair}){same}: vote on them above (sources stay hidden until the vote)."
        if self.state == STOPPED:
            return f"Stopped making pairs ({pair}); nothing of it was stored."
        return f"⚠️ Making pairs ({pair}) failed: {self.error}"


def jobs_dir(ws: Workspace) -> Path:
    return ws.root / "jobs"


def write_status(job: Path, **fields: Any) -> JobStatus:
    """Merge `fields` into the job's status under its lock; a finished job's state is never changed again
    (a stop that lands while the child reports progress stays a stop)."""
    with open(job / "status.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        status = _read(job) if (job / STATUS).exists() else JobStatus()
        if status.state != RUNNING:
            fields.pop("state", None)
        for key, value in fields.items():
            setattr(status, key, value)
        status.updated = time.time()
        tmp = job / f"{STATUS}.tmp{os.getpid()}"
        tmp.write_text(json.dumps(dataclasses.asdict(status)), encoding="utf-8")
        os.replace(tmp, job / STATUS)
    return status


def _read(job: Path) -> JobStatus:
    try:
        raw = json.loads((job / STATUS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return JobStatus(state=FAILED, error="its status file is missing or unreadable.")
    names = {f.name for f in dataclasses.fields(JobStatus)}
    return JobStatus(**{k: v for k, v in raw.items() if k in names}) if isinstance(raw, dict) else JobStatus()


def read_job(job: Path, grace: float = 5.0) -> JobStatus:
    """The job's status; a running job whose process is gone reads as failed (nothing was stored)."""
    status = _read(job)
    if status.active and status.pid and not is_process(status.pid, status.pid_start):
        if time.time() - status.updated > grace:  # it may be writing its last state right now
            status = _read(job)
            if status.active:
                status.state, status.error = FAILED, _last_line(job) or "the process ended without a result."
    return status


def _last_line(job: Path) -> str:
    try:
        lines = [ln.strip() for ln in (job / "output.log").read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1].removeprefix("error: ")[:300] if lines else ""


def latest_job(ws: Workspace) -> Path | None:
    folder = jobs_dir(ws)
    found = sorted(p for p in folder.iterdir() if (p / STATUS).exists()) if folder.is_dir() else []
    return found[-1] if found else None


def start_generation(ws: Workspace, prompts: list[list[dict[str, str]]], source_a: str, source_b: str,
                     temperature: float = 0.0, max_new_tokens: int = 128, needed: int | None = None,
                     created_by: str = "", seed: int = 0) -> Path:
    """Write the prompts to a new job folder and start the child that answers them; returns the folder."""
    if source_a == source_b and temperature <= 0:
        raise StudioError("One source answering twice gives the same answer when it answers greedily: set a "
                          "temperature above 0, or pick two different sources.")
    if not prompts:
        raise StudioError("There are no prompts to answer.")
    running = latest_job(ws)
    if running is not None and read_job(running).active:
        raise StudioError("Pairs are being made already: wait for them, or stop that job first.")
    job = _new_job_dir(ws)
    with open(job / "prompts.jsonl", "w", encoding="utf-8") as fh:
        for turns in prompts:
            fh.write(json.dumps({"messages": turns}, ensure_ascii=False) + "\n")
    write_status(job, started=time.time(), source_a=source_a, source_b=source_b, prompts=len(prompts))
    cmd = [sys.executable, "-m", "studio", "prefs", "generate", "--prompts", str(job / "prompts.jsonl"),
           "--a", source_a, "--b", source_b, "--temperature", str(temperature),
           "--max-new-tokens", str(max_new_tokens), "--seed", str(seed), "--workspace", str(ws.root),
           "--job-dir", str(job), "--created-by", created_by]
    if needed:
        cmd += ["--annotators", str(needed)]
    pid = spawn(cmd, job / "output.log")
    write_status(job, pid=pid, pid_start=process_start(pid))
    return job


def _new_job_dir(ws: Workspace) -> Path:
    jobs_dir(ws).mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1000):
        job = jobs_dir(ws) / (f"{stamp}-pairs" if n == 0 else f"{stamp}-pairs-{n}")
        try:
            job.mkdir()
            return job
        except FileExistsError:
            continue
    raise StudioError(f"Cannot make a job folder in {jobs_dir(ws)}.")


def stop_job(job: Path) -> JobStatus:
    """End a running job (its whole process group); a finished one is left as it is."""
    status = read_job(job)
    if not status.active:
        return status
    status = write_status(job, state=STOPPED)
    if status.pid and is_process(status.pid, status.pid_start):
        try:
            os.killpg(status.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
    return status


def reporter(job: Path) -> Any:
    """The progress callback the child hands to generate_pairs: written at most twice a second."""
    last = [0.0]

    def say(fraction: float, text: str) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.5 or fraction >= 0.98:
            last[0] = now
            write_status(job, fraction=round(float(fraction), 3), text=text)
    return say
