"""Read a dataset folder: a version the studio saved (train.jsonl, eval.jsonl), one saved with
`datasets.save_to_disk`, or one laid out as on the hub (a clone of a hub dataset's repository: README.md naming
subsets and splits, or files named by split such as train.jsonl and test-00000-of-00001.parquet).

    read_folder(Path("gsm8k"), split="test", subset="main")
    read_folder(Path("saved"), split="train[:1000]")    # slices as the datasets library writes them

Nothing outside the folder is read: a README.md naming files elsewhere, a link out of the folder, or a saved
folder whose split names are paths is refused.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from studio.data.readers import COMPRESSED, SUFFIXES, DataError, ReadResult, hub_reason

FOLDER_SUFFIXES = (frozenset(SUFFIXES) - {".txt"}) | {".arrow"}
"""Data files a hub-layout folder may hold: the table kinds the studio reads as single files, and Arrow (plain
text is read a line a row there, not a paragraph a row as the studio reads a .txt file)."""


def folder_kind(path: Path) -> str:
    """'version' (saved by the studio), 'saved' (save_to_disk) or 'hub' (laid out as a hub repository)."""
    if (path / "meta.json").is_file() and (path / "train.jsonl").is_file():
        return "version"
    if (path / "state.json").exists() or (path / "dataset_dict.json").exists():
        return "saved"
    return "hub"


def read_folder(path: Path, split: str = "train", subset: str | None = None) -> ReadResult:
    """The rows of `split` (a name or a slice, 'train[:100]', 'train+test') of `subset` in the folder at `path`."""
    kind = folder_kind(path)
    if kind != "hub" and subset:
        raise DataError(f"{path.name}: a saved folder has no subsets; leave the subset empty.")
    if kind == "version":
        return _read_version(path, split)
    if kind == "saved":
        parts = _saved_splits(path)
        taken = [parts[name].select(range(start, end)) for name, start, end in _ranges(path, split, parts)]
        return ReadResult([row for part in taken for row in part.to_list()], path.name, "saved")
    dataset = _hub_builder(path, subset, split)
    try:
        dataset.download_and_prepare()
        rows = dataset.as_dataset(split=split).to_list()
    except Exception as err:
        raise DataError(f"{path.name}: {hub_reason(err)}.") from None
    if not rows:
        raise DataError(f"{path.name}: the split '{split}' has no rows.")
    return ReadResult(rows, path.name, "folder")


def check_folder(path: Path, split: str = "train", subset: str | None = None) -> None:
    """What read_folder would refuse about the folder, its subset and its split, reading as few rows as it can."""
    kind = folder_kind(path)
    if kind == "hub":
        _hub_builder(path, subset, split)
    elif subset:
        raise DataError(f"{path.name}: a saved folder has no subsets; leave the subset empty.")
    elif kind == "saved":
        _ranges(path, split, _saved_splits(path))
    else:
        _read_version(path, split)


def _ranges(path: Path, split: str, parts: dict[str, Any]) -> list[tuple[str, int, int]]:
    """(split, first row, end) for each part of a split spec, checked against the splits there are."""
    import datasets

    try:
        absolute = datasets.ReadInstruction.from_spec(split).to_absolute({k: len(v) for k, v in parts.items()})
    except (ValueError, AssertionError, KeyError):
        raise DataError(f"{path.name}: no split '{split}' (it has {', '.join(parts)}).") from None
    return [(a.splitname, a.from_, a.to) for a in absolute]


def _read_version(path: Path, split: str) -> ReadResult:
    from studio.data.readers import read_rows

    parts = {name: read_rows(path / f"{name}.jsonl") for name in ("train", "eval") if (path / f"{name}.jsonl").is_file()}
    ranges = _ranges(path, split, {k: v.rows for k, v in parts.items()})
    if len(ranges) == 1:  # one file: rows keep their line numbers
        name, start, end = ranges[0]
        read = parts[name]
        return ReadResult(read.rows[start:end], read.source, read.kind, read.lines[start:end] if read.lines else None,
                          read.notes)
    return ReadResult([row for name, start, end in ranges for row in parts[name].rows[start:end]], path.name, "jsonl")


def _saved_splits(path: Path) -> dict[str, Any]:
    """A save_to_disk folder's splits by name (a single Dataset is the split 'train')."""
    import datasets

    _check_saved_files(path)
    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception:
        raise DataError(f"{path.name}: this folder is not a dataset saved with datasets.save_to_disk.") from None
    return dict(loaded) if isinstance(loaded, datasets.DatasetDict) else {"train": loaded}


def _check_saved_files(path: Path) -> None:
    """A folder saved with save_to_disk names its splits in dataset_dict.json and its data files in state.json;
    refuse one that names them anywhere but inside it (datasets would open them wherever they are)."""
    try:
        splits = json.loads((path / "dataset_dict.json").read_text(encoding="utf-8")).get("splits") or []
    except (OSError, ValueError, AttributeError):
        splits = []
    for name in map(str, splits):
        if not _plain(name) or (path / name).is_symlink():
            raise DataError(f"{path.name}: dataset_dict.json names a split outside the folder ({name!r}), which the "
                            "studio does not read.")
    for state in [path / "state.json", *path.glob("*/state.json")]:
        try:
            files = json.loads(state.read_text(encoding="utf-8")).get("_data_files") or []
        except (OSError, ValueError, AttributeError):
            continue  # not a saved folder, or a damaged one: loading says so
        for entry in files:
            name = str(entry.get("filename", "")) if isinstance(entry, dict) else str(entry)
            if not _plain(name) or (state.parent / name).is_symlink():
                raise DataError(f"{path.name}: {state.relative_to(path)} names a data file outside the folder "
                                f"({name!r}), which the studio does not read.")


def _plain(name: str) -> bool:
    """A file name with no folder in it (no '/', '\\', '..' or leading dot)."""
    return bool(name) and Path(name).name == name and not name.startswith(".") and "\\" not in name


NOT_A_DATASET = ("is not a dataset folder: neither saved with datasets.save_to_disk nor laid out as on the hub "
                 "(data files named by split, such as train.jsonl and test.jsonl, or a README.md naming them)")


def _hub_builder(path: Path, subset: str | None, split: str) -> Any:
    """The datasets library's builder for a hub-layout folder, once every data file it names is known to lie inside
    the folder and to be of a kind the studio reads, and `split` to be one of its splits."""
    import datasets

    from studio.data.readers import check_split

    _check_card_patterns(path)
    try:
        builder = datasets.load_dataset_builder(str(path), subset)
    except datasets.exceptions.DatasetNotFoundError:
        raise DataError(f"{path.name} {NOT_A_DATASET}.") from None
    except Exception as err:
        if type(err).__name__ == "EmptyDatasetError":
            raise DataError(f"{path.name} {NOT_A_DATASET}.") from None
        raise DataError(f"{path.name}: {hub_reason(err)}.") from None
    root = path.resolve()
    for name in [str(f) for found in (builder.config.data_files or {}).values() for f in found]:
        if "://" in name or not Path(name).resolve().is_relative_to(root):
            shown = Path(name).relative_to(path) if Path(name).is_relative_to(path) else Path(name).name
            raise DataError(f"{path.name}: {shown} lies outside the folder (a link), which the studio does not read.")
        if _file_type(name) not in FOLDER_SUFFIXES:
            raise DataError(f"{path.name} {NOT_A_DATASET}: {Path(name).name} is not a data file the studio reads in a "
                            "folder (name a .txt file itself).")
    check_split(builder, split, path.name)
    return builder


def _check_card_patterns(path: Path) -> None:
    """Refuse a README.md whose configs name data files outside the folder (an absolute path, '..', a URL or '~'),
    before the datasets library looks for them."""
    import yaml

    card = path / "README.md"
    if not card.is_file():
        return
    found = re.match(r"---\s*\n(.*?)\n---\s*(\n|$)", card.read_text(encoding="utf-8", errors="replace"), re.S)
    try:
        header = yaml.safe_load(found.group(1)) if found else None
    except yaml.YAMLError:
        return  # the datasets library says what is wrong with it
    configs = header.get("configs") if isinstance(header, dict) else None
    for config in configs if isinstance(configs, list) else []:
        if not isinstance(config, dict):
            continue
        for pattern in _patterns(config.get("data_files")) + _patterns(config.get("data_dir")):
            if pattern.startswith(("/", "~", "\\")) or "://" in pattern or ".." in re.split(r"[/\\]", pattern) \
                    or re.match(r"^[A-Za-z]:", pattern):
                raise DataError(f"{path.name}: its README.md names data files outside the folder ({pattern!r}), "
                                "which the studio does not read.")


def _patterns(value: Any) -> list[str]:
    """Every path pattern in a README config's data_files (text, a list, or {split, path} entries)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return _patterns(value.get("path"))
    if isinstance(value, list):
        return [p for item in value for p in _patterns(item)]
    return []


def _file_type(name: str) -> str:
    """'.jsonl' for train.jsonl and for train.jsonl.gz."""
    suffix = Path(name).suffix.lower()
    return Path(Path(name).stem).suffix.lower() if suffix in COMPRESSED else suffix
