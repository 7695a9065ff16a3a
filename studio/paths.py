"""Fixed places inside the project: the built-in assets and presets."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ASSETS = PROJECT_ROOT / "assets"
PRESETS = PROJECT_ROOT / "presets"
TINY_MODEL = ASSETS / "tiny-model"
DEMO_DATA = ASSETS / "data"


def resolve_project_path(path: str | os.PathLike) -> Path:
    """A relative path as given if it exists from here, else relative to the project root.

    Presets name shipped files such as assets/data/support_sft.jsonl; this lets them work from any
    working directory.
    """
    candidate = Path(path).expanduser()
    if candidate.is_absolute() or candidate.exists():
        return candidate
    in_project = PROJECT_ROOT / candidate
    return in_project if in_project.exists() else candidate


def read_text(path: Path, what: str, error: type[Exception] = ValueError) -> str:
    """A UTF-8 text file a user named, or `error` with one sentence: '{what} PATH does not exist.' ..."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{what} {path} does not exist.") from None
    except UnicodeDecodeError:
        raise error(f"{what} {path} is not UTF-8 text.") from None
    except OSError as err:
        raise error(f"Cannot read {what[0].lower() + what[1:]} {path}: {err.strerror}.") from None
