"""Start, stop and resume training runs as child processes, and read their true state.

    run_dir = start_run(ws, cfg)          # python -m studio train <run>/config.yaml --run-dir <run>
    stop_run(run_dir)                     # the worker saves a checkpoint and exits
    resume_run(ws, run_dir)               # continues from the latest checkpoint
    state = refresh_status(run_dir)       # notices a worker that died without saying so

Children are started with an argument list (never a shell) in their own process session, so a
restart of the app leaves them running; their output goes to the run's stdout.log. Workers take a
lock per device before loading anything, so a second run waits in a visible queue.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from studio.config import RunConfig, save_config
from studio.errors import StudioError
from studio.train.status import FINAL_STATES, read_status, write_status
from studio.train.worker import STOP_FILE
from studio.workspace import Workspace, run_result

ACTIVE_STATES = ("queued", "starting", "running", "stopping")


def worker_command(config_path: Path, run_dir: Path, ws: Workspace, resume: bool = False,
                   num_processes: int = 1, accelerate_config: str | None = None) -> list[str]:
    """The argument list that runs the worker; through `accelerate launch` for several processes."""
    tail = ["-m", "studio", "train", str(config_path), "--run-dir", str(run_dir), "--workspace", str(ws.root),
            "--quiet"] + (["--resume"] if resume else [])
    if num_processes <= 1:
        return [sys.executable, *tail]
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(num_processes)]
    if accelerate_config:  # DeepSpeed ZeRO, FSDP or several machines, as that file says
        launch += ["--config_file", accelerate_config]
    else:  # torchrun-style DDP: NCCL across GPUs, gloo across CPU processes
        launch += ["--multi_gpu", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    return [*launch, *tail]


def _spawn(cmd: list[str], run_dir: Path) -> int:
    env = dict(os.environ, PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false")
    with open(run_dir / "stdout.log", "ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=os.getcwd(), env=env, start_new_session=True)
    return proc.pid


def resolve_inputs(cfg: RunConfig, ws: Workspace) -> RunConfig:
    """Turn workspace names into paths, so the run's config.yaml says exactly what it used."""
    from studio.data.load import resolve_source

    cfg.data.train = resolve_source(cfg.data.train, ws)
    cfg.data.eval = resolve_source(cfg.data.eval, ws) if cfg.data.eval else None
    if cfg.model.parent_run:
        cfg.model.parent_run = str(ws.run_dir(cfg.model.parent_run))
    return cfg


def preflight(cfg: RunConfig) -> None:
    """Checks that need no training, done before a run folder exists: a typo costs no failed run."""
    from studio.methods import stage_module
    from studio.models.loading import resolve_model

    stage_module(cfg.method.stage)
    if cfg.model.parent_run and run_result(Path(cfg.model.parent_run)) is None:
        raise StudioError(f"The parent run {Path(cfg.model.parent_run).name} has no finished adapter or model "
                          "to start from.")
    resolve_model(cfg.model.name, cfg.model.revision, weights=False)
    for label, source in (("training data", cfg.data.train), ("eval data", cfg.data.eval)):
        if not source:
            continue
        path = Path(source)
        if path.suffix and not path.exists():
            raise StudioError(f"The {label} file {source} does not exist.")


def start_run(ws: Workspace, cfg: RunConfig, label: str | None = None) -> Path:
    """Create the run folder, write its config and start the worker; returns at once."""
    resolve_inputs(cfg.validate(), ws)
    preflight(cfg)
    run_dir = ws.new_run_dir(label or cfg.name or f"{cfg.method.stage}-{cfg.method.name}")
    config_path = save_config(cfg, run_dir / "config.yaml")
    write_status(run_dir, state="queued", run_id=run_dir.name, stage=cfg.method.stage, method=cfg.method.name,
                 model=cfg.model.name, created=time.time())
    cmd = worker_command(config_path, run_dir, ws, num_processes=cfg.train.num_processes,
                         accelerate_config=cfg.train.accelerate_config)
    write_status(run_dir, launcher_pid=_spawn(cmd, run_dir))
    return run_dir


def resume_run(ws: Workspace, run_dir: Path) -> Path:
    state = refresh_status(run_dir)
    if state.get("state") in ACTIVE_STATES:
        raise StudioError(f"Run {run_dir.name} is still {state['state']}; stop it before resuming.")
    if not any((run_dir / "checkpoints").glob("checkpoint-*")):
        raise StudioError(f"Run {run_dir.name} has no checkpoint to resume from; start it again instead.")
    from studio.config import load_config

    cfg = load_config(run_dir / "config.yaml")
    (run_dir / STOP_FILE).unlink(missing_ok=True)  # the request that stopped it is spent
    write_status(run_dir, state="queued", error=None, resumed=time.time(), finished=None, waiting_for=None)
    cmd = worker_command(run_dir / "config.yaml", run_dir, ws, resume=True, num_processes=cfg.train.num_processes,
                         accelerate_config=cfg.train.accelerate_config)
    write_status(run_dir, launcher_pid=_spawn(cmd, run_dir))
    return run_dir


def stop_run(run_dir: Path) -> None:
    """Ask the worker to save a checkpoint and stop (a queued run just leaves the queue)."""
    (run_dir / STOP_FILE).touch()
    status = read_status(run_dir)
    for key in ("pid", "launcher_pid"):
        pid = status.get(key)
        if pid and pid_alive(pid):
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
    if status.get("state") in ("running", "starting", "queued"):
        write_status(run_dir, state="stopping")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(int(pid), 0)
    except (OSError, ValueError):
        return False
    try:  # a zombie (exited, not yet reaped) is not alive
        with open(f"/proc/{int(pid)}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def refresh_status(run_dir: Path, grace: float = 5.0) -> dict[str, Any]:
    """The run's status, marking it failed when its process is gone without a final state."""
    status = read_status(run_dir)
    if status.get("state") not in ACTIVE_STATES:
        return status
    pids = [p for p in (status.get("pid"), status.get("launcher_pid")) if p]
    if not pids or any(pid_alive(p) for p in pids):
        return status
    if time.time() - float(status.get("updated", 0)) < grace:
        return status  # the worker may be writing its final state right now
    status = read_status(run_dir)
    if status.get("state") in FINAL_STATES:
        return status
    if status.get("state") == "stopping":
        return write_status(run_dir, state="stopped", finished=time.time())
    return write_status(run_dir, state="failed", finished=time.time(),
                        error=status.get("error") or "The training process died unexpectedly (killed, or out of "
                        "memory); see stdout.log. Resume continues from the latest checkpoint.")
