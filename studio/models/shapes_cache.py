"""Model shapes kept on disk, so that counting a model seen before needs no torch import.

Reading a model's shapes builds its skeleton on the meta device, which needs torch and transformers
(about 3 s to import on 2 cores). The result depends only on the config file, the head, the
transformers version and the counting code, so it is stored once per such key under $STUDIO_CACHE (default
~/.cache/finetuning-studio)/shapes/ and read back as JSON. A cache that cannot be read or written
is skipped: it only ever saves time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from importlib import metadata
from pathlib import Path
from typing import Any


def cache_dir() -> Path:
    root = os.environ.get("STUDIO_CACHE") or Path.home() / ".cache" / "finetuning-studio"
    return Path(root) / "shapes"


def key(config_text: str, head: str, label: str) -> str:
    """The config, the head, the label, transformers' version and the counting code itself: a change to
    any of them reads the shapes afresh."""
    try:
        version = metadata.version("transformers")
    except metadata.PackageNotFoundError:
        version = "?"
    code = b"".join((Path(__file__).parent / f).read_bytes() for f in ("counting.py", "shapes_formula.py"))
    digest = hashlib.sha256("\0".join((config_text, head, label, version)).encode() + code)
    return digest.hexdigest()[:32]


def load(name: str, shapes_class: Any, layer_class: Any) -> Any | None:
    try:
        raw = json.loads((cache_dir() / f"{name}.json").read_text(encoding="utf-8"))
        raw["linears"] = tuple(layer_class(**layer) for layer in raw["linears"])
        return shapes_class(**raw)
    except (OSError, ValueError, TypeError, KeyError):
        return None


def save(name: str, shapes: Any) -> None:
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f"{name}.tmp{os.getpid()}"
        tmp.write_text(json.dumps(dataclasses.asdict(shapes)), encoding="utf-8")
        tmp.replace(folder / f"{name}.json")
    except OSError:
        pass
