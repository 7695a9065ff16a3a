"""Load training data named in a run config into a `datasets.Dataset`.

Accepts a JSON/JSONL/CSV/TSV/Parquet file, a folder written by `datasets.save_to_disk`, or a hub
dataset id. Paths relative to the working directory are tried first, then relative to the project
(so presets can name the shipped demo files).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from studio.errors import StudioError
from studio.paths import resolve_project_path

_BUILDERS = {".json": "json", ".jsonl": "json", ".csv": "csv", ".tsv": "csv", ".parquet": "parquet"}


def load_dataset_source(source: str, split: str = "train", subset: str | None = None) -> Any:
    import datasets

    path = resolve_project_path(source)
    if path.is_dir():
        try:
            loaded = datasets.load_from_disk(str(path))
        except (FileNotFoundError, ValueError) as err:
            raise StudioError(f"{path} is not a saved dataset folder: {err}") from None
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise StudioError(f"{path} has no split '{split}' (it has {', '.join(loaded)}).")
            loaded = loaded[split]
        return loaded
    if path.suffix.lower() in _BUILDERS:
        if not path.exists():
            raise StudioError(f"Data file {path} does not exist.")
        kwargs = {"delimiter": "\t"} if path.suffix.lower() == ".tsv" else {}
        try:
            return datasets.load_dataset(_BUILDERS[path.suffix.lower()], data_files=str(path),
                                         split="train", **kwargs)
        except Exception as err:  # datasets wraps parser errors in many types
            raise StudioError(f"Could not read {path}: {str(err).splitlines()[0]}") from None
    if Path(source).suffix:
        raise StudioError(f"Data file {source} does not exist or has a type the studio cannot read.")
    try:
        return datasets.load_dataset(source, subset, split=split)
    except Exception as err:
        raise StudioError(f"Could not load hub dataset '{source}': {str(err).splitlines()[0]}") from None
