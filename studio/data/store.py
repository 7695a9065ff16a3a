"""Saved datasets in the workspace: named, versioned, never overwritten.

    path = save_dataset(ws, "support", records, eval_fraction=0.1)   # datasets/support/v3/
    names = list_datasets(ws)

Each version is a folder holding train.jsonl, eval.jsonl (when split) and meta.json. A version is
written to a temporary folder and renamed into place, so a failure leaves earlier versions intact.
"""

from __future__ import annotations

import errno
import fcntl
import json
import random
import re
import shutil
import time
from pathlib import Path
from typing import Any

from studio.data.readers import DataError
from studio.workspace import Workspace

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_name(name: str) -> str:
    name = (name or "").strip()
    if not _NAME.match(name) or ".." in name:
        raise DataError(f"Dataset name {name!r} must be 1-64 letters, digits, '-', '_' or '.', starting "
                        "with a letter or digit.")
    return name


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> int:
    with open(path, "w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return len(records)


def versions(ws: Workspace, name: str) -> list[int]:
    folder = ws.datasets / check_name(name)
    inside = ws.datasets.resolve()
    if not folder.is_dir() or not folder.resolve().is_relative_to(inside):
        return []  # a link from datasets/ to a folder elsewhere is not a saved dataset, nor a version linked so
    return sorted(int(p.name[1:]) for p in folder.iterdir()
                  if p.is_dir() and re.fullmatch(r"v\d+", p.name) and p.resolve().is_relative_to(inside))


def save_dataset(ws: Workspace, name: str, records: list[dict[str, Any]], kind: str,
                 eval_fraction: float = 0.0, seed: int = 0, source: str = "", created_by: str = "") -> Path:
    """Write a new version of dataset `name`; return its folder. Saves of one name at the same time get
    one version each (the version is chosen under a lock on the dataset's folder). Saving exactly what the
    latest version holds (rows, kind, split) makes no new version: that version's folder is returned."""
    name = check_name(name)
    if not records:
        raise DataError(f"Dataset {name}: nothing to save, it has no usable rows.")
    if not 0 <= eval_fraction < 1:
        raise DataError(f"The eval share must be at least 0 and below 1 (got {eval_fraction}).")
    rows = list(records)
    n_eval = int(round(len(rows) * eval_fraction)) if eval_fraction else 0
    if eval_fraction and len(rows) >= 2:
        n_eval = min(max(n_eval, 1), len(rows) - 1)
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    eval_idx = set(order[:n_eval])
    train = [r for i, r in enumerate(rows) if i not in eval_idx]
    evaluation = [r for i, r in enumerate(rows) if i in eval_idx]
    digest = content_digest(train, evaluation, kind)
    folder = ws.datasets / name
    tmp = folder / f".new.tmp{time.time_ns()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
        write_jsonl(tmp / "train.jsonl", train)
        if evaluation:
            write_jsonl(tmp / "eval.jsonl", evaluation)
        with open(folder / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            latest = (versions(ws, name) or [0])[-1]
            if latest and version_meta(folder / f"v{latest}").get("digest") == digest:
                shutil.rmtree(tmp, ignore_errors=True)
                return folder / f"v{latest}"
            version = latest + 1
            meta = {"digest": digest, "name": name, "version": version, "kind": kind, "rows": len(rows), "train_rows": len(train),
                    "eval_rows": len(evaluation), "eval_fraction": eval_fraction, "seed": seed, "source": source,
                    "created_by": created_by, "created": time.strftime("%Y-%m-%d %H:%M:%S")}
            (tmp / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
            final = folder / f"v{version}"
            tmp.rename(final)
        return final
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if err.errno == errno.ENOSPC:
            raise DataError(f"Dataset {name} was not saved: the disk is full. Earlier versions are untouched.") from None
        raise DataError(f"Dataset {name} was not saved: {err.strerror or err}.") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def content_digest(train: list[dict[str, Any]], evaluation: list[dict[str, Any]], kind: str) -> str:
    """A fingerprint of what a version holds: its kind and the rows of each split, in order."""
    import hashlib

    h = hashlib.sha256(kind.encode())
    for split, rows in (("train", train), ("eval", evaluation)):
        h.update(f"\n#{split}\n".encode())
        for r in rows:
            h.update(json.dumps(r, sort_keys=True, ensure_ascii=False).encode() + b"\n")
    return h.hexdigest()


def version_meta(version_dir: Path) -> dict[str, Any]:
    """A saved version's meta.json (rows, train_rows, eval_rows, digest ...); {} when it cannot be read."""
    try:
        meta = json.loads((version_dir / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def list_datasets(ws: Workspace) -> list[dict[str, Any]]:
    """The latest version of each saved dataset, with its metadata."""
    out = []
    if not ws.datasets.is_dir():
        return out
    for folder in sorted(ws.datasets.iterdir()):
        if not folder.is_dir() or not _NAME.match(folder.name):
            continue
        vs = versions(ws, folder.name)
        if not vs:
            continue
        meta = version_meta(folder / f"v{vs[-1]}") or {"name": folder.name, "version": vs[-1]}
        meta["versions"] = vs
        meta["path"] = str(folder / f"v{vs[-1]}")
        out.append(meta)
    return out


def dataset_path(ws: Workspace, name: str, version: int | None = None, split: str = "train") -> Path:
    """The JSONL file of a saved dataset (latest version unless given)."""
    vs = versions(ws, name)
    if not vs:
        raise DataError(f"No saved dataset named {name!r} in {ws.datasets}.")
    v = version or vs[-1]
    path = ws.datasets / name / f"v{v}" / f"{split}.jsonl"
    if not path.exists() or not path.resolve().is_relative_to(ws.datasets.resolve()):
        raise DataError(f"Dataset {name} v{v} has no {split} split.")
    return path
