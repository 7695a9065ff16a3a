"""Runs as experiments: a name and notes of their own, a config diff between two runs, the metrics in a
table, the worker's log, and deletion that never touches a running run.

    set_details(run_dir, title="lr 3e-4", notes="better on long emails")
    config_diff(run_a, run_b)      # [("train.learning_rate", 0.0003, 0.001), ...]
    delete_run(run_dir)            # refused while it runs

The name and notes live in the run folder (details.json), beside the config the run was started with,
which stays as it was.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from studio.errors import StudioError
from studio.train.metrics import read_all
from studio.train.runner import observe, refuse_while_ending
from studio.workspace import DETAILS, nameable, read_details, read_run_config

LOG = "stdout.log"


def details(run_dir: Path) -> dict[str, str]:
    """{'title': ..., 'notes': ...} ('' where none was given)."""
    return read_details(run_dir)


def set_details(run_dir: Path, title: str | None = None, notes: str | None = None) -> dict[str, str]:
    """Change a run's title and/or notes; written whole (temporary file, then rename)."""
    now = details(run_dir)
    if title is not None:
        title = " ".join(title.split())
        if len(title) > 120:
            raise StudioError("A run's name is at most 120 characters.")
        if title and not nameable(title):
            raise StudioError("A run's name cannot look like a run's id or a path (starting with a date and time, "
                              "'.' or '~', or holding / \\ or @), nor hold control or text-direction characters: "
                              "choose another.")
        now["title"] = title
    if notes is not None:
        if len(notes) > 20_000:
            raise StudioError("A run's notes are at most 20,000 characters.")
        now["notes"] = notes
    path = Path(run_dir) / DETAILS
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(now, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, path)
    return now


def _flat(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(_flat(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): node}


def run_config_dict(run_dir: Path) -> dict[str, Any]:
    return read_run_config(run_dir)


def config_diff(run_a: Path, run_b: Path) -> list[tuple[str, Any, Any]]:
    """(setting, value in a, value in b) for every setting that differs, by config path."""
    a, b = _flat(run_config_dict(run_a)), _flat(run_config_dict(run_b))
    return [(key, a.get(key), b.get(key)) for key in sorted(set(a) | set(b)) if a.get(key) != b.get(key)]


def metrics_table(run_dir: Path, keys: tuple[str, ...] = ("loss", "eval_loss", "learning_rate", "grad_norm",
                                                          "reward", "kl", "rewards/margins", "mean_token_accuracy"),
                  last: int = 50) -> list[dict[str, Any]]:
    """The latest logged steps, one row each, with the usual metrics rounded (the file keeps full values)."""
    rows = []
    for record in read_all(Path(run_dir))[-last:]:
        row: dict[str, Any] = {"step": record.get("step")}
        for key in keys:
            value = record.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                row[key] = float(f"{value:.4g}")
        if len(row) > 1:
            rows.append(row)
    return rows


def log_tail(run_dir: Path, max_bytes: int = 20_000) -> str:
    """The end of the worker's output, decoded leniently (progress bars write carriage returns)."""
    path = Path(run_dir) / LOG
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read()
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace").replace("\r", "\n")
    lines = [line for line in text.splitlines() if line.strip()]
    return "\n".join(lines[-200:])


def delete_run(run_dir: Path) -> None:
    """Remove a finished run's folder (checkpoints, result and all); an active run is refused."""
    status = observe(run_dir)
    if status.active:
        raise StudioError(f"Run {run_dir.name} is {status.shown_state}: stop it before deleting it.")
    refuse_while_ending(run_dir, status, "delete")
    if not (run_dir / "config.yaml").exists():
        raise StudioError(f"{run_dir} is not a run folder.")
    needed = runs_needing(run_dir)
    if needed:
        child, why = needed[0]
        then = "delete it first" if why.startswith("holds") else "stop it or let it finish first"
        raise StudioError(f"Run {child} {why} run {run_dir.name}: {then}"
                          f"{f' (and {len(needed) - 1} more)' if len(needed) > 1 else ''}, or keep this one.")
    trash = run_dir.with_name(f".deleting-{run_dir.name}")
    os.replace(run_dir, trash)  # gone from every list at once, even if removing the files takes a while
    shutil.rmtree(trash, ignore_errors=True)


def runs_needing(run_dir: Path) -> list[tuple[str, str]]:
    """(run id, why) for each run of the same workspace that still needs `run_dir`: one yet to start or still
    training from it or scored by it (a reward model), and one whose adapter sits on its full model (a parent's adapter is merged and kept beside
    the run that starts from it, so that one needs it no more once it has started)."""
    found = []
    for other in sorted(run_dir.parent.iterdir()):
        if other == run_dir or other.name.startswith(".") or not (other / "config.yaml").is_file():
            continue
        try:
            cfg = read_run_config(other)
            parent = str((cfg.get("model") or {}).get("parent_run") or "")
            scorer = str((cfg.get("rl") or {}).get("reward_model") or "")
        except (StudioError, AttributeError):
            continue
        starts, scores = Path(parent).name == run_dir.name, Path(scorer).name == run_dir.name
        if not (starts or scores):
            continue
        status = observe(other)
        if status.active:
            found.append((other.name, f"is {status.shown_state} and {'starts from' if starts else 'is scored by'}"))
        elif starts and not (other / "parent-merged" / "config.json").exists() and (run_dir / "model").is_dir() \
                and (other / "adapter").is_dir():
            found.append((other.name, "holds an adapter trained on the model of"))
    return found
