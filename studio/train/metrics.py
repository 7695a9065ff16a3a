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


class MetricsReader:
    """Reads a growing metrics.jsonl, returning only the records added since the last call."""

    def __init__(self, run_dir: str | os.PathLike):
        self.path = Path(run_dir) / FILE
        self._offset = 0
        self._partial = b""

    def read_new(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as fh:
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
