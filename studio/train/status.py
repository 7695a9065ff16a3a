"""status.json: the state of a run (queued, running, stopping, completed, stopped, failed).

Written atomically (write to a temporary file, then rename) so a reader never sees half a file.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

FILE = "status.json"
FINAL_STATES = ("completed", "stopped", "failed")


def read_status(run_dir: str | os.PathLike) -> dict[str, Any]:
    path = Path(run_dir) / FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {"state": "unknown"}


def write_status(run_dir: str | os.PathLike, **fields: Any) -> dict[str, Any]:
    """Merge `fields` into the run's status and write it back atomically."""
    path = Path(run_dir) / FILE
    status = read_status(run_dir)
    status.pop("state", None) if status.get("state") == "unknown" else None
    status.update(fields)
    status["updated"] = time.time()
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    try:
        tmp.write_text(json.dumps(status, indent=1), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)  # never leave half a file behind, e.g. on a full disk
        raise
    return status
