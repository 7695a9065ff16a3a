"""Where the studio keeps things: one folder holds datasets, runs, votes and exports.

    ws = Workspace.open()            # --workspace, else $STUDIO_WORKSPACE, else ./workspace
    run_dir = ws.new_run_dir("sft-lora")

Layout:
    datasets/       saved datasets (JSONL + metadata), versioned
    runs/<id>/      one folder per training run (config.yaml, metrics.jsonl, status.json, ...)
    prefs.sqlite    preference votes
    exports/        merged models and adapters written for use outside the studio
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from studio.errors import StudioError

ENV_VAR = "STUDIO_WORKSPACE"
DEFAULT_DIR = "workspace"
RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
"""What a run id looks like: a plain folder name under runs/, never a path."""
DETAILS = "details.json"
"""A run's name and notes as given after it started (the Train tab's run details)."""
_STAMP = re.compile(r"^\d{8}-\d{6}-")


def run_result(run_dir: Path) -> tuple[str, Path] | None:
    """What a finished run left: ('model', folder) after full fine-tuning, ('adapter', folder) after
    LoRA or QLoRA, or None while it has neither."""
    if (run_dir / "model" / "config.json").exists():
        return "model", run_dir / "model"
    if (run_dir / "adapter" / "adapter_config.json").exists():
        return "adapter", run_dir / "adapter"
    return None


def run_slug(name: str) -> str:
    """A name as a run's id spells it after the time ('dpo on votes' -> 'dpo-on-votes')."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.")[:48]


def read_run_config(run_dir: Path) -> dict:
    """A run's config.yaml as a mapping; StudioError naming the file when it is missing or cannot be read."""
    import yaml

    path = Path(run_dir) / "config.yaml"
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StudioError(f"Run {Path(run_dir).name} has no config.yaml ({path} is gone).") from None
    except (OSError, ValueError, yaml.YAMLError) as err:
        why = getattr(err, "strerror", None) or (str(err).splitlines() or [type(err).__name__])[0]
        raise StudioError(f"{path} cannot be read ({why}).") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise StudioError(f"{path} holds a {type(raw).__name__}, not a run's settings.")
    return raw


def nameable(name: str) -> bool:
    """Whether `name` may stand for a run: not shaped like a run's id (an id always means that run, even deleted),
    a path ('.', '..', '~', slashes), a hub id, a checkpoint (@), and without control or direction characters
    that would make a picker show something else than it holds."""
    import unicodedata

    return bool(name) and not _STAMP.match(name) and not name.startswith((".", "~")) and \
        not any(c in name for c in "/\\@") and not any(unicodedata.category(c) in ("Cc", "Cf") for c in name)


class AmbiguousRun(StudioError):
    """Several runs answer to the name given."""


_NAMES: dict[tuple[str, int, int], set[str]] = {}
"""run_names by run folder and its two files' change times: a name looked up reads only runs changed since."""


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return -1


def run_names(run_dir: Path) -> set[str]:
    """What a run may be called besides its id: the name given in its details, its config's `name:` and its id
    without the time it started (read from its files, never raising)."""
    key = (str(run_dir), _mtime(run_dir / "config.yaml"), _mtime(run_dir / DETAILS))
    if key not in _NAMES:
        if len(_NAMES) > 10_000:
            _NAMES.clear()
        _NAMES[key] = _read_names(run_dir)
    return _NAMES[key]


def read_details(run_dir: Path) -> dict[str, str]:
    """A run's details.json: {'title': ..., 'notes': ...} ('' where none was given or the file cannot be read)."""
    import json

    try:
        raw = json.loads((Path(run_dir) / DETAILS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raw = {}
    raw = raw if isinstance(raw, dict) else {}
    return {"title": str(raw.get("title") or ""), "notes": str(raw.get("notes") or "")}


def _read_names(run_dir: Path) -> set[str]:
    names = {_STAMP.sub("", run_dir.name), read_details(run_dir)["title"]}
    try:
        names.add(str(read_run_config(run_dir).get("name") or ""))
    except StudioError:
        pass
    return {" ".join(n.split()) for n in names} - {""}


@dataclass(frozen=True)
class Workspace:
    root: Path

    @staticmethod
    def chosen_root(path: str | os.PathLike | None = None) -> Path:
        """Where the workspace is: `path`, $STUDIO_WORKSPACE or ./workspace (nothing is created)."""
        return Path(path or os.environ.get(ENV_VAR) or DEFAULT_DIR).expanduser().resolve()

    @classmethod
    def open(cls, path: str | os.PathLike | None = None) -> Workspace:
        """Open (creating if needed) the workspace at `path`, $STUDIO_WORKSPACE or ./workspace."""
        chosen = cls.chosen_root(path)
        if chosen.exists() and not chosen.is_dir():
            raise StudioError(f"The workspace {chosen} is a file, not a folder.")
        ws = cls(chosen)
        try:
            for folder in (ws.datasets, ws.runs, ws.exports):
                folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StudioError(f"Cannot create the workspace at {chosen}: {err.strerror}.") from None
        return ws

    def check_writable(self) -> None:
        """StudioError when nothing can be written here (a read-only disk or folder, a full disk)."""
        probe = self.root / f".write-check-{os.getpid()}"
        try:
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as err:
            raise StudioError(f"The workspace {self.root} cannot be written ({err.strerror or err}): runs, datasets "
                              "and votes are kept there; make it writable or choose another with --workspace.") \
                from None

    @property
    def datasets(self) -> Path:
        return self.root / "datasets"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def exports(self) -> Path:
        return self.root / "exports"

    @property
    def prefs_db(self) -> Path:
        return self.root / "prefs.sqlite"

    def new_run_dir(self, label: str = "run") -> Path:
        """Create and return a fresh run folder named by time and label, e.g. 20261126-153000-sft-lora."""
        slug = run_slug(label) or "run"
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for n in range(1000):
            run_id = f"{stamp}-{slug}" if n == 0 else f"{stamp}-{slug}-{n}"
            path = self.runs / run_id
            try:
                path.mkdir(parents=True)
                return path
            except FileExistsError:
                continue
        raise StudioError(f"Could not create a new run folder under {self.runs}.")

    def run_dir(self, run: str | os.PathLike) -> Path:
        """Find a run by id (a folder under runs/), by its folder path or by its name."""
        text = str(run)
        found = self.runs / text
        if RUN_ID.match(text) and found.is_dir() and found.resolve().is_relative_to(self.runs.resolve()):
            return found  # (a link from runs/ to a folder elsewhere is not one of its runs)
        path = Path(text).expanduser()
        if path.is_dir() and (path / "config.yaml").exists():
            return path.resolve()
        named = self.named_run(text)
        if named is not None:
            return named
        raise StudioError(f"No run '{text}' in {self.runs}, and it is not a run folder or a run's name either.")

    def named_run(self, name: str) -> Path | None:
        """The one run called `name`: its name in the run details, the `name:` of its config, or its id without
        the time it started. None when no run is (or `name` could be read as something else: see nameable);
        StudioError when several are."""
        wanted = " ".join(str(name).split())
        if not nameable(wanted):  # a hub id, a path or a run's id is never taken for a run's name
            return None
        found = [run_dir for run_dir in self.list_runs() if wanted in run_names(run_dir)]
        if len(found) > 1:
            raise AmbiguousRun(f"{len(found)} runs are called '{wanted}' ({', '.join(p.name for p in found[:5])}"
                              f"{' ...' if len(found) > 5 else ''}): name one by its id.")
        return found[0] if found else None

    def list_runs(self) -> list[Path]:
        """Run folders, newest first."""
        if not self.runs.is_dir():
            return []
        inside = self.runs.resolve()
        found = [p for p in self.runs.iterdir() if p.is_dir() and not p.name.startswith(".")
                 and (p / "config.yaml").exists() and p.resolve().is_relative_to(inside)]
        return sorted(found, key=lambda p: p.name, reverse=True)

    def contains(self, path: str | os.PathLike) -> bool:
        """True when `path` lies inside the workspace (after resolving links and '..')."""
        try:
            Path(path).resolve().relative_to(self.root)
            return True
        except ValueError:
            return False
