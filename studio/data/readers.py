"""Read data files into plain rows (a list of dicts), with errors that name the file, line and field.

    rows = read_rows("train.jsonl")        # .json .jsonl .csv .tsv .parquet .txt, or a dataset folder

Every failure is a `DataError` carrying one sentence, e.g.
"train.jsonl line 17: not valid JSON (Expecting ',' delimiter at column 30)."
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from studio.data.rows import BROKEN, NO_DATA, DataError, ReadResult
from studio.data.text_formats import read_csv, read_json, read_jsonl, read_txt

__all__ = ["BROKEN", "NO_DATA", "DataError", "ReadResult", "read_rows", "joined"]

SUFFIXES = (".json", ".jsonl", ".ndjson", ".csv", ".tsv", ".parquet", ".txt")
COMPRESSED = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zst": "zstd", ".zstd": "zstd"}
"""Compressed forms of the text formats (train.jsonl.gz, as HH-RLHF is published)."""
UPLOAD_SUFFIXES = SUFFIXES + tuple(COMPRESSED)
MAX_BYTES = int(os.environ.get("STUDIO_MAX_DATA_BYTES", str(1 << 30)))
"""Files above this size are refused with a hint instead of exhausting memory (default 1 GiB)."""


def read_rows(path: str | os.PathLike, split: str = "train", subset: str | None = None) -> ReadResult:
    """Read a data file or a dataset folder (saved with save_to_disk, or laid out as on the hub, where `subset`
    and `split` pick the rows); message trees come back joined into conversations."""
    if not str(path).strip():
        raise DataError(NO_DATA)
    return joined(_read_path(Path(path), split, subset))


def joined(read: ReadResult) -> ReadResult:
    """Message-tree rows (OpenAssistant's) become one conversation per tree; other rows pass through."""
    from studio.data.trees import join_trees

    trees = join_trees(read.rows, read.source)
    if trees is None:
        return read
    if not trees.rows:
        raise DataError(f"{read.source}: these message trees hold no thread with an answer that passed review"
                        f" ({'; '.join(trees.notes[1:]) or 'no trees'}).")
    pairs = ReadResult(trees.pairs, read.source, read.kind, None, read.notes + trees.pair_notes,
                       places=[f"tree {r['message_tree_id']}" for r in trees.pairs])
    return ReadResult(trees.rows, read.source, read.kind, None, read.notes + trees.notes, pairs,
                      [f"tree {r['message_tree_id']}" for r in trees.rows])


def _read_path(path: Path, split: str, subset: str | None) -> ReadResult:
    name = path.name
    if path.is_dir():
        from studio.data.folders import read_folder

        return read_folder(path, split, subset)
    if not path.exists():
        raise DataError(f"{path}: no such file.")
    refuse_choice_in_a_file(path, split, subset)
    suffix = path.suffix.lower()
    compression = COMPRESSED.get(suffix)
    if compression:
        suffix = Path(path.stem).suffix.lower()
        if suffix not in SUFFIXES or suffix == ".parquet":
            raise DataError(f"{name}: a {compression} file must hold one of .json, .jsonl, .csv, .tsv or .txt "
                            "(named like train.jsonl.gz).")
    if suffix not in SUFFIXES:
        raise DataError(f"{name}: files of type '{suffix or 'none'}' are not read; use "
                        f"{', '.join(SUFFIXES)} (also compressed: .gz, .bz2, .xz, .zst) or a saved dataset folder.")
    size = path.stat().st_size
    if size == 0:
        raise DataError(f"{name}: the file is empty.")
    if size > MAX_BYTES:
        raise DataError(f"{name}: the file is {size / 2**30:.1f} GiB, over the {MAX_BYTES / 2**30:.1f} GiB the "
                        "studio reads at once; split it, or save it with datasets.save_to_disk and load the folder.")
    if suffix == ".parquet":
        return _read_parquet(path)
    raw = _raw(path, compression)
    text = _decode(path, raw)
    if not text.strip():
        raise DataError(f"{name}: the file holds only whitespace.")
    if suffix in (".jsonl", ".ndjson"):
        return read_jsonl(text, name)
    if suffix == ".json":
        return read_json(text, name)
    if suffix in (".csv", ".tsv"):
        return read_csv(text, name, sep="\t" if suffix == ".tsv" else ",")
    return read_txt(text, name, table=_utf16(raw) is not None)


def names_a_file(source: str) -> bool:
    """Whether a name that is not on disk was meant as a data file ('train.jsonl', 'data/x.csv.gz') rather than a
    hub id, whose names may hold dots too ('teknium/OpenHermes-2.5')."""
    suffixes = [x.lower() for x in Path(str(source).strip()).suffixes[-2:]]
    return bool(suffixes) and (suffixes[-1] in SUFFIXES or suffixes[-1] in COMPRESSED)


def refuse_choice_in_a_file(path: Path, split: str, subset: str | None) -> None:
    """A split or subset named for one file would be passed over in silence: refuse it instead."""
    what = source_name(path, path.name)
    if subset:
        raise DataError(f"{what} is one file, with no subsets: the subset '{subset}' is chosen in a hub dataset or "
                        "a dataset folder (leave it empty).")
    if split != "train":
        raise DataError(f"{what} is one file, with no splits: the split '{split}' is chosen in a hub dataset or a "
                        "dataset folder (leave it empty, or train).")


def source_name(path: Path, source: str) -> str:
    """A saved dataset's file by the dataset's name ('The saved dataset arena (v2, train split)'), others as read."""
    version = path.parent
    if version.name[:1] == "v" and version.name[1:].isdigit() and version.parent.parent.name == "datasets" \
            and path.stem in ("train", "eval") and (version / "meta.json").is_file():
        return f"The saved dataset {version.parent.name} ({version.name}, {path.stem} split)"
    return source


def _raw(path: Path, compression: str | None) -> bytes:
    """The file's bytes, decompressed; a decompressed size over MAX_BYTES is refused part way."""
    if compression is None:
        return path.read_bytes()
    with _unpacking(path, compression) as stream:
        raw = stream.read(MAX_BYTES + 1)
    if len(raw) > MAX_BYTES:
        raise DataError(f"{path.name}: unpacked, the file is over the {MAX_BYTES / 2**30:.1f} GiB the studio reads "
                        "at once; split it.")
    return raw


def unpacked_size(path: Path, limit: int) -> int:
    """The size of a file once decompressed (a Parquet file's columns uncompressed, by its footer; its own size if
    it is not compressed), counted up to `limit` + 1."""
    compression = COMPRESSED.get(path.suffix.lower())
    if path.suffix.lower() == ".parquet":
        return _parquet_size(path, limit)
    if compression is None:
        return path.stat().st_size
    total = 0
    with _unpacking(path, compression) as stream:
        while total <= limit:
            chunk = stream.read(1 << 20)
            if not chunk:
                break
            total += len(chunk)
    return total


def _parquet_size(path: Path, limit: int) -> int:
    """What a Parquet file's rows take once read, up to `limit` + 1. Its footer gives the columns' size before
    compression but not before dictionary encoding (a megabyte repeated in 100 rows is stored once), so the rows
    are then counted in batches small enough that none can pass `limit` on its own."""
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
        meta = parquet.metadata
        stored = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        if stored > limit:
            return stored
        total = 0  # no single value is larger than `stored`: batches of limit // stored rows stay under `limit`
        for batch in parquet.iter_batches(batch_size=max(1, min(1024, limit // max(stored, 1)))):
            total += batch.nbytes
            if total > limit:
                break
        return total
    except Exception:  # pyarrow raises several types for damaged files
        raise DataError(f"{path.name}: not a readable Parquet file.") from None


def data_bytes(path: Path, limit: int) -> int:
    """What a data file, or the files of a folder (a clone's .git left aside), unpack to, counted until the count
    passes `limit`; a file gone meanwhile counts 0."""
    if not path.is_dir():
        return unpacked_size(path, limit)
    total = 0
    for top, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if d != ".git"]
        for name in files:
            file = Path(top) / name
            if file.is_symlink():
                continue
            try:
                total += unpacked_size(file, limit - total)
            except OSError:
                continue
            if total > limit:
                return total
    return total


@contextmanager
def _unpacking(path: Path, compression: str) -> Iterator[Any]:
    """A stream of the file's decompressed bytes; a damaged file is one sentence."""
    import bz2
    import gzip
    import lzma

    try:
        if compression == "zstd":
            import pyarrow as pa

            stream: Any = pa.CompressedInputStream(pa.OSFile(str(path)), "zstd")
        else:
            stream = {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}[compression](path, "rb")
        with stream:
            yield stream
    except (OSError, EOFError, lzma.LZMAError, ValueError) as err:
        what = "ends early (is it truncated?)" if isinstance(err, EOFError) or "end" in str(err).lower() \
            else f"cannot be read as {compression} ({str(err).splitlines()[0] if str(err) else type(err).__name__})"
        raise DataError(f"{path.name}: the {compression} file {what}.") from None


def _decode(path: Path, raw: bytes) -> str:
    codec = _utf16(raw)
    if codec is not None:
        try:
            return raw.decode(codec)
        except UnicodeDecodeError:
            raise DataError(f"{path.name}: the file starts as UTF-16 text but does not read as UTF-16 (is it cut "
                            "short?); save it as UTF-8.") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        at = err.start + (len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0)  # counted after a BOM
        line = raw.count(b"\n", 0, at) + 1
        byte = raw[at:at + 1]
        try:  # Excel's CSV on a Western Windows: say so, and how to save it instead
            raw.decode("cp1252")
            hint = (f", '{byte.decode('cp1252')}' in Windows-1252, the encoding Excel gives a plain CSV on Western "
                    "systems); save it as UTF-8 (in Excel: 'CSV UTF-8').")
        except UnicodeDecodeError:
            hint = "); save the file as UTF-8."
        raise DataError(f"{path.name} line {line}: not UTF-8 text (byte 0x{byte[0]:02x} at offset {at}"
                        + hint) from None
    if "\x00" in text.rstrip("\x00"):  # NUL is UTF-8 too, but no text format holds one
        raise DataError(f"{path.name} line {text.count(chr(10), 0, text.index(chr(0))) + 1}: holds NUL bytes, as "
                        "UTF-16 or UTF-32 text without a byte-order mark does, or a file that is not text; save it "
                        "as UTF-8.")
    return text


def _utf16(raw: bytes) -> str | None:
    """The codec of UTF-16 text, with a byte-order mark or without one; None for other bytes."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return _utf16_without_mark(raw)


def _utf16_without_mark(raw: bytes) -> str | None:
    """'utf-16-le' or '-be' for text written so without a byte-order mark (every other byte of mostly-ASCII
    text is zero), else None."""
    head = raw[:4096] if len(raw) % 2 == 0 else b""
    if len(head) < 8:
        return None
    for odd, even, codec in ((head[1::2], head[0::2], "utf-16-le"), (head[0::2], head[1::2], "utf-16-be")):
        if odd.count(0) >= 0.9 * len(odd) and even.count(0) <= 0.02 * len(even):
            return codec
    return None


def _read_parquet(path: Path) -> ReadResult:
    try:
        import pyarrow.parquet as pq

        table = pq.read_table(path)
    except Exception as err:  # pyarrow raises several types for damaged files
        raise DataError(f"{path.name}: not a readable Parquet file ({str(err).splitlines()[0]}).") from None
    rows = table.to_pylist()
    if not rows:
        raise DataError(f"{path.name}: the table has no rows.")
    return ReadResult(rows, path.name, "parquet")
