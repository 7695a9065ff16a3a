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

from studio.data.hub import hub_reason, split_names
from studio.data.readers import COMPRESSED, MAX_BYTES, DataError, ReadResult, read_rows, unpacked_size


def folder_kind(path: Path) -> str:
    """'version' (saved by the studio), 'saved' (save_to_disk) or 'hub' (laid out as a hub repository)."""
    if (path / "meta.json").is_file() and (path / "train.jsonl").is_file():
        return "version"
    if (path / "state.json").exists() or (path / "dataset_dict.json").exists():
        return "saved"
    return "hub"


def read_folder(path: Path, split: str = "train", subset: str | None = None) -> ReadResult:
    """The rows of `split` (a name or a slice, 'train[:100]', 'train+test') of `subset` in the folder at `path`."""
    kind = _kind_for(path, subset)
    if kind == "version":
        read = _read_version(path, split)
    elif kind == "saved":
        parts = _saved_splits(path)
        ranges = _ranges(path, split, parts)
        if sum(parts[n].data.nbytes * (end - start) / max(len(parts[n]), 1) for n, start, end in ranges) > MAX_BYTES:
            raise _too_big(path, split)
        read = ReadResult([row for n, start, end in ranges for row in parts[n].select(range(start, end)).to_list()],
                          path.name, "saved")
    else:
        read = _read_hub_layout(path, split, subset)
    if not read.rows:
        raise DataError(f"{path.name}: the split '{split}' has no rows.")
    return read


def check_folder(path: Path, split: str = "train", subset: str | None = None) -> None:
    """What read_folder would refuse about the folder, its subset and its split, reading as few rows as it can."""
    kind = _kind_for(path, subset)
    if kind == "hub":
        _hub_files(path, split, subset)
    elif kind == "saved":
        _ranges(path, split, _saved_splits(path))
    else:
        _version_splits(path, split)


def _kind_for(path: Path, subset: str | None) -> str:
    kind = folder_kind(path)
    if kind != "hub" and subset:
        raise DataError(f"{path.name}: a saved folder has no subsets; leave the subset empty.")
    return kind


def _too_big(path: Path, split: str) -> DataError:
    return DataError(f"{path.name}: the split '{split}' holds over the {MAX_BYTES / 2**30:.1f} GiB the studio reads at "
                     "once; take a slice such as train[:100000].")


def _ranges(path: Path, split: str, parts: dict[str, Any]) -> list[tuple[str, int, int]]:
    """(split, first row, end) for each part of a split spec, checked against the splits there are."""
    import datasets

    split_names(split, path.name)
    try:
        absolute = datasets.ReadInstruction.from_spec(split).to_absolute({k: len(v) for k, v in parts.items()})
    except (ValueError, AssertionError, KeyError):
        raise DataError(f"{path.name}: no split '{split}' (it has {', '.join(parts)}).") from None
    return [(a.splitname, a.from_, a.to) for a in absolute]


def _version_splits(path: Path, split: str) -> list[str]:
    """The splits of a saved version (train, and eval when it was saved with a share) that `split` names."""
    present = [n for n in ("train", "eval") if (path / f"{n}.jsonl").is_file()]
    label = f"The saved dataset {path.parent.name} {path.name}"  # its name and version, as the Data tab says them
    wanted = list(dict.fromkeys(split_names(split, label)))
    for name in wanted:
        if name not in present:
            raise DataError(f"{label}: no split '{name}' (it has {', '.join(present)}).")
    return wanted


def _read_version(path: Path, split: str) -> ReadResult:
    parts = {name: read_rows(path / f"{name}.jsonl") for name in _version_splits(path, split)}
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
    for name in ("dataset_dict.json", "state.json", "dataset_info.json", *(str(p.relative_to(path)) for p in
                                                                            path.glob("*/state.json"))):
        if (path / name).is_symlink():
            raise DataError(f"{path.name}: its {name} is a link, which the studio does not follow.")
    try:
        splits = json.loads((path / "dataset_dict.json").read_text(encoding="utf-8")).get("splits") or []
    except (OSError, ValueError, AttributeError):
        splits = []
    if not isinstance(splits, list):
        raise DataError(f"{path.name}: dataset_dict.json does not list its splits.")
    for name in map(str, splits):
        if not _plain(name) or (path / name).is_symlink():
            raise DataError(f"{path.name}: dataset_dict.json names a split outside the folder ({name!r}), which the "
                            "studio does not read.")
    for state in [path / "state.json", *path.glob("*/state.json")]:
        try:
            files = json.loads(state.read_text(encoding="utf-8")).get("_data_files") or []
        except (OSError, ValueError, AttributeError):
            continue  # not a saved folder, or a damaged one: loading says so
        if not isinstance(files, list):
            raise DataError(f"{path.name}: {state.relative_to(path)} does not list its data files.")
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
BUILDERS = {".json": "json", ".jsonl": "json", ".ndjson": "json", ".csv": "csv", ".tsv": "csv", ".parquet": "parquet",
            ".arrow": "arrow"}
"""The datasets library's reader for each kind of data file a hub-layout folder may hold (plain text is left out:
it would be read a line a row there, not a paragraph a row as the studio reads a .txt file)."""
CARD_BYTES = 256 * 1024
"""How much of a README.md is searched for its YAML header."""
MAX_PATTERNS = 200
"""At most this many file patterns in a README.md's configs."""


def _read_hub_layout(path: Path, split: str, subset: str | None) -> ReadResult:
    import datasets

    builder, files = _hub_files(path, split, subset)
    extra = {"delimiter": "\t"} if all(_file_type(f.name) == ".tsv" for part in files.values() for f in part) else {}
    try:
        loaded = datasets.load_dataset(builder, data_files={k: [str(f) for f in v] for k, v in files.items()},
                                       split=split, **extra)
    except Exception as err:
        raise DataError(f"{path.name}: {hub_reason(err)}.") from None
    if loaded.data.nbytes > MAX_BYTES:
        raise _too_big(path, split)
    return ReadResult(loaded.to_list(), path.name, "folder")


def _hub_files(path: Path, split: str, subset: str | None) -> tuple[str, dict[str, list[Path]]]:
    """The reader and the files of each split `split` names, found by the folder's README.md (its configs) or by
    their names as the hub finds them; every file inside the folder, of one kind, and at most MAX_BYTES unpacked."""
    from datasets.data_files import get_data_patterns

    configs = _card_configs(path)
    if configs:
        patterns = _split_patterns(path, _pick_config(path, configs, subset))
    elif subset:
        raise DataError(f"{path.name}: no subset '{subset}' (its README.md names none); leave the subset empty.")
    else:
        try:
            patterns = {str(k): list(v) for k, v in get_data_patterns(str(path)).items()}
        except Exception:  # EmptyDatasetError: no file named by split
            raise DataError(f"{path.name} {NOT_A_DATASET}.") from None
    wanted = split_names(split, path.name)
    for name in wanted:
        if name not in patterns:
            raise DataError(f"{path.name}: no split '{name}' (it has {', '.join(patterns)}).")
    files = {name: _glob(path, patterns[name]) for name in dict.fromkeys(wanted)}
    kinds = {_file_type(f.name) for part in files.values() for f in part}
    unread = sorted(k or "none" for k in kinds - set(BUILDERS))
    if unread:
        raise DataError(f"{path.name} {NOT_A_DATASET}: it holds files of type {', '.join(unread)} (the studio reads "
                        f"{', '.join(BUILDERS)} in a folder; name a .txt file itself).")
    builders = {BUILDERS[k] for k in kinds}
    if len(builders) > 1 or {".csv", ".tsv"} <= kinds:
        raise DataError(f"{path.name}: its split '{split}' mixes files of types {', '.join(sorted(kinds))}; a "
                        "split is read from files of one type.")
    _check_unpacked(path, [f for part in files.values() for f in part])
    return builders.pop(), files


def _card_configs(path: Path) -> list[dict[str, Any]]:
    """The configs a README.md's YAML header lists (empty when it has none), read as the hub reads the header."""
    import yaml
    from huggingface_hub.repocard import REGEX_YAML_BLOCK

    card = path / "README.md"
    if card.is_symlink():
        raise DataError(f"{path.name}: its README.md is a link, which the studio does not follow.")
    if not card.is_file():
        return []
    with card.open(encoding="utf-8", errors="replace") as f:
        found = REGEX_YAML_BLOCK.search(f.read(CARD_BYTES))
    if not found:
        return []
    unreadable = DataError(f"{path.name}: the YAML header of its README.md cannot be read (the studio reads plain "
                           "YAML, without &anchors and *references).")
    try:
        if any(isinstance(event, yaml.AliasEvent) for event in yaml.parse(found.group(2))):
            raise unreadable
        header = yaml.safe_load(found.group(2))
    except (yaml.YAMLError, RecursionError):
        raise unreadable from None
    configs = header.get("configs") if isinstance(header, dict) else None
    if configs is None:
        return []
    if not isinstance(configs, list) or not all(isinstance(c, dict) and isinstance(c.get("config_name"), str)
                                                for c in configs):
        raise DataError(f"{path.name}: the configs in its README.md cannot be read (each needs a config_name and "
                        "its data_files).")
    return configs


def _pick_config(path: Path, configs: list[dict[str, Any]], subset: str | None) -> dict[str, Any]:
    names = [c["config_name"] for c in configs]
    if subset:
        if subset in names:
            return configs[names.index(subset)]
        raise DataError(f"{path.name}: no subset '{subset}' (it has {', '.join(names)}).")
    defaults = [c for c in configs if c.get("default") is True]
    if len(configs) == 1 or len(defaults) == 1:
        return configs[0] if len(configs) == 1 else defaults[0]
    raise DataError(f"{path.name}: it has subsets {', '.join(names)}: name the one to read.")


def _split_patterns(path: Path, config: dict[str, Any]) -> dict[str, list[str]]:
    """A README config's data_files by split ('train' where it names no split), under its data_dir; every pattern
    a path inside the folder."""
    from datasets.data_files import get_data_patterns

    base = config.get("data_dir") or ""
    given = config.get("data_files")
    shapes = DataError(f"{path.name}: the data_files of its README.md's config '{config['config_name']}' cannot be "
                       "read (a pattern, a list, or split and path entries).")
    if not isinstance(base, str):
        raise shapes
    _check_pattern(path, base or ".")
    if given is None:
        try:
            found = get_data_patterns(str(path / base)) if base else {}
        except Exception:
            found = {}
        if not found:
            raise DataError(f"{path.name} {NOT_A_DATASET}.")
        return {str(k): [f"{base}/{p}" for p in v] for k, v in found.items()}
    if isinstance(given, (str, list)) and all(isinstance(g, str) for g in ([given] if isinstance(given, str) else given)):
        by_split: dict[str, Any] = {"train": given}
    elif isinstance(given, list) and all(isinstance(g, dict) and "split" in g and "path" in g for g in given):
        by_split = {str(g["split"]): g["path"] for g in given}
    elif isinstance(given, dict):
        by_split = {str(k): v for k, v in given.items()}
    else:
        raise shapes
    out: dict[str, list[str]] = {}
    for split, value in by_split.items():
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items or not all(isinstance(p, str) for p in items):
            raise shapes
        out[split] = [f"{base}/{p}" if base else p for p in items]
    if sum(len(v) for v in out.values()) > MAX_PATTERNS:
        raise DataError(f"{path.name}: its README.md names over {MAX_PATTERNS} file patterns.")
    for pattern in (p for v in out.values() for p in v):
        _check_pattern(path, pattern)
    return out


def _check_pattern(path: Path, pattern: str) -> None:
    """A pattern must name files inside the folder: relative, without '..', a scheme (file:, hf://) or a drive."""
    parts = re.split(r"[/\\]", pattern)
    if not pattern or len(pattern) > 300 or ":" in pattern or pattern.startswith(("/", "\\", "~")) or ".." in parts:
        raise DataError(f"{path.name}: its README.md names data files outside the folder ({pattern[:80]!r}), "
                        "which the studio does not read.")


def _glob(path: Path, patterns: list[str]) -> list[Path]:
    """The data files inside the folder that match the patterns (hidden ones left out, as the hub leaves them)."""
    root, out = path.resolve(), []
    for pattern in patterns:
        if pattern.rstrip("/").endswith("**"):  # for the hub every file below; for Path.glob folders only
            pattern = pattern.rstrip("/") + "/*"
        for found in sorted(path.glob(pattern)):
            inner = found.relative_to(path)
            if not found.is_file() or any(p.startswith((".", "__")) for p in inner.parts):
                continue
            if found.is_symlink() or not found.resolve().is_relative_to(root):
                raise DataError(f"{path.name}: {inner} lies outside the folder (a link), which the studio does not "
                                "read.")
            out.append(found)
    if not out:
        raise DataError(f"{path.name}: no file matches {', '.join(patterns)[:120]}.")
    return list(dict.fromkeys(out))


def _check_unpacked(path: Path, files: list[Path]) -> None:
    """Refuse data files that unpack to more than MAX_BYTES together (a small .gz can hold gigabytes)."""
    total = 0
    for f in files:
        try:
            total += unpacked_size(f, MAX_BYTES - total)  # Parquet by its footer: its columns are compressed
        except DataError:
            raise DataError(f"{path.name}: {f.relative_to(path)} is not a readable Parquet file.") from None
        if total > MAX_BYTES:
            raise DataError(f"{path.name}: its files for this split unpack to over the {MAX_BYTES / 2**30:.1f} GiB the "
                            "studio reads at once.")


def _file_type(name: str) -> str:
    """'.jsonl' for train.jsonl and for train.jsonl.gz."""
    suffix = Path(name).suffix.lower()
    return Path(Path(name).stem).suffix.lower() if suffix in COMPRESSED else suffix
