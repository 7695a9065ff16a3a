"""Read a dataset folder: one saved with `datasets.save_to_disk`, or one laid out as on the hub (a clone of a hub
dataset's repository: README.md naming subsets and splits, or files named by split such as train.jsonl and
test-00000-of-00001.parquet).

    read_folder(Path("gsm8k"), split="test", subset="main")
"""

from __future__ import annotations

import json
from pathlib import Path

from studio.data.readers import COMPRESSED, SUFFIXES, DataError, ReadResult, check_split, hub_reason

FOLDER_SUFFIXES = frozenset(SUFFIXES) | {".arrow"}
"""Data files a hub-layout folder may hold: the kinds the studio reads as single files, and Arrow."""


def read_folder(path: Path, split: str = "train", subset: str | None = None) -> ReadResult:
    if (path / "meta.json").is_file() and (path / "train.jsonl").is_file():  # a version the studio saved
        from studio.data.readers import read_rows

        if not (path / f"{split}.jsonl").is_file():
            raise DataError(f"{path.name}: no split '{split}' (a saved version has train and, when saved with an "
                            "eval share, eval).")
        return read_rows(path / f"{split}.jsonl")
    if (path / "state.json").exists() or (path / "dataset_dict.json").exists():
        if subset:
            raise DataError(f"{path.name}: a folder saved with datasets.save_to_disk has no subsets; leave the "
                            f"subset (data.subset) empty.")
        return _read_saved(path, split)
    return _read_hub_layout(path, split, subset)


def _read_saved(path: Path, split: str) -> ReadResult:
    import datasets

    _check_saved_files(path)
    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception:
        raise DataError(f"{path.name}: this folder is not a dataset saved with datasets.save_to_disk.") from None
    if isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
            raise DataError(f"{path.name}: no split '{split}' (it has {', '.join(loaded)}).")
        loaded = loaded[split]
    return ReadResult(loaded.to_list(), path.name, "saved")


def _check_saved_files(path: Path) -> None:
    """A folder saved with save_to_disk names its data files in state.json; refuse one that names files
    anywhere but beside it (datasets would open them wherever they are)."""
    for state in [path / "state.json", *path.glob("*/state.json")]:
        try:
            files = json.loads(state.read_text(encoding="utf-8")).get("_data_files") or []
        except (OSError, ValueError, AttributeError):
            continue  # not a saved folder, or a damaged one: loading says so
        for entry in files:
            name = str(entry.get("filename", "")) if isinstance(entry, dict) else str(entry)
            if Path(name).name != name or name.startswith(".") or "\\" in name:
                raise DataError(f"{path.name}: {state.relative_to(path)} names a data file outside the folder "
                                f"({name!r}), which the studio does not read.")


NOT_A_DATASET = ("is not a dataset folder: neither saved with datasets.save_to_disk nor laid out as on the hub "
                 "(data files named by split, such as train.jsonl and test.jsonl, or a README.md naming them)")


def check_folder(path: Path, split: str = "train", subset: str | None = None) -> None:
    """Refuse, with one sentence, a hub-layout folder whose subset or split does not exist, or whose README
    points at files outside it or of kinds the studio does not read; reads no rows."""
    _builder(path, subset, split)


def _builder(path: Path, subset: str | None, split: str):
    import datasets

    try:
        builder = datasets.load_dataset_builder(str(path), subset)
    except datasets.exceptions.DatasetNotFoundError:
        raise DataError(f"{path.name} {NOT_A_DATASET}.") from None
    except Exception as err:
        if type(err).__name__ == "EmptyDatasetError":
            raise DataError(f"{path.name} {NOT_A_DATASET}.") from None
        raise DataError(f"{path.name}: {hub_reason(err)}.") from None
    files = builder.config.data_files or {}
    root = path.resolve()
    for name in [f for found in files.values() for f in found]:
        text = str(name)
        if "://" in text or not Path(text).resolve().is_relative_to(root):
            raise DataError(f"{path.name}: its README.md names a data file outside the folder ({text!r}), which "
                            "the studio does not read.")
        if _kind(text) not in FOLDER_SUFFIXES:
            raise DataError(f"{path.name} {NOT_A_DATASET}: {Path(text).name} is not a data file the studio reads.")
    check_split(builder, split, path.name)
    return builder


def _kind(name: str) -> str:
    """'.jsonl' for train.jsonl and for train.jsonl.gz."""
    suffix = Path(name).suffix.lower()
    return Path(Path(name).stem).suffix.lower() if suffix in COMPRESSED else suffix


def _read_hub_layout(path: Path, split: str, subset: str | None) -> ReadResult:
    import datasets

    _builder(path, subset, split)
    shown = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # "Generating train split" bars would fill the command line's output
    try:
        loaded = datasets.load_dataset(str(path), subset, split=split)
    except Exception as err:
        raise DataError(f"{path.name}: {hub_reason(err)}.") from None
    finally:
        if shown:
            datasets.enable_progress_bars()
    rows = loaded.to_list()
    if not rows:
        raise DataError(f"{path.name}: the split '{split}' has no rows.")
    return ReadResult(rows, path.name, "folder")
