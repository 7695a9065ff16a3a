"""Read data files into plain rows (a list of dicts), with errors that name the file, line and field.

    rows = read_rows("train.jsonl")        # .json .jsonl .csv .tsv .parquet .txt, or a dataset folder

Every failure is a `DataError` carrying one sentence, e.g.
"train.jsonl line 17: not valid JSON (Expecting ',' delimiter at column 30)."
"""

from __future__ import annotations

import codecs
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.errors import StudioError

SUFFIXES = (".json", ".jsonl", ".ndjson", ".csv", ".tsv", ".parquet", ".txt")
COMPRESSED = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zst": "zstd", ".zstd": "zstd"}
"""Compressed forms of the text formats (train.jsonl.gz, as HH-RLHF is published)."""
UPLOAD_SUFFIXES = SUFFIXES + tuple(COMPRESSED)
MAX_BYTES = int(os.environ.get("STUDIO_MAX_DATA_BYTES", str(1 << 30)))
"""Files above this size are refused with a hint instead of exhausting memory (default 1 GiB)."""


NO_DATA = "No data named: give a file, a saved dataset or a hub dataset id."
BROKEN = "__unreadable__"
"""Key of the stand-in row for a JSONL line that could not be parsed; its value says why."""


class DataError(StudioError):
    """A data problem described in one sentence naming the file, and the line or row where known."""


@dataclass
class ReadResult:
    rows: list[dict[str, Any]]
    source: str
    kind: str
    """json, jsonl, csv, tsv, parquet, txt, saved (datasets.save_to_disk folder), folder (laid out as on the hub)
    or hub."""
    lines: list[int] | None = None
    """For JSONL, the file line of each row (blank lines are skipped, so rows and lines can differ)."""
    notes: list[str] = field(default_factory=list)
    tree_pairs: ReadResult | None = None
    """For message trees, read as one conversation a tree: their ranked answers as preference pairs."""
    places: list[str] | None = None
    """What to call each row where it is not a line or row of the file ('tree 6aa3...' for message trees)."""

    def as_pairs(self) -> ReadResult:
        """The preference pairs of message trees (self for other rows)."""
        if self.tree_pairs is None:
            return self
        if not self.tree_pairs.rows:
            raise DataError(f"{self.source}: no question in these message trees has two answers of different "
                            "rank, so they give no preference pairs.")
        return self.tree_pairs

    def where(self, index: int) -> str:
        """'line 12' for JSONL, 'row 12' otherwise (1-based), or the row's own name."""
        if self.places is not None and index < len(self.places):
            return self.places[index]
        if self.lines is not None and index < len(self.lines):
            return f"line {self.lines[index]}"
        return f"row {index + 1}"


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
        raise DataError(f"{name}: no such file.")
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
    text = _decode(path, _raw(path, compression))
    if not text.strip():
        raise DataError(f"{name}: the file holds only whitespace.")
    if suffix in (".jsonl", ".ndjson"):
        return _read_jsonl(text, name)
    if suffix == ".json":
        return _read_json(text, name)
    if suffix in (".csv", ".tsv"):
        return _read_csv(path, text, name, sep="\t" if suffix == ".tsv" else ",")
    return _read_txt(text, name)


def refuse_choice_in_a_file(path: Path, split: str, subset: str | None) -> None:
    """A split or subset named for one file would be passed over in silence: refuse it instead."""
    what = source_name(path, path.name)
    if subset:
        raise DataError(f"{what} is one file, with no subsets: the subset '{subset}' is chosen in a hub dataset or "
                        "a dataset folder (leave it empty).")
    if split != "train":
        raise DataError(f"{what} is one file, with no splits: the split '{split}' is chosen in a hub dataset or a "
                        "dataset folder (leave it as train).")


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
    """The size of a file once decompressed (its own size if it is not compressed), counted up to `limit` + 1."""
    compression = COMPRESSED.get(path.suffix.lower())
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
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError:
            raise DataError(f"{path.name}: the file starts as UTF-16 text but does not read as UTF-16 (is it cut "
                            "short?); save it as UTF-8.") from None
    try:
        return raw.decode("utf-8-sig")
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


TOO_DEEP = "the JSON is nested too deeply to read (lists or objects inside each other hundreds of levels down)"


def _read_jsonl(text: str, name: str) -> ReadResult:
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    broken = 0
    decoder = json.JSONDecoder()
    last = text.rstrip().count("\n") + 1
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        try:
            value = decoder.decode(line)
            problem = None if isinstance(value, dict) else \
                f"each line must be a JSON object with named fields, not {_kind(value)}"
        except json.JSONDecodeError as err:
            hint = " (the file may be cut short)" if number >= last else ""
            problem = f"not valid JSON ({_msg(err)} at column {err.colno}){hint}"
        except RecursionError:
            problem = TOO_DEEP
        if problem is not None:  # one bad line is a row problem; the other rows stay usable
            broken += 1
            value = {BROKEN: problem}
        rows.append(value)
        lines.append(number)
    if broken == len(rows):
        if not rows:
            raise DataError(f"{name}: no rows found.")
        first = next(r[BROKEN] for r in rows)
        raise DataError(f"{name} line {lines[0]}: {first}" + ("." if broken == 1 else
                                                                f"; none of its {broken} lines is usable."))
    return ReadResult(rows, name, "jsonl", lines=lines)


def _read_json(text: str, name: str) -> ReadResult:
    try:
        value = json.loads(text)
    except RecursionError:
        raise DataError(f"{name}: {TOO_DEEP}.") from None
    except json.JSONDecodeError as err:
        if _unbalanced(text):
            raise DataError(f"{name} line {err.lineno}: the JSON ends early (is the file truncated?).") from None
        if text.lstrip().startswith("{") and "\n{" in text:
            try:  # JSON Lines saved with a .json name
                result = _read_jsonl(text, name)
                result.notes.append("read as JSON Lines (one object per line)")
                return result
            except DataError:
                pass
        raise DataError(f"{name} line {err.lineno}: not valid JSON ({_msg(err)} at column {err.colno}).") from None
    if isinstance(value, dict):
        value = _unwrap(value, name)
    if not isinstance(value, list):
        raise DataError(f"{name}: expected a list of objects, found {_kind(value)}.")
    if not value:
        raise DataError(f"{name}: the list is empty.")
    for i, row in enumerate(value):
        if not isinstance(row, dict):
            raise DataError(f"{name} row {i + 1}: expected an object with named fields, found {_kind(row)}.")
    return ReadResult(value, name, "json")


def _msg(err: json.JSONDecodeError) -> str:
    return err.msg.removesuffix(" at").removesuffix(" starting at")


def _unbalanced(text: str) -> bool:
    """True when brackets or a string are still open at the end: the file was cut short."""
    depth, in_string, escape = 0, False, False
    for ch in text:
        if in_string:
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
    return in_string or depth > 0


def _one_conversation(value: dict[str, Any]) -> bool:
    """{"messages": [{"role": ..., "content": ...}, ...], ...}: one example, not columns of many."""
    for key in ("messages", "conversations", "conversation", "chat"):
        turns = value.get(key)
        if isinstance(turns, list) and turns and all(isinstance(t, dict) for t in turns) and \
                any(k in turns[0] for k in ("role", "from")):
            return True
    return False


def _unwrap(value: dict[str, Any], name: str) -> Any:
    """Accept {"data": [...]}, {"train": [...]} and column-oriented {"col": [..], "col2": [..]}."""
    lists = {k: v for k, v in value.items() if isinstance(v, list)}
    for key in ("data", "train", "rows", "examples", "records"):
        if isinstance(value.get(key), list):
            return value[key]
    if _one_conversation(value):
        return [value]
    if lists and len(lists) == len(value):
        lengths = {len(v) for v in lists.values()}
        if len(lengths) == 1:
            n = lengths.pop()
            return [{k: v[i] for k, v in lists.items()} for i in range(n)]
        raise DataError(f"{name}: the columns have different lengths ({', '.join(f'{k}: {len(v)}' for k, v in lists.items())}).")
    if len(lists) == 1:
        return next(iter(lists.values()))
    return [value]  # a single example


def _read_csv(path: Path, text: str, name: str, sep: str) -> ReadResult:
    import io

    import pandas as pd

    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, engine="c")
    except pd.errors.EmptyDataError:
        raise DataError(f"{name}: no columns found.") from None
    except pd.errors.ParserError as err:
        raise DataError(f"{name}: {_csv_problem(str(err))}.") from None
    if frame.empty:
        raise DataError(f"{name}: a header but no rows.")
    unnamed = [c for c in frame.columns if str(c).startswith("Unnamed:")]
    if len(unnamed) == len(frame.columns):
        raise DataError(f"{name}: the first line must name the columns.")
    rows = frame.drop(columns=unnamed).to_dict(orient="records")
    return ReadResult(rows, name, "tsv" if sep == "\t" else "csv")


def _csv_problem(message: str) -> str:

    text = message.splitlines()[0]
    if m := re.search(r"EOF inside string starting at row (\d+)", text):
        return f"row {int(m.group(1))}: a quote is opened and never closed"
    if m := re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", text):
        return f"line {m.group(2)}: expected {m.group(1)} fields, found {m.group(3)} (an unquoted separator?)"
    return f"cannot be parsed as CSV ({text})"


def _read_txt(text: str, name: str) -> ReadResult:
    """Blank-line separated paragraphs become rows; without blank lines, each line is a row."""
    normal = text.replace("\r\n", "\n")
    parts = [p.strip() for p in normal.split("\n\n")] if "\n\n" in normal.strip() else normal.split("\n")
    rows = [{"text": p.strip()} for p in parts if p.strip()]
    return ReadResult(rows, name, "txt")


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


def _kind(value: Any) -> str:
    return {list: "a list", str: "text", int: "a number", float: "a number", bool: "true/false",
            type(None): "null", dict: "an object"}.get(type(value), type(value).__name__)
