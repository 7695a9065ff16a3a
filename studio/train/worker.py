"""The training worker: runs one stage into a run folder. Same entry for the CLI, the UI and
`accelerate launch`:

    python -m studio train RUN_CONFIG.yaml [--workspace DIR] [--set key=value ...]

It writes config.yaml (resolved), metrics.jsonl (flushed at every log event), status.json, the
checkpoints and finally adapter/ (LoRA, QLoRA) or model/ (full fine-tuning). A file named STOP in
the run folder, or SIGTERM, makes it save a checkpoint and end cleanly.
"""

from __future__ import annotations

import errno
import fcntl
import math
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

from studio.config import RunConfig, save_config
from studio.errors import StudioError
from studio.stages import stage
from studio.train.metrics import MetricsWriter, drop_after
from studio.train.status import FINAL, RunState, process_start, read_status, update_status

STOP_FILE = "STOP"


def leave_out_bitsandbytes(cfg: RunConfig) -> bool:
    """Keep bitsandbytes unloaded in a run that cannot need it: not QLoRA, a model folder on this machine
    whose config.json is not quantised already, and no reward-model run to load. Only before PEFT loads;
    True when it was left out."""
    from studio.models.loading import drop_bitsandbytes, saved_quantised

    scored_by_a_model = stage(cfg.method.stage).section == "rl" and "model" in cfg.rl.rewards
    if cfg.method.name == "qlora" or scored_by_a_model or saved_quantised(cfg.model.name):
        return False
    return drop_bitsandbytes()


def _make_callback(run_dir: Path, writer: MetricsWriter, show_progress: bool) -> Any:
    from transformers import TrainerCallback

    class StudioCallback(TrainerCallback):
        """Streams log events to metrics.jsonl and status.json; honours stop requests."""

        def __init__(self) -> None:
            self.started = time.time()
            self.first_tokens: tuple[float, float] | None = None
            self.stop_requested = False

        def on_train_begin(self, args, state, control, **kw):
            self.started = time.time()
            if state.is_world_process_zero:
                update_status(run_dir, state=RunState.RUNNING, step=state.global_step, total_steps=state.max_steps,
                              start_step=state.global_step, loop_started=time.time(),
                              world_size=int(os.environ.get("WORLD_SIZE", "1")),
                              distributed=_distributed_type())

        def on_step_end(self, args, state, control, **kw):
            if self.stop_requested or (run_dir / STOP_FILE).exists():
                control.should_save = True
                control.should_training_stop = True
                self.stop_requested = True
            if show_progress and state.is_world_process_zero:
                _progress(state.global_step, state.max_steps, time.time() - self.started)
            return control

        def on_log(self, args, state, control, logs=None, **kw):
            if not state.is_world_process_zero:
                return
            logs = dict(logs or {})
            elapsed = time.time() - self.started
            record = {"step": state.global_step, "epoch": state.epoch, "time": elapsed, **logs}
            peak = _gpu_peak_gib()
            if peak is not None:
                record["gpu_peak_gib"] = peak
            # TRL logs the running count of tokens trained on; a resumed run counts from its restart
            tokens = logs.get("num_tokens") or getattr(state, "num_input_tokens_seen", 0) or 0
            if tokens and elapsed > 0 and "loss" in logs:
                if self.first_tokens is None:
                    self.first_tokens = (tokens, elapsed)
                done, since = tokens - self.first_tokens[0], elapsed - self.first_tokens[1]
                if since > 0 and done > 0:
                    record["tokens_per_second"] = done / since
            writer.write(record)
            update_status(run_dir, step=state.global_step, total_steps=state.max_steps, elapsed=elapsed)
            for key in ("loss", "grad_norm"):
                value = logs.get(key)
                if isinstance(value, float) and not math.isfinite(value):
                    control.should_training_stop = True
                    what = "loss" if key == "loss" else "gradients"
                    raise StudioError(f"The {what} became {value} at step {state.global_step}, so training "
                                      "stopped: lower the learning rate or check the data.")

    return StudioCallback()


def _distributed_type() -> str:
    """How the processes share the model, as accelerate set it up: NO, MULTI_GPU (DDP), FSDP, DEEPSPEED ..."""
    try:
        from accelerate.state import AcceleratorState

        return str(AcceleratorState().distributed_type.value)
    except Exception:  # a state that was never set up: one plain process
        return "NO"


def _gpu_peak_gib() -> float | None:
    """The most GPU memory torch has held for tensors since the process started (None without CUDA)."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return None
    return round(torch.cuda.max_memory_allocated() / 2**30, 3)


def _progress(step: int, total: int, elapsed: float) -> None:
    total = max(total, 1)
    done = min(step / total, 1.0)
    eta = elapsed / step * (total - step) if step else 0.0
    bar = "#" * int(done * 30)
    sys.stderr.write(f"\r[{bar:<30}] {step}/{total} {elapsed:5.0f}s elapsed, ETA {eta:4.0f}s")
    sys.stderr.flush()
    if step >= total:
        sys.stderr.write("\n")


def latest_checkpoint(run_dir: Path) -> Path | None:
    ckpts = sorted((c for c in (run_dir / "checkpoints").glob("checkpoint-*") if _complete(c)), key=checkpoint_step)
    return ckpts[-1] if ckpts else None


def checkpoint_step(checkpoint: Path) -> int:
    """The step a checkpoint folder (checkpoint-120) was saved at; -1 for a name without one."""
    tail = checkpoint.name.split("-")[-1]
    return int(tail) if tail.isdigit() else -1


def is_main_process() -> bool:
    return os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")) == "0"


STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGHUP") if hasattr(signal, name))
"""What asks a training to stop as the Stop button does: the runner's SIGTERM, Ctrl+C, a closed terminal."""
EARLY_STOP: dict[str, bool] = {}
"""Set when a stop signal came while the process was still loading (see hold_stop_signals)."""


def stop_signals(handler: Any) -> Any:
    """Give every stop signal `handler` (one callable, or what an earlier call returned); returns what they had."""
    before = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    for sig in STOP_SIGNALS:
        signal.signal(sig, (handler.get(sig) or signal.SIG_DFL) if isinstance(handler, dict) else handler)
    return before


def quiet_output() -> None:
    """Send this process's output nowhere (its terminal was closed): writing to it would fail."""
    null = os.open(os.devnull, os.O_WRONLY)
    for fd in (1, 2):
        os.dup2(null, fd)
    os.close(null)


def hold_stop_signals() -> dict[int, Any]:
    """Before a training process loads its libraries: a stop asked for then is kept for run_training, which marks
    the run stopped before it begins (the default action would end the process with the run still 'stopping').
    Returns the handlers there were, for stop_signals to put back."""
    def early(signum: int, frame: Any) -> None:
        EARLY_STOP["flag"] = True
        if signum == getattr(signal, "SIGHUP", None):
            quiet_output()
        if signum == signal.SIGINT:  # a second Ctrl+C quits at once
            signal.signal(signal.SIGINT, signal.default_int_handler)

    return stop_signals(early)


def wait_for_device(lock_path: Path, run_dir: Path, should_stop: Any, say: Any = None) -> Any:
    """Hold the device lock (one training at a time); while another run holds it, show 'queued', and
    tell `say` (a print, in the foreground) once for each run it waits behind.

    Returns the open lock file (the lock lives as long as it stays open, and the OS releases it
    if this process dies), or None when a stop was requested while waiting.
    """
    told = None
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(lock_path, "a+")
    owner = lock_path.with_suffix(".owner")
    while True:
        earlier = queued_before(run_dir)  # first come, first served: a run queued earlier takes the device first
        try:
            if earlier:
                raise BlockingIOError
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            owner.write_text(run_dir.name, encoding="utf-8")
            return fh
        except BlockingIOError:
            holder = earlier or (owner.read_text(encoding="utf-8").strip() if owner.exists() else "") or "another run"
            # only while still queued: a run stopped meanwhile stays stopped (this loop would queue it again)
            update_status(run_dir, expect={RunState.QUEUED}, state=RunState.QUEUED, pid=os.getpid(),
                          pid_start=process_start(os.getpid()), waiting_for=holder)
            if say is not None and holder != told:
                say(f"queued: waiting for {holder} to finish (one training at a time)")
                told = holder
            if should_stop():
                fh.close()
                return None
            time.sleep(1.0)


def queued_before(run_dir: Path) -> str:
    """Another run of the same workspace queued before this one that still waits (its process alive), by its id;
    '' when there is none."""
    from studio.train.runner import observe

    def queued_at(status: Any) -> float:
        return float(status.resumed or status.created or 0.0)

    mine = queued_at(read_status(run_dir))
    for other in run_dir.parent.iterdir():
        if other == run_dir or other.name.startswith(".") or not (other / "status.json").is_file():
            continue
        status = observe(other)
        if status.state is RunState.QUEUED and not status.dead and \
                (queued_at(status), other.name) < (mine, run_dir.name):
            return other.name
    return ""


def run_training(cfg: RunConfig, run_dir: Path, resume: bool = False, show_progress: bool = False,
                 lock_path: Path | None = None) -> Path:
    """Train one stage into `run_dir`; return the folder of the saved adapter or model."""
    main = is_main_process()

    def report(*args: Any, **fields: Any) -> None:  # only rank 0 writes the run's status
        if main:
            update_status(*args, **fields)

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if not resume and not (run_dir / "config.yaml").exists():
        save_config(cfg, run_dir / "config.yaml")
    if resume and main and read_status(run_dir).state in FINAL:
        # resumed without the runner, which would have marked it queued: the old stop request is spent
        update_status(run_dir, expect=FINAL, state=RunState.QUEUED, error=None, finished=None)
        (run_dir / STOP_FILE).unlink(missing_ok=True)
    stop_asked = {"flag": (run_dir / STOP_FILE).exists() or EARLY_STOP.pop("flag", False)}

    def on_stop_signal(signum, frame):  # finish the current step, save, leave
        stop_asked["flag"] = True
        if callback is not None:
            callback.stop_requested = True
        if signum == getattr(signal, "SIGHUP", None):
            quiet_output()  # the terminal is gone: the progress bar must not fail the run as it saves
        if signum == signal.SIGINT:  # Ctrl+C once stops as Stop does; twice, at once
            signal.signal(signal.SIGINT, signal.default_int_handler)
            print("\nstopping: the current step ends and a checkpoint is saved (Ctrl+C again to quit at once)",
                  file=sys.stderr, flush=True)

    callback = None
    previous = stop_signals(on_stop_signal)
    lock = None
    stop_seen = lambda: stop_asked["flag"] or (run_dir / STOP_FILE).exists()  # noqa: E731
    if lock_path is not None and main:
        lock = wait_for_device(lock_path, run_dir, stop_seen, say=(lambda text: print(text, flush=True))
                               if show_progress else None)
    if main and ((lock is None and lock_path is not None) or stop_seen()):  # stopped before it began
        stop_signals(previous)
        if lock is not None:
            lock.close()
        report(run_dir, state=RunState.STOPPED, finished=time.time(), waiting_for=None)
        (run_dir / STOP_FILE).unlink(missing_ok=True)
        return run_dir
    report(run_dir, state=RunState.STARTING, pid=os.getpid(), pid_start=process_start(os.getpid()),
           run_id=run_dir.name, stage=cfg.method.stage, method=cfg.method.name, model=cfg.model.name,
           started=time.time(), error=None, waiting_for=None, finished=None)
    resume_from = latest_checkpoint(run_dir) if resume else None
    if resume_from is not None and main:  # the steps after the checkpoint are trained and logged again
        drop_after(run_dir, checkpoint_step(resume_from))
    writer = MetricsWriter(run_dir)  # opened after the file may have been replaced
    callback = _make_callback(run_dir, writer, show_progress)
    callback.stop_requested = stop_asked["flag"]
    _quiet_libraries()
    try:
        _speed_settings(cfg, run_dir, main)
        trainer = stage(cfg.method.stage).trainer_module().build_trainer(cfg, run_dir, [callback])
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)  # metrics.jsonl and the progress bar say it better
        trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
        if callback.stop_requested:
            (run_dir / STOP_FILE).unlink(missing_ok=True)
            report(run_dir, state=RunState.STOPPED, finished=time.time())
            return run_dir / "checkpoints"
        out = run_dir / ("model" if cfg.method.name == "full" else "adapter")
        if getattr(trainer, "is_fsdp_enabled", False):
            trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
        trainer.save_model(str(out))
        tok = getattr(trainer, "processing_class", None)
        if main and tok is not None and hasattr(tok, "save_pretrained"):
            tok.save_pretrained(str(out))
        report(run_dir, state=RunState.COMPLETED, finished=time.time(), output=str(out))
        return out
    except BaseException as err:
        reason = describe_failure(err, run_dir)
        if disk_is_full(err, run_dir):
            drop_incomplete_checkpoints(run_dir)  # frees room to record the failure; finished ones stay
        try:
            report(run_dir, state=RunState.FAILED, finished=time.time(), error=reason)
        except OSError:
            print(f"error: {reason} (could not update status.json)", file=sys.stderr, flush=True)
        if isinstance(err, (StudioError, KeyboardInterrupt, SystemExit)):
            raise
        _log_traceback(run_dir)
        raise StudioError(reason) from err
    finally:
        stop_signals(previous)
        writer.close()
        if lock is not None:
            lock.close()


def _speed_settings(cfg: RunConfig, run_dir: Path, main: bool) -> None:
    """Resolve the speed settings for this machine, say them once and write them into config.yaml."""
    from studio.methods.common import resolve_precision
    from studio.train import speed

    precision = resolve_precision(cfg.train.precision)
    chosen = speed.resolve(cfg, precision)
    speed.apply_threads(chosen)
    if main:
        import torch

        recorded = speed.record(cfg, chosen)
        recorded.train.precision = precision  # 'auto' as this machine resolved it
        save_config(recorded, run_dir / "config.yaml")
        from studio import openmp_spin

        pad = f", batches padded to a multiple of {chosen.pad_to_multiple}" if chosen.pad_to_multiple else ""
        if chosen.batching == "padding_free" and not torch.cuda.is_available():  # asked for: said, not refused
            pad += " (padding-free batches train about half as fast as padded ones on a CPU; auto picks padded)"
        threads = torch.get_num_threads()
        cpu = "" if torch.cuda.is_available() else \
            f", {threads} CPU thread{'' if threads == 1 else 's'} (OpenMP spin {openmp_spin()})"
        print(f"speed: precision {precision}, attention {chosen.attention}, batching {chosen.batching}, liger "
              f"{'on' if chosen.liger else 'off'}, fused AdamW {'on' if chosen.fused_optimizer else 'off'}, "
              f"{chosen.workers} loader workers, gradient checkpointing {chosen.why_checkpointing}{pad}{cpu}",
              flush=True)


def _quiet_libraries() -> None:
    """Progress bars and deprecation notices from the libraries would drown the run's own output."""
    import logging
    import warnings

    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*deprecated.*")


def _log_traceback(run_dir: Path) -> None:
    """The details of an unexpected failure go to the run's stdout.log, not to the user's terminal."""
    import traceback

    try:
        with open(run_dir / "stdout.log", "a", encoding="utf-8") as fh:
            fh.write(traceback.format_exc())
    except OSError:
        pass


def _complete(checkpoint: Path) -> bool:
    """The Trainer writes trainer_state.json last, so a checkpoint without it was cut short."""
    return (checkpoint / "trainer_state.json").exists()


def drop_incomplete_checkpoints(run_dir: Path) -> list[Path]:
    dropped = []
    for ckpt in (run_dir / "checkpoints").glob("checkpoint-*"):
        if ckpt.is_dir() and not _complete(ckpt):
            shutil.rmtree(ckpt, ignore_errors=True)
            dropped.append(ckpt)
    for tmp in run_dir.glob("status.tmp*"):
        tmp.unlink(missing_ok=True)
    return dropped


def disk_is_full(err: BaseException, run_dir: Path | None) -> bool:
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        return True
    text = str(err).lower()
    if "no space left" in text:
        return True
    if run_dir is None:
        return False
    try:  # torch and safetensors word a failed write in many ways; the free space says it plainly
        return shutil.disk_usage(run_dir).free < 16 * 2**20
    except OSError:
        return False


def describe_failure(err: BaseException, run_dir: Path | None = None) -> str:
    """One sentence for the runs table and the CLI."""
    if isinstance(err, KeyboardInterrupt):
        return "Interrupted from the keyboard."
    if isinstance(err, (StudioError, ValueError)):
        return str(err)
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    if "out of memory" in text.lower():
        return "Out of GPU memory: try QLoRA, a smaller batch with more gradient accumulation, " \
               "a shorter max length or gradient checkpointing."
    if disk_is_full(err, run_dir):
        return ("The disk is full: the run stopped at its last complete checkpoint; free space in the "
                "workspace and resume the run.")
    return f"{type(err).__name__}: {text}"
