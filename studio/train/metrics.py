"""metrics.jsonl: one JSON object per log event, appended and flushed; read back incrementally.

The worker appends with `MetricsWriter`; the UI keeps a `MetricsReader` per run and calls
`read_new()` about once a second, which parses only the bytes written since the last call.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

FILE = "metrics.jsonl"


class MetricsWriter:
    def __init__(self, run_dir: str | os.PathLike):
        self.path = Path(run_dir) / FILE
        self._fh = open(self.path, "a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        clean = {k: _plain(v) for k, v in record.items()}
        self._fh.write(json.dumps(clean, allow_nan=False) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


def _plain(value: Any) -> Any:
    """JSON has no NaN or infinity: keep them readable as strings."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def drop_after(run_dir: str | os.PathLike, step: int) -> int:
    """Rewrite metrics.jsonl without the records logged after `step` (a resume from the checkpoint at
    `step` logs those steps again); returns how many were dropped. The file is replaced whole, so a
    reader sees either the old or the new one."""
    path = Path(run_dir) / FILE
    try:
        lines = path.read_bytes().splitlines(keepends=True)
    except FileNotFoundError:
        return 0
    kept = []
    for line in lines:
        try:
            later = int(json.loads(line).get("step", 0)) > step
        except (ValueError, AttributeError, TypeError):
            later = False  # a torn or foreign line stays as it was
        if not later:
            kept.append(line if line.endswith(b"\n") else line + b"\n")
    if len(kept) == len(lines):
        return 0
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_bytes(b"".join(kept))
    os.replace(tmp, path)
    return len(lines) - len(kept)


class MetricsReader:
    """Reads a growing metrics.jsonl, returning only the records added since the last call. When the file
    was replaced (a resume drops the steps after its checkpoint), it starts over and says so."""

    def __init__(self, run_dir: str | os.PathLike):
        self.path = Path(run_dir) / FILE
        self._offset = 0
        self._partial = b""
        self._inode: int | None = None
        self.restarted = False
        """True after a read_new() that started over on a replaced file: earlier records are void."""

    def read_new(self) -> list[dict[str, Any]]:
        self.restarted = False
        try:
            with open(self.path, "rb") as fh:
                stat = os.fstat(fh.fileno())
                if self._inode is not None and (stat.st_ino != self._inode or stat.st_size < self._offset):
                    self._offset, self._partial, self.restarted = 0, b"", True
                self._inode = stat.st_ino
                fh.seek(self._offset)
                chunk = fh.read()
        except FileNotFoundError:
            return []
        self._offset += len(chunk)
        data = self._partial + chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()  # an unfinished last line waits for the next call
        records = []
        for line in lines:
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except ValueError:
                continue  # a torn write from a killed process: skip it
        return records


def read_all(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    return MetricsReader(run_dir).read_new()
