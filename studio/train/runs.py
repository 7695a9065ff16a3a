"""What the runs table and the curves show, read from run folders alone.

    rows = list_runs(ws)              # one dict per run: stage, model, method, status, steps, loss ...
    series = curves(records)          # metric name -> (steps, values), ready to plot

Everything comes from config.yaml, status.json and metrics.jsonl, so a reload, a second browser or
a restarted app sees the same truth.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from studio.errors import StudioError
from studio.stages import chat_stage
from studio.train.metrics import FILE, read_all
from studio.train.runner import observe
from studio.train.status import RunState, RunStatus, read_status
from studio.workspace import Workspace, read_run_config, run_result, run_slug

# Keys the trainer logs that are not curves worth drawing.
_NOT_CURVES = {"step", "epoch", "time", "total_flos", "train_runtime", "train_samples_per_second",
               "train_steps_per_second", "eval_runtime", "eval_samples_per_second", "eval_steps_per_second",
               "num_input_tokens_seen", "train_loss"}


def run_summary(run_dir: Path) -> dict[str, Any]:
    """One row of the runs table. A run folder whose files were damaged (a crash, a hand edit) still gives a row,
    its error naming the file that cannot be read; it never takes the table down."""
    status = observe(run_dir)
    problem = ""
    try:
        cfg = read_run_config(run_dir)
    except StudioError as err:
        cfg, problem = {}, str(err)
    model, method = _section(cfg, "model"), _section(cfg, "method")
    from studio.chat.evaluate import final_evaluations

    loss = last_loss(run_dir)
    started = status.attempt_started or (None if status.resumed else status.created)
    ended = status.finished or (time.time() if status.active else status.updated)
    scored = final_evaluations(run_dir)
    last = scored[-1] if scored else None
    return {
        "run": run_dir.name,
        "name": run_name(run_dir, cfg),
        "stage": _text(method.get("stage")) or status.stage or "?",
        "model": _text(model.get("name")) or status.model or "?",
        "method": _text(method.get("name")) or status.method or "?",
        "status": status.shown_state,
        "steps": f"{status.step}/{status.total_steps or '?'}",
        "final loss": round(loss, 4) if loss is not None else None,
        "duration": _duration(status.earlier + (ended - started if started and ended else 0.0))
        if started or status.earlier else "",
        "exact match": f"{last['exact_match']:.1%} of {last['rows']}" if last else "",
        "ROUGE-L": f"{last['rouge_l']:.3f}" if last and _number(last.get("rouge_l")) else "",
        "parent": Path(_text(model.get("parent_run"))).name,
        "error": status.shown_error or problem,
    }


def _section(cfg: dict[str, Any], key: str) -> dict[str, Any]:
    value = cfg.get(key)
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def last_loss(run_dir: Path, tail: int = 65536) -> float | None:
    """The last training loss logged, read from the end of metrics.jsonl: the runs table asks every
    second, and a long run's file is large."""
    path = run_dir / FILE
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, 2)
            fh.seek(max(0, size - tail))
            chunk = fh.read()
    except OSError:
        return None
    for line in reversed(chunk.splitlines()):
        try:
            value = json.loads(line).get("loss")
        except (ValueError, AttributeError):
            continue  # a partial first line of the chunk, or a torn write
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    if size > tail:  # no loss near the end: look through the whole file
        losses = [r["loss"] for r in read_all(run_dir) if isinstance(r.get("loss"), (int, float))]
        return float(losses[-1]) if losses else None
    return None


def finished_runs(ws: Workspace, chat_models: bool = False) -> list[str]:
    """Completed runs, newest first, from status.json alone (pickers list them on every page load);
    with chat_models, reward models are left out."""
    out = []
    for run_dir in ws.list_runs():
        status = read_status(run_dir)
        if status.unreadable and run_result(run_dir) is not None:  # a damaged status.json; the weights are whole
            status.state, status.stage = RunState.COMPLETED, _config_stage(run_dir)
        if status.state is RunState.COMPLETED and not (chat_models and not chat_stage(status.stage)):
            out.append(run_dir.name)
    return out


def _config_stage(run_dir: Path) -> str:
    try:
        return _text(_section(read_run_config(run_dir), "method").get("stage")) or "sft"
    except StudioError:
        return ""


def run_label(run_id: str, name: str) -> str:
    """What a picker shows for a run: its id, after the name given it where the id does not say it already."""
    return f"{name} · {run_id}" if name and name not in run_id and run_slug(name) not in run_id else run_id


def run_name(run_dir: Path, cfg: dict[str, Any] | None = None) -> str:
    """The name a run goes by: the one given in its details, else its config's `name:` ('' when neither)."""
    from studio.train.experiments import details

    if cfg is None:
        try:
            cfg = read_run_config(run_dir)
        except StudioError:
            cfg = {}
    return details(run_dir)["title"] or _text(cfg.get("name"))


def labelled_runs(ws: Workspace, run_ids: list[str]) -> list[tuple[str, str]]:
    """(label, run id) for a picker, labelled as the runs table's tick labels them: a run renamed after it started
    is found by the name it was given."""
    return [(run_label(run_id, run_name(ws.runs / run_id)), run_id) for run_id in run_ids]


def reward_model_runs(ws: Workspace) -> list[str]:
    """Completed reward-model runs, newest first."""
    return [run_dir.name for run_dir in ws.list_runs()
            if (status := read_status(run_dir)).state is RunState.COMPLETED and status.stage == "reward"]


def latest_reward_model(ws: Workspace) -> str:
    """The newest completed reward-model run (what rl.reward_model: latest names)."""
    found = reward_model_runs(ws)
    if not found:
        raise StudioError("rl.reward_model is 'latest', but no reward-model run has finished in this workspace: "
                          "train one first (preset tiny-reward, or Preferences → Train on the votes).")
    return found[0]


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def list_runs(ws: Workspace) -> list[dict[str, Any]]:
    return [run_summary(p) for p in ws.list_runs()]


def curves(records: list[dict[str, Any]]) -> dict[str, tuple[list[float], list[float]]]:
    """metric -> (steps, values) for every numeric metric logged, skipping non-finite values."""
    out: dict[str, tuple[list[float], list[float]]] = {}
    for rec in records:
        step = rec.get("step")
        if step is None:
            continue
        for key, value in rec.items():
            if key in _NOT_CURVES or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if not math.isfinite(value):
                continue
            xs, ys = out.setdefault(key, ([], []))
            xs.append(step)
            ys.append(float(value))
    return out


def smooth(values: list[float], weight: float = 0.8) -> list[float]:
    """Exponential moving average with bias correction, as TensorBoard draws it."""
    out, avg = [], 0.0
    for n, v in enumerate(values, start=1):
        avg = weight * avg + (1 - weight) * v
        out.append(avg / (1 - weight**n))
    return out


def progress(status: RunStatus, now: float | None = None) -> dict[str, Any]:
    """Step, total, elapsed (earlier attempts included) and ETA for the progress bar."""
    now = now or time.time()
    step, total = status.step, status.total_steps
    started = status.attempt_started
    # a dead run's clock stops at its last word (as the runs table's duration does), not at the time of asking
    ended = status.finished or (status.updated if status.dead and status.updated else now)
    elapsed = status.earlier + (max(0.0, ended - started) if started else 0.0)
    # the pace of this attempt up to its last logged step (loading excluded), less the time since that log:
    # the ETA counts down between logs instead of climbing until the next one
    done = step - status.start_step
    running = status.state is RunState.RUNNING and not status.dead
    eta = None
    if done > 0 and total and running and status.elapsed:
        since = max(0.0, now - float(status.updated or now))
        eta = max(0.0, status.elapsed / done * (total - step) - since)
    return {"step": step, "total": total, "fraction": step / total if total else 0.0,
            "elapsed": elapsed, "eta": eta, "state": status.shown_state}
