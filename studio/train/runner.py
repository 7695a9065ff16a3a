"""Start, stop and resume training runs as child processes, and read their true state.

    run_dir = start_run(ws, cfg)          # python -m studio train <run>/config.yaml --run-dir <run>
    stop_run(run_dir)                     # the worker saves a checkpoint and exits
    resume_run(ws, run_dir)               # continues from the latest checkpoint
    status = observe(run_dir)             # RunStatus; .dead when the worker is gone without a final state

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

from studio import child_environment
from studio.access import looks_like_path
from studio.config import RunConfig, save_config
from studio.errors import StudioError
from studio.paths import PRESETS
from studio.stages import stage
from studio.train.status import ACTIVE, RunState, RunStatus, process_start, read_status, update_status
from studio.train.worker import STOP_FILE
from studio.workspace import Workspace, run_result


def worker_command(config_path: Path, run_dir: Path, ws: Workspace, resume: bool = False,
                   num_processes: int = 1, accelerate_config: str | None = None) -> list[str]:
    """The argument list that runs the worker; through `accelerate launch` for several processes."""
    tail = ["-m", "studio", "train", str(config_path), "--run-dir", str(run_dir), "--workspace", str(ws.root),
            "--quiet"] + (["--resume"] if resume else [])
    if num_processes <= 1:
        return [sys.executable, *tail]
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(num_processes)]
    if accelerate_config:  # a shipped strategy's file or the user's own (several machines, offloading)
        launch += ["--config_file", accelerate_config]
    else:  # torchrun-style DDP: NCCL across GPUs, gloo across CPU processes
        launch += ["--multi_gpu", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    return [*launch, *tail]


def launch_config(cfg: RunConfig) -> str | None:
    """The accelerate config file a run with several processes uses: the user's own, else the one shipped
    for its strategy (plain DDP needs none)."""
    if cfg.train.num_processes <= 1:
        return None
    if cfg.train.accelerate_config:
        return cfg.train.accelerate_config
    if cfg.train.strategy == "ddp":
        return None
    return str(PRESETS / "accelerate" / f"{cfg.train.strategy}.yaml")


def check_strategy(cfg: RunConfig, gpus: int) -> None:
    """What the chosen strategy needs, said before launch: DeepSpeed installed and GPUs for ZeRO."""
    from studio.train.speed import installed

    t = cfg.train
    if t.num_processes <= 1:
        return
    if t.accelerate_config:
        check_accelerate_config(Path(t.accelerate_config), gpus)
        return
    if t.strategy == "fsdp" and gpus < 1:
        raise StudioError("train.strategy fsdp shards across GPUs (accelerate runs CPU processes as plain data "
                          "parallel): on this machine choose ddp.")
    if t.strategy in ("zero2", "zero3"):
        if gpus < 1:
            raise StudioError(f"train.strategy {t.strategy} (DeepSpeed) needs NVIDIA GPUs: on this machine choose "
                              "ddp.")
        if not installed("deepspeed"):
            raise StudioError(f"train.strategy {t.strategy} runs on DeepSpeed, which is not installed: "
                              "pip install deepspeed, or choose fsdp.")


def check_accelerate_config(path: Path, gpus: int) -> None:
    """A user's own accelerate config that asks for GPUs on a machine without one would wait on its peers for
    15 minutes before failing: refuse it at once."""
    import yaml

    try:
        given = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        raise StudioError(f"train.accelerate_config: {path} cannot be read as an accelerate config file.") from None
    if not isinstance(given, dict):
        raise StudioError(f"train.accelerate_config: {path} is not an accelerate config file (its settings by name).")
    if gpus < 1 and not given.get("use_cpu"):
        raise StudioError(f"train.accelerate_config: {path.name} runs on GPUs (use_cpu is not true in it), and this "
                          "machine has none: start the run on the GPU machines, or set use_cpu: true.")


def spawn(cmd: list[str], log_path: Path) -> int:
    """Start `cmd` (an argument list) in its own process session, its output appended to `log_path`."""
    env = child_environment(PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false")
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=os.getcwd(), env=env, start_new_session=True)
    return proc.pid


def resolve_inputs(cfg: RunConfig, ws: Workspace) -> RunConfig:
    """Turn workspace names into paths, so the run's config.yaml says exactly what it used."""
    from studio.data.load import has_eval_split, resolve_source, saved_dataset

    train = saved_dataset(cfg.data.train, ws)
    if not cfg.data.eval and cfg.data.eval_split:
        if train is not None:
            refuse_eval_split(cfg, f"the training data is the saved dataset {train[0]}, whose held-out rows are its "
                                   "eval split", "leave data.eval_split empty (a run takes them by itself)")
        cfg.data.eval = cfg.data.train  # the training data's own split of that name ('test')
    if cfg.data.eval:
        named = saved_dataset(cfg.data.eval, ws)
        if named is not None and ":" not in cfg.data.eval:
            if has_eval_split(ws, named[0]):
                cfg.data.eval = f"{named[0]}:eval"  # a saved dataset as eval data means its held-out rows
            elif train is not None and train[0] == named[0]:
                raise StudioError(f"The saved dataset {named[0]} has no eval split, so it cannot be both the "
                                  "training and the eval data: save it again with an eval share, or pick other "
                                  "eval data.")
    elif train is not None and train[1] == "train" and has_eval_split(ws, train[0]):
        cfg.data.eval = f"{train[0]}:eval"  # the eval share it was saved with
    cfg.data.train = resolve_source(cfg.data.train, ws)
    cfg.data.eval = resolve_source(cfg.data.eval, ws) if cfg.data.eval else None
    if cfg.model.parent_run:
        cfg.model.parent_run = str(ws.run_dir(cfg.model.parent_run))
    if cfg.rl.reward_model and "rl" in cfg.sections() and "model" in cfg.rl.rewards:
        from studio.train.runs import latest_reward_model

        named = latest_reward_model(ws) if cfg.rl.reward_model == "latest" else cfg.rl.reward_model
        cfg.rl.reward_model = str(ws.run_dir(named))
    return cfg


def device_count() -> tuple[int, str]:
    """How many training processes this machine can hold: one per GPU, else one per CPU core."""
    from studio.models.memory import detect_gpu

    gpu = detect_gpu()
    if gpu is not None:
        return gpu.count, "GPU" if gpu.count == 1 else "GPUs"
    cores = os.cpu_count() or 1
    return cores, "CPU core and no GPU" if cores == 1 else "CPU cores and no GPU"


READ_BEFORE_START_BYTES = 16 * 2**20
"""Data up to this size unpacked is read and checked in this process before a run folder exists (a few hundredths
of a second for the demo's 1,200 rows): a file with no usable row, or of the wrong kind for the stage, is refused
at once rather than failing a queued run. Larger data is checked by the run itself, in its own process."""


def preflight(cfg: RunConfig) -> None:
    """Checks that need no training, done before a run folder exists: a typo costs no failed run."""
    from studio.models.loading import resolve_model
    from studio.models.memory import detect_gpu
    from studio.train import speed

    stage(cfg.method.stage).trainer_module()
    most, what = device_count()
    if cfg.train.num_processes > most and not cfg.train.accelerate_config:  # a config file may span machines
        raise StudioError(f"train.num_processes is {cfg.train.num_processes}, but this machine has {most} {what}: "
                          f"use at most {most}.")
    gpu = detect_gpu()  # cached: device_count() read it already
    check_strategy(cfg, gpu.count if gpu is not None else 0)
    speed.refuse(cfg, cuda=gpu is not None)
    if cfg.model.parent_run and run_result(Path(cfg.model.parent_run)) is None:
        parent = Path(cfg.model.parent_run)
        raise StudioError(f"The parent run {parent.name} has no finished adapter or model to start from"
                          f"{'' if parent.is_dir() else f' (its folder {parent} is gone)'}.")
    resolve_model(cfg.model.name, cfg.model.revision, weights=False)
    if cfg.data.system and cfg.data.system.strip():
        check_system_message(cfg)
    from studio.data.load import eval_choice

    for label, source, (split, subset) in (("training data", cfg.data.train, (cfg.data.split, cfg.data.subset)),
                                           ("eval data", cfg.data.eval, eval_choice(cfg.data))):
        if source:
            check_source(cfg, label, source, split, subset)


def check_source(cfg: RunConfig, label: str, source: str, split: str, subset: str | None) -> None:
    """One data source before a run: it exists, so do its subset and split, and one of up to
    READ_BEFORE_START_BYTES has usable rows of the kind the stage trains on."""
    from studio.data.folders import check_folder
    from studio.data.hub import check_hub_dataset
    from studio.data.load import load_records
    from studio.data.readers import data_bytes, names_a_file, refuse_choice_in_a_file, source_name

    path = Path(source)
    if (names_a_file(source) or looks_like_path(source)) and not path.exists():
        raise StudioError(f"The {label} {source} does not exist.")
    if label == "eval data" and cfg.data.eval_split and path.is_file():
        name = source_name(path, path.name)
        if source == cfg.data.train:
            refuse_eval_split(cfg, f"the training data is one file ({name})", "leave data.eval_split empty, and "
                                   "hold out a share (data.eval_fraction) or name eval data")
        refuse_eval_split(cfg, f"the eval data is one file ({name})", "leave data.eval_split empty, or clear the "
                               "eval data to take that split of the training data")
    if not path.exists():  # neither a file nor a saved dataset (resolved before): a hub dataset id
        check_hub_dataset(source, subset, split)
    elif data_bytes(path, READ_BEFORE_START_BYTES) > READ_BEFORE_START_BYTES:  # unpacked: a small .gz can be huge
        if path.is_dir():
            check_folder(path, split, subset)
        else:
            refuse_choice_in_a_file(path, split, subset)
    else:
        load_records(str(path), stage(cfg.method.stage).data_kinds, split, subset, fmt=cfg.data.format,
                     mapping=cfg.data.map or None)


def refuse_eval_split(cfg: RunConfig, what: str, advice: str) -> None:
    raise StudioError(f"data.eval_split ({cfg.data.eval_split}) picks a split of a hub dataset or a dataset folder, "
                      f"but {what}: {advice}.")


def check_system_message(cfg: RunConfig) -> None:
    """data.system needs a chat template with a place for a system message (Gemma's, for one, refuses it)."""
    from studio.models.loading import load_tokenizer

    tokenizer = load_tokenizer(cfg.model.name, cfg.model.revision, cfg.model.trust_remote_code)
    if not getattr(tokenizer, "chat_template", None):
        return
    try:
        tokenizer.apply_chat_template([{"role": "system", "content": cfg.data.system},
                                       {"role": "user", "content": "Hello"}], tokenize=False)
    except Exception as err:  # the template's own refusal (jinja2's TemplateError, or what it raises)
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise StudioError(f"The chat template of {cfg.model.name} takes no system message ({first}): clear "
                          "data.system (the Train tab's System message), or put the instructions in the "
                          "prompts themselves.") from None
    tokens = len(tokenizer(cfg.data.system, add_special_tokens=False)["input_ids"])
    if tokens >= cfg.data.max_length:
        raise StudioError(f"The system message is {tokens} tokens long, and data.max_length is "
                          f"{cfg.data.max_length}: no conversation would fit after it. Shorten it, or raise the "
                          "max length.")


def start_run(ws: Workspace, cfg: RunConfig, label: str | None = None, started_by: str = "") -> Path:
    """Create the run folder, write its config and start the worker; returns at once."""
    resolve_inputs(cfg.validate(), ws)
    preflight(cfg)
    run_dir = ws.new_run_dir(label or cfg.name or f"{cfg.method.stage}-{cfg.method.name}")
    config_path = save_config(cfg, run_dir / "config.yaml")
    record_queued(run_dir, cfg, started_by=started_by)
    cmd = worker_command(config_path, run_dir, ws, num_processes=cfg.train.num_processes,
                         accelerate_config=launch_config(cfg))
    record_launcher(run_dir, launched(run_dir, cmd))
    return run_dir


def launched(run_dir: Path, cmd: list[str]) -> int:
    """Start a run's worker; when it cannot start, the run is failed with the reason (left queued with no process,
    it would hold the queue)."""
    try:
        return spawn(cmd, run_dir / "stdout.log")
    except OSError as err:
        update_status(run_dir, state=RunState.FAILED, finished=time.time(),
                      error=f"Its training process could not be started: {err.strerror or err}.")
        raise StudioError(f"Run {run_dir.name} could not start its training process: {err.strerror or err}.") from None


def record_queued(run_dir: Path, cfg: RunConfig, launcher: int | None = None, **fields: Any) -> None:
    """A new run's first status: queued, with what it trains (and who started it, or `launcher`, the process that
    launches it when it is known already)."""
    if launcher is not None:
        fields |= {"launcher_pid": launcher, "launcher_start": process_start(launcher)}
    update_status(run_dir, state=RunState.QUEUED, run_id=run_dir.name, stage=cfg.method.stage,
                  method=cfg.method.name, model=cfg.model.name, created=time.time(), **fields)


def record_launcher(run_dir: Path, pid: int) -> None:
    update_status(run_dir, launcher_pid=pid, launcher_start=process_start(pid))


def prepare_resume(run_dir: Path) -> RunConfig:
    """Check that a run can resume and mark it queued; returns its config. Shared by the UI's Resume and
    `studio train RUN --resume`."""
    from studio.config import load_config

    status = observe(run_dir)
    if status.active:
        raise StudioError(f"Run {run_dir.name} is still {status.shown_state}; stop it before resuming.")
    refuse_while_ending(run_dir, status, "resume")
    if status.state is RunState.COMPLETED or run_result(run_dir) is not None:  # its final weights say so too
        raise StudioError(f"Run {run_dir.name} has completed: there is nothing to resume. To train it further, "
                          "start a new run from it (Start from an earlier run, or model.parent_run).")
    if not any((run_dir / "checkpoints").glob("checkpoint-*")):
        raise StudioError(f"Run {run_dir.name} has no checkpoint to resume from; start it again instead.")
    cfg = load_config(run_dir / "config.yaml")
    (run_dir / STOP_FILE).unlink(missing_ok=True)  # the request that stopped it is spent
    # compare-and-set: only if nobody moved the run since we looked (a dead run is still "running" on disk)
    ended = status.finished or status.updated or time.time()
    began = status.attempt_started  # an attempt that never began training (stopped while queued) adds nothing
    spent = status.earlier + (max(0.0, float(ended) - float(began)) if began else 0.0)
    after = update_status(run_dir, expect={status.state}, state=RunState.QUEUED, error=None,
                          resumed=time.time(), finished=None, waiting_for=None, earlier=spent, left_queue=None)
    if after.state is not RunState.QUEUED:
        raise StudioError(f"Run {run_dir.name} changed meanwhile (now {after.shown_state}); look again before "
                          "resuming.")
    return cfg


def refuse_while_ending(run_dir: Path, status: RunStatus, what: str) -> None:
    """A run taken out of the queue while its process still waits or loads writes once more as that process ends
    (and may make its folder again): it is neither resumed (two processes would hold one run) nor deleted until
    then. A worker that stopped itself has written its last word already."""
    still = [pid for pid, started in ((status.pid, status.pid_start), (status.launcher_pid, status.launcher_start))
             if status.left_queue and is_process(pid, started)]
    if still:
        raise StudioError(f"Run {run_dir.name} is {status.shown_state}, but its process ({still[0]}) is still ending; "
                          f"{what} it in a moment.")


def resume_run(ws: Workspace, run_dir: Path) -> Path:
    """Continue a stopped, failed or dead run from its latest checkpoint, in a new child process."""
    cfg = prepare_resume(run_dir)
    cmd = worker_command(run_dir / "config.yaml", run_dir, ws, resume=True, num_processes=cfg.train.num_processes,
                         accelerate_config=launch_config(cfg))
    record_launcher(run_dir, launched(run_dir, cmd))
    return run_dir


def stop_run(run_dir: Path) -> RunStatus:
    """Ask the worker to save a checkpoint and stop (a queued run just leaves the queue).

    Only a run that is active and whose process is still its worker is signalled: a finished run's
    pid may belong to another process by now.
    """
    status = observe(run_dir)
    if not status.active:
        raise StudioError(f"Run {run_dir.name} is not running ({status.shown_state}); there is nothing to stop.")
    (run_dir / STOP_FILE).touch()
    # a queued run has trained nothing since it was queued: it is stopped now, whatever its process is doing
    # (loading, or waiting for the device; one ended by the signal while it loads leaves the truth behind)
    after = update_status(run_dir, expect={RunState.QUEUED}, state=RunState.STOPPED) \
        if status.state is RunState.QUEUED else status
    if after.state is RunState.STOPPED and status.state is RunState.QUEUED:
        after = update_status(run_dir, finished=after.finished or time.time(), waiting_for=None, left_queue=time.time())
    for pid, started in ((status.pid, status.pid_start), (status.launcher_pid, status.launcher_start)):
        if is_process(pid, started):
            try:
                os.kill(int(pid), signal.SIGTERM)
            except OSError:
                pass
    if after.state is RunState.STOPPED:
        return after
    return update_status(run_dir, expect={RunState.QUEUED, RunState.STARTING, RunState.RUNNING},
                         state=RunState.STOPPING)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(int(pid), 0)
    except (OSError, ValueError, TypeError):
        return False
    try:  # a zombie (exited, not yet reaped) is not alive
        with open(f"/proc/{int(pid)}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def is_process(pid: int | None, started: str | None) -> bool:
    """Whether `pid` is alive and is the same process that was recorded (same start time)."""
    if not pid or not pid_alive(pid):
        return False
    return started is None or process_start(pid) in (None, started)


NO_PROCESS_GRACE = 60.0
"""Seconds an active run that names no process at all is believed: a launcher is recorded within a moment of the
first status; past this the run was left behind (its worker never started) and is dead, not holding the queue."""


def observe(run_dir: Path, grace: float = 5.0) -> RunStatus:
    """The run's status as recorded, with `dead` set when it claims to be active but none of its
    processes is alive. Nothing is written: the record stays the worker's."""
    status = read_status(run_dir)
    if status.state not in ACTIVE:
        return status
    procs = [(status.pid, status.pid_start), (status.launcher_pid, status.launcher_start)]
    if any(is_process(pid, started) for pid, started in procs):
        return status
    named = any(pid for pid, _ in procs)  # none named yet: between the first status and the launcher's record
    if time.time() - float(status.updated or 0) < (grace if named else max(grace, NO_PROCESS_GRACE)):
        return status  # the worker may be writing its final state right now
    again = read_status(run_dir)
    again.dead = again.state in ACTIVE
    if again.dead:
        again.dead_note = dead_note(run_dir, again)
    return again


def dead_note(run_dir: Path, status: RunStatus) -> str:
    """Why a dead run is dead, as far as its folder tells, and what can be done: resume from a checkpoint if it
    saved one, else start again."""
    log = "; see stdout.log" if (run_dir / "stdout.log").is_file() else ""
    if status.state is RunState.QUEUED and not status.attempt_started:
        said = f"Its process ended before it began training (the machine restarted, or it was killed){log}."
    else:
        said = f"The training process ended without saying why (killed, or out of memory){log}."
    if any((run_dir / "checkpoints").glob("checkpoint-*")):
        return f"{said} Resume continues from the latest checkpoint."
    return f"{said} It saved no checkpoint to resume from: start it again (Clone into the form, or the same command)."
