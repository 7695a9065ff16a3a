"""status.json: the state of a run, as one typed record with a closed set of states.

    status = read_status(run_dir)                 # RunStatus; state None when there is no status yet
    update_status(run_dir, state=RunState.RUNNING, step=12)

Who writes what: the runner writes `queued` when it creates or resumes a run, `stopping` when a stop is
asked for (`stopped` at once for a run still queued, which has trained nothing), and `failed` when the
worker's process cannot be started; the worker writes everything else (starting, running, progress, the
final state), and while it waits in the queue only as long as the run is still queued.
Each write is a read-modify-write under a lock on the run's status.lock, and a state only moves
along `NEXT`: a worker's progress report after a stop request leaves the run `stopping`, and nothing
a late writer says can undo a final state except a resume. Readers never write; a run whose process
has gone without a final state is derived as dead by `studio.train.runner.observe`.

The file is replaced atomically (write a temporary file, then rename), so a reader never sees half
of it.
"""

from __future__ import annotations

import dataclasses
import enum
import fcntl
import json
import math
import os
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FILE = "status.json"
LOCK = "status.lock"


class RunState(str, enum.Enum):
    QUEUED = "queued"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    COMPLETED = "completed"
    STOPPED = "stopped"
    FAILED = "failed"


ACTIVE = frozenset({RunState.QUEUED, RunState.STARTING, RunState.RUNNING, RunState.STOPPING})
FINAL = frozenset({RunState.COMPLETED, RunState.STOPPED, RunState.FAILED})
_ENDS = {RunState.COMPLETED, RunState.STOPPED, RunState.FAILED}
NEXT: dict[RunState, frozenset[RunState]] = {
    RunState.QUEUED: frozenset({RunState.QUEUED, RunState.STARTING, RunState.STOPPING, *_ENDS}),
    RunState.STARTING: frozenset({RunState.STARTING, RunState.RUNNING, RunState.STOPPING, *_ENDS}),
    RunState.RUNNING: frozenset({RunState.RUNNING, RunState.STOPPING, *_ENDS}),
    RunState.STOPPING: frozenset({RunState.STOPPING, *_ENDS}),
    RunState.COMPLETED: frozenset({RunState.QUEUED}),
    RunState.STOPPED: frozenset({RunState.QUEUED}),
    RunState.FAILED: frozenset({RunState.QUEUED}),
}
"""The moves a state may make. A final state moves only to queued, which is what a resume writes."""

DEAD_ERROR = ("The training process ended without saying why (killed, or out of memory); see stdout.log. "
              "Resume continues from the latest checkpoint.")


@dataclass
class RunStatus:
    state: RunState | None = None
    """None while the run has no readable status.json."""
    run_id: str = ""
    stage: str = ""
    method: str = ""
    model: str = ""
    started_by: str = ""
    """The login that started the run ('' without logins, or from the command line)."""
    pid: int | None = None
    """The training process (rank 0)."""
    pid_start: str | None = None
    """When that process started, so a reused pid is not taken for the worker."""
    launcher_pid: int | None = None
    """The process the runner started (the worker itself, or `accelerate launch`)."""
    launcher_start: str | None = None
    step: int = 0
    total_steps: int = 0
    start_step: int = 0
    """The step the current attempt began at (non-zero after a resume)."""
    world_size: int = 1
    distributed: str = "NO"
    """How the processes share the model, as accelerate calls it: NO, MULTI_GPU (DDP), FSDP, DEEPSPEED."""
    created: float | None = None
    started: float | None = None
    loop_started: float | None = None
    resumed: float | None = None
    finished: float | None = None
    updated: float | None = None
    elapsed: float | None = None
    """Seconds from the training loop's start to the last logged step, in the current attempt."""
    earlier: float = 0.0
    """Seconds the run spent in attempts before its latest resume (so a resumed run's clock goes on)."""
    waiting_for: str | None = None
    """The run holding the device while this one is queued."""
    left_queue: float | None = None
    """When a Stop took the run out of the queue (its process may still be waiting, to end at its next look)."""
    error: str | None = None
    output: str | None = None
    system_rows: int | None = None
    """How many training conversations the run's data.system opened (None: it has none, or the data is not
    read yet); 0 means every conversation had a system message of its own, so the run was not trained with it."""
    data_note: str = ""
    """What reading did to the data (message trees joined, unanswered ends cut ...) and the rows left out
    as unusable, and why ('' when every row was used as it was)."""
    dead: bool = False
    """Derived by readers, never stored: the state is active but its processes are gone."""
    unreadable: str = ""
    """Derived by readers, never stored: why status.json could not be read ('' when it could, or is not there)."""
    dead_note: str = ""
    """Derived by readers, never stored: what a dead run left and what to do (DEAD_ERROR when not worked out)."""

    @property
    def attempt_started(self) -> float | None:
        """When the latest attempt began training; None while it has not (queued, or stopped in the queue after a
        resume: `started` is then the attempt's before, whose time `earlier` holds already)."""
        if self.started and self.started >= (self.resumed or 0.0):
            return self.started
        return None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE and not self.dead

    @property
    def shown_state(self) -> str:
        """What the UI and the CLI call the run's state. A run asked to stop whose process is gone has
        stopped, whether or not it got to say so (a worker stopped before it began, say)."""
        if self.dead:
            return "stopped" if self.state is RunState.STOPPING else "dead"
        return self.state.value if self.state else "unknown"

    @property
    def shown_error(self) -> str:
        if self.unreadable:
            return self.unreadable
        if self.dead and self.state is not RunState.STOPPING:
            return self.dead_note or DEAD_ERROR
        return self.error or ""

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in DERIVED}
        out["state"] = self.state.value if self.state else None
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RunStatus:
        """Known keys only; a value of the wrong type falls back to the field's default."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        out = cls()
        for key, value in raw.items():
            if key == "state":
                try:
                    out.state = RunState(value)
                except (ValueError, TypeError):
                    out.state = None
            elif key in known and key not in DERIVED and _fits(value, known[key].type):
                setattr(out, key, value)
        return out


def _fits(value: Any, type_text: str) -> bool:
    if value is None:
        return "None" in str(type_text)
    if isinstance(value, bool):
        return False
    if "int" in str(type_text):  # steps, pids: anything past 2**53 was not written by the studio
        return isinstance(value, int) and abs(value) < 2**53
    if "float" in str(type_text):  # times and seconds, finite and of a sane size (1e308 overflows a clock)
        return isinstance(value, (int, float)) and math.isfinite(value) and abs(value) < 1e12
    return isinstance(value, str)


DERIVED = {"dead", "unreadable", "dead_note"}
"""RunStatus fields that readers work out and status.json never holds."""


def read_status(run_dir: str | os.PathLike) -> RunStatus:
    """The run's status.json; an empty status when there is none, and one saying why when it cannot be read (a
    crash or a full disk can leave it cut short): the run's other files are as they were."""
    path = Path(run_dir) / FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return RunStatus()
    except (OSError, ValueError, RecursionError) as err:
        why = "it is not JSON" if isinstance(err, ValueError) else "it is nested too deeply" \
            if isinstance(err, RecursionError) else (getattr(err, "strerror", None) or str(err))
        return RunStatus(unreadable=f"{path} cannot be read ({why}); the run's adapter, checkpoints and metrics are "
                                    "as they were.")
    if not isinstance(raw, dict):
        return RunStatus(unreadable=f"{path} cannot be read (it holds a {type(raw).__name__}, not a status); the "
                                    "run's adapter, checkpoints and metrics are as they were.")
    return RunStatus.from_dict(raw)


def update_status(run_dir: str | os.PathLike, *, expect: Collection[RunState] | None = None,
                  **fields: Any) -> RunStatus:
    """Merge `fields` into the run's status under its lock, and return the status as written.

    A `state` in `fields` is applied only along NEXT; with `expect`, only when the current state is one
    of those (a compare-and-set for the runner, which looked at the run first). A state that may not be
    applied is left as it is; the other fields are still merged.
    """
    run_dir = Path(run_dir)
    with _locked(run_dir):
        status = read_status(run_dir)
        if "state" in fields:
            wanted = RunState(fields.pop("state"))
            current = status.state
            if expect is not None:
                allowed = current in expect
            else:
                allowed = current is None or wanted in NEXT[current]
            if allowed:
                status.state = wanted
        unknown = set(fields) - {f.name for f in dataclasses.fields(RunStatus)} | (DERIVED & set(fields))
        if unknown:
            raise TypeError(f"status.json has no field {sorted(unknown)[0]!r}")
        for key, value in fields.items():
            setattr(status, key, value)
        status.updated = time.time()
        _write(run_dir / FILE, status.to_dict())
    return status


def _write(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    try:
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)  # never leave half a file behind, e.g. on a full disk
        raise


class _locked:
    """An exclusive lock on the run's status.lock (released by the OS if the holder dies)."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / LOCK

    def __enter__(self) -> None:
        self.fh = open(self.path, "a")
        fcntl.flock(self.fh, fcntl.LOCK_EX)

    def __exit__(self, *exc: Any) -> None:
        self.fh.close()


def process_start(pid: int | None) -> str | None:
    """When process `pid` started (clock ticks since boot, from /proc), or None where that cannot be read.
    With the pid it names one process: a pid the system has handed to a new process starts later."""
    if not pid:
        return None
    try:
        with open(f"/proc/{int(pid)}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[19]
    except (OSError, IndexError, ValueError):
        return None
