"""Hub datasets: read one by id, check it (its subset and split) before a run, and say in a few words why the
datasets library could not load it.

    rows = read_hub("tatsu-lab/alpaca", split="train")
    check_hub_dataset("openai/gsm8k", subset="main", split="test")
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from studio.data.readers import DataError, ReadResult, joined

FILE_LOADERS = frozenset({
    "arrow", "audiofolder", "cache", "conll", "csv", "eval", "fasta", "fastq", "genbank", "generator", "harbor",
    "hdf5", "iceberg", "imagefolder", "json", "lance", "meshfolder", "mmcif", "niftifolder", "pandas", "parquet",
    "pdb", "pdffolder", "spark", "sql", "text", "tsfile", "videofolder", "vortex", "webdataset", "xml"})
"""Names that the datasets library takes as its own file loaders, not hub datasets: without data files they read
every matching file under the current folder."""


def refuse_loader_name(dataset_id: str) -> None:
    name = str(dataset_id).strip().lower()
    if name in FILE_LOADERS or ("/" not in name and name.endswith("folder")):
        raise DataError(f"'{dataset_id}' names one of the datasets library's own file loaders, not a hub dataset: "
                        "give the file itself, or a hub dataset as org/name.")


def check_hub_dataset(dataset_id: str, subset: str | None = None, split: str = "train") -> None:
    """Fail with one sentence, before any training starts, when a hub dataset can be neither reached nor
    found in the local cache (only its metadata is fetched)."""
    import datasets

    refuse_loader_name(dataset_id)
    _refuse_when_offline(dataset_id)
    try:
        builder = datasets.load_dataset_builder(dataset_id, subset)
    except Exception as err:
        raise DataError(f"Hub dataset '{dataset_id}' could not be loaded: {hub_reason(err)}.") from None
    check_split(builder, split, f"Hub dataset '{dataset_id}'")


MAX_SPLIT_PARTS = 8
"""At most this many parts joined by '+' in a split ('train+test'): each part is its rows over again."""


def split_names(split: str, name: str) -> list[str]:
    """The split names in a split spec as the datasets library writes them ('train[:10%]+test' -> train, test);
    a spec it cannot read, or of more than MAX_SPLIT_PARTS parts, is one sentence naming `name`."""
    import datasets

    refused = DataError(f"{name}: '{split[:60]}' is not a split the studio reads (a name, a slice such as "
                        f"train[:1000] or train[:10%], or up to {MAX_SPLIT_PARTS} of them joined by +).")
    parts = str(split).split("+")
    found = [re.match(r"\s*([\w.-]+)\s*(\[[^\]]*\])?\s*$", part) for part in parts]
    if len(split) > 200 or len(parts) > MAX_SPLIT_PARTS or not all(found):
        raise refused
    try:
        datasets.ReadInstruction.from_spec(split)
    except (ValueError, AssertionError):
        raise refused from None
    return [m.group(1) for m in found if m]


def check_split(builder: Any, split: str, name: str) -> None:
    """Refuse a split the dataset does not have (known from its data files; 'train[:100]+test' names train and
    test)."""
    files = getattr(builder.config, "data_files", None) or {}
    for base in split_names(split, name):
        if files and base not in files:
            raise DataError(f"{name}: no split '{base}' (it has {', '.join(str(s) for s in files)}).")


UNREACHABLE = ("the hub cannot be reached and it is not in the local cache (is it a path that does not exist, or "
               "a saved dataset under another name?)")


def hub_reason(err: Exception) -> str:
    """Why the datasets library could not load a dataset, in a few words: a missing or unknown subset or split
    says which there are and where to name one."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    first = (lines[0] if lines else type(err).__name__).rstrip(".!")
    text = "\n".join(lines)
    if any(w in first.lower() for w in ("connect", "offline", "resolve", "reach")):
        return UNREACHABLE
    names = _listed(text)
    if first.startswith("Config name is missing") and names:
        return f"it has subsets {names}: name the one to read"
    unknown = re.match(r"BuilderConfig '(.*)' not found", first)
    if unknown and names:
        return f"no subset '{unknown.group(1)}' (it has {names})"
    unknown = re.match(r'Unknown split "(.*)"', first)
    if unknown and names:
        return f"no split '{unknown.group(1)}' (it has {names})"
    return first


def _listed(text: str) -> str:
    """'main, socratic' from a message listing "['main', 'socratic']", else ''."""
    found = re.search(r"\[([^\]]*)\]", text)
    return ", ".join(re.findall(r"'([^']*)'", found.group(1))) if found else ""


def _refuse_when_offline(dataset_id: str) -> None:
    """Refuse at once when the hub cannot be reached at all and the dataset is in no local cache: one quick
    request, so an offline user hears so at once rather than after the download's retries (about 25 s)."""
    from huggingface_hub import HfApi, constants

    if constants.HF_HUB_OFFLINE:
        return  # offline mode reads the cache by itself
    try:
        import datasets

        cached = [Path(datasets.config.HF_DATASETS_CACHE) / dataset_id.replace("/", "___"),
                  Path(constants.HF_HUB_CACHE) / f"datasets--{dataset_id.replace('/', '--')}"]
    except (AttributeError, ImportError):
        cached = []
    if any(p.exists() for p in cached):
        return
    try:
        HfApi().dataset_info(dataset_id, timeout=10)
    except Exception as err:  # no network: the HTTP client's transport errors; anything else (not found,
        # gated, private) load_dataset words itself
        if {k.__name__ for k in type(err).__mro__} & {"TransportError", "ConnectionError", "TimeoutError"}:
            raise DataError(f"Hub dataset '{dataset_id}' could not be loaded: {UNREACHABLE}.") from None


def read_hub(dataset_id: str, split: str = "train", subset: str | None = None,
             first: tuple[int, int] | None = None) -> ReadResult:
    """Read a hub dataset (needs a network unless it is cached). A local path goes to load.read_source.
    `first` = (rows, bytes): stream no more than that from the start of the split instead of downloading it whole
    (the web app's own reads: a hub split can be terabytes)."""
    import datasets

    refuse_loader_name(dataset_id)
    _refuse_when_offline(dataset_id)
    if first is not None:
        return _first_rows(dataset_id, split, subset, *first)
    try:
        ds = datasets.load_dataset(dataset_id, subset, split=split)
    except Exception as err:
        raise DataError(f"Hub dataset '{dataset_id}' could not be loaded: {hub_reason(err)}.") from None
    return joined(ReadResult(ds.to_list(), dataset_id, "hub"))


def _first_rows(dataset_id: str, split: str, subset: str | None, most_rows: int, most_bytes: int) -> ReadResult:
    """The first rows of a split, streamed: at most `most_rows`, and no more once their text passes `most_bytes`.
    A split is named plainly or as its first N rows (train[:1000])."""
    import json

    import datasets

    found = re.fullmatch(r"\s*([\w.-]+)\s*(?:\[\s*:\s*(\d+)\s*\])?\s*", str(split))
    if not found:
        raise DataError(f"Hub dataset '{dataset_id}': the web page reads a split by its name or its first rows "
                        f"(train, train[:1000]), not '{str(split)[:60]}'; a run reads any split (data.split).")
    name, asked = found.group(1), int(found.group(2)) if found.group(2) else None
    limit = min(most_rows, asked) if asked is not None else most_rows
    try:
        stream = datasets.load_dataset(dataset_id, subset, split=name, streaming=True)
        rows, size, more = [], 0, False
        for row in stream:  # a row past the bound says there was more than was read
            if len(rows) >= limit or size > most_bytes:
                more = size > most_bytes or asked is None or asked > limit
                break
            rows.append(row)
            size += len(json.dumps(row, default=str, ensure_ascii=False))
    except DataError:
        raise
    except Exception as err:
        raise DataError(f"Hub dataset '{dataset_id}' could not be loaded: {hub_reason(err)}.") from None
    notes = [f"the first {len(rows):,} rows of {dataset_id} ({name}) were read: the web page reads no more of a hub "
             "dataset (a dataset saved from here holds these rows only); a run reads the whole split"] if more else []
    source = f"{dataset_id} (its first {len(rows):,} rows)" if more else dataset_id
    return joined(ReadResult(rows, source, "hub", notes=notes))
