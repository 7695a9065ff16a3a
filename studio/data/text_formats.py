"""Text data files parsed into rows: JSON Lines, JSON, CSV / TSV and plain text, as people and other tools write
them (pandas' layouts, Excel's separators, objects printed over several lines, NaN for empty cells)."""

from __future__ import annotations

import json
import re
from typing import Any

from studio.data.rows import BROKEN, DataError, ReadResult
from studio.data.turns import kind_of

_LINE_END = re.compile(r"\r\n|\r|\n")


def _decoder(seen: list[str] | None = None) -> json.JSONDecoder:
    """Python's reader takes NaN and Infinity (pandas writes them for empty cells): read as null, a missing value,
    never as the words 'nan' or 'inf'; each one met is added to `seen`."""
    def missing(name: str) -> None:
        if seen is not None:
            seen.append(name)
    return json.JSONDecoder(parse_constant=missing)


def _constants_note(seen: list[str]) -> list[str]:
    return [f"{len(seen)} NaN or Infinity value{'s' if len(seen) > 1 else ''} read as missing"] if seen else []


TOO_DEEP = "the JSON is nested too deeply to read (lists or objects inside each other hundreds of levels down)"


def read_jsonl(text: str, name: str) -> ReadResult:
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    broken = 0
    seen: list[str] = []
    decoder = _decoder(seen)
    numbered = _LINE_END.split(text.rstrip())  # not str.splitlines: U+2028 and the like may sit inside strings
    last = len(numbered)
    for number, line in enumerate(numbered, start=1):
        line = line.strip()
        if not line:
            continue
        try:
            value = decoder.decode(line)
            problem = None if isinstance(value, dict) else \
                f"each line must be a JSON object with named fields, not {kind_of(value)}"
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
        whole = _whole_json(text, name)  # a JSON list, or objects printed over several lines (jq's way)
        if whole is not None:
            return whole
        first = next(r[BROKEN] for r in rows)
        raise DataError(f"{name} line {lines[0]}: {first}" + ("." if broken == 1 else
                                                                f"; none of its {broken} lines is usable."))
    return ReadResult(rows, name, "jsonl", lines=lines, notes=_constants_note(seen))


def read_json(text: str, name: str) -> ReadResult:
    seen: list[str] = []
    try:
        value = _decoder(seen).decode(text)
    except RecursionError:
        raise DataError(f"{name}: {TOO_DEEP}.") from None
    except json.JSONDecodeError as err:
        if _unbalanced(text):
            raise DataError(f"{name} line {err.lineno}: the JSON ends early (is the file truncated?).") from None
        if text.lstrip().startswith("{") and "\n{" in text:
            try:  # JSON Lines saved with a .json name
                result = read_jsonl(text, name)
                if result.kind == "jsonl":
                    result.notes.append("read as JSON Lines (one object per line)")
                return result
            except DataError:
                pass
        objects = _objects(text)
        if objects is not None and len(objects) > 1:
            return ReadResult(objects, name, "json", notes=[SPREAD])
        raise DataError(f"{name} line {err.lineno}: not valid JSON ({_msg(err)} at column {err.colno}).") from None
    notes = _constants_note(seen)
    if isinstance(value, dict):
        if _pandas_layout(value) is not None:
            notes.append("read as a table pandas wrote (DataFrame.to_json)")
        value = _unwrap(value, name)
    if not isinstance(value, list):
        raise DataError(f"{name}: expected a list of objects, found {kind_of(value)}.")
    if not value:
        raise DataError(f"{name}: the list is empty.")
    for i, row in enumerate(value):
        if not isinstance(row, dict):
            raise DataError(f"{name} row {i + 1}: expected an object with named fields, found {kind_of(row)}.")
    return ReadResult(value, name, "json", notes=notes)


SPREAD = "read as JSON objects one after another, each over several lines"


def _whole_json(text: str, name: str) -> ReadResult | None:
    """A .jsonl file none of whose lines is an object on its own: one JSON list, or one or more objects each
    printed over several lines (jq's way); None otherwise."""
    start = text.lstrip()[:1]
    if start == "[":
        try:
            read = read_json(text, name)
        except DataError:
            return None
        read.notes.append("read as one JSON list (the file is named as JSON Lines)")
        return read
    if start != "{":
        return None
    if _unbalanced(text):
        raise DataError(f"{name}: the JSON ends early (is the file truncated?).")
    objects = _objects(text)
    if objects is None or len(objects) > 1:
        return None if objects is None else ReadResult(objects, name, "json", notes=[SPREAD])
    rows = _unwrap(objects[0], name)  # one object: {"data": [...]} and the like, or one example
    if not rows or not all(isinstance(r, dict) for r in rows):
        return None
    return ReadResult(rows, name, "json", notes=["read as one JSON object over several lines"])


def _objects(text: str) -> list[dict[str, Any]] | None:
    """JSON objects written one after another (pretty-printed JSON Lines), or None where the text is not that."""
    decoder, at, out = _decoder(), 0, []
    space = re.compile(r"\s*")
    try:
        while (at := space.match(text, at).end()) < len(text):
            value, at = decoder.raw_decode(text, at)
            if not isinstance(value, dict):
                return None
            out.append(value)
    except (json.JSONDecodeError, RecursionError):
        return None
    return out or None


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
    """Accept {"data": [...]}, {"train": [...]}, column-oriented {"col": [..], "col2": [..]}, and what pandas'
    DataFrame.to_json writes: by columns ({"col": {"0": ..}}, its default), by index ({"0": {"col": ..}}) and
    split ({"columns": [..], "data": [[..]]})."""
    frame = _pandas_layout(value)
    if frame is not None:
        return frame
    lists = {k: v for k, v in value.items() if isinstance(v, list)}
    for key in ("data", "train", "training", "rows", "examples", "records"):
        if isinstance(value.get(key), list):
            return value[key]
    if _one_conversation(value):
        return [value]
    if lists and len(lists) == len(value):
        sizes = ", ".join(f"{k}: {len(v)}" for k, v in lists.items())
        if all(v and all(isinstance(r, dict) for r in v) for v in lists.values()):
            if all("role" in r or "from" in r for v in lists.values() for r in v):
                return [value]  # one example: its chosen and rejected turns
            raise DataError(f"{name}: it holds several lists of rows ({sizes}); name the one to train on 'train', "
                            "or save each list in a file of its own.")
        lengths = {len(v) for v in lists.values()}
        if len(lengths) == 1:
            n = lengths.pop()
            return [{k: v[i] for k, v in lists.items()} for i in range(n)]
        raise DataError(f"{name}: the columns have different lengths ({sizes}).")
    if len(lists) == 1:
        return next(iter(lists.values()))
    return [value]  # a single example


def _pandas_layout(value: dict[str, Any]) -> list[dict[str, Any]] | None:
    columns, data = value.get("columns"), value.get("data")
    if isinstance(columns, list) and isinstance(data, list) and data and \
            all(isinstance(r, list) and len(r) == len(columns) for r in data):
        return [dict(zip(map(str, columns), r)) for r in data]
    inner = list(value.values())
    if not inner or not all(isinstance(v, dict) and v for v in inner):
        return None
    if list(value) == [str(i) for i in range(len(value))]:  # by index: each value is a row
        return inner
    keys = list(inner[0])
    if keys == [str(i) for i in range(len(keys))] and all(list(v) == keys for v in inner):  # by columns
        return [{col: v[k] for col, v in value.items()} for k in keys]
    return None


def read_csv(text: str, name: str, sep: str) -> ReadResult:
    import io

    import pandas as pd

    notes: list[str] = []
    text, sep = _separator(text, sep, notes)
    header = text.partition("\n")[0]
    spaced = sep != "\t" and header.count(sep) == header.count(sep + " ") > 0  # 'prompt, completion'
    options = dict(sep=sep, dtype=str, keep_default_na=False, engine="c", skipinitialspace=spaced)
    try:
        frame = _literal_quotes(text, options, notes) if sep == "\t" else pd.read_csv(io.StringIO(text), **options)
    except pd.errors.EmptyDataError:
        raise DataError(f"{name}: no columns found.") from None
    except pd.errors.ParserError as err:
        raise DataError(f"{name}: {_csv_problem(str(err))}.") from None
    if frame.empty:
        raise DataError(f"{name}: a header but no rows.")
    frame.columns = [str(c).strip() for c in frame.columns]
    unnamed = [c for c in frame.columns if c.startswith("Unnamed:")]
    if len(unnamed) == len(frame.columns):
        raise DataError(f"{name}: the first line must name the columns.")
    rows = frame.drop(columns=unnamed).to_dict(orient="records")
    return ReadResult(rows, name, "tsv" if sep == "\t" else "csv", notes=notes)


SEPARATORS = {";": "semicolons", "\t": "tabs", "|": "bars", ",": "commas"}


def _separator(text: str, sep: str, notes: list[str]) -> tuple[str, str]:
    """The separator a CSV file uses: Excel's 'sep=;' first line when there is one (it is not a row), else a
    header line that holds no commas but semicolons, tabs or bars (Excel in much of Europe writes ';')."""
    first, _, rest = text.partition("\n")
    hint = re.fullmatch(r"\s*sep=(.)\s*", first)
    if hint and hint.group(1) in SEPARATORS:
        notes.append(f"read with {SEPARATORS[hint.group(1)]} between columns, as its first line (sep=) says")
        return rest, hint.group(1)
    if sep == "," and "," not in first:
        found = max((c for c in SEPARATORS if c != ","), key=first.count)
        second = next((line for line in _LINE_END.split(rest) if line.strip()), "")
        if first.count(found) and second.count(found) >= first.count(found):  # one column named 'a; b' stays one
            notes.append(f"read with {SEPARATORS[found]} between columns (its header line has no commas)")
            return text, found
    return text, sep


def _literal_quotes(text: str, options: dict[str, Any], notes: list[str]) -> Any:
    """A tab-separated file, read without quoting when its quotes are plain characters (GLUE's files and most
    other TSV: a line per row with as many tabs as the header, '"Hello" he said' as written), and as CSV quotes
    its fields otherwise (fields wrapped in quotes and doubled inside, or holding tabs or line ends)."""
    import csv
    import io

    import pandas as pd

    lines = [line for line in _LINE_END.split(text) if line.strip()]
    if '"' not in text or any(line.count("\t") != lines[0].count("\t") for line in lines):
        return pd.read_csv(io.StringIO(text), **options)  # no quotes, or tabs inside quoted fields
    plain = pd.read_csv(io.StringIO(text), quoting=csv.QUOTE_NONE, index_col=False, **options)
    try:
        quoted = pd.read_csv(io.StringIO(text), **options)
    except pd.errors.ParserError:
        quoted = None  # a quote opened and never closed: a plain character
    cells = [str(v) for v in plain.to_numpy().ravel() if '"' in str(v)]
    if quoted is not None and len(plain) == len(quoted) and all(_csv_quoted(v) for v in cells):
        return quoted
    if quoted is None or not plain.equals(quoted):
        notes.append("quotes read as written (the file does not quote its fields as CSV does)")
    return plain


def _csv_quoted(cell: str) -> bool:
    """'"a ""b"" c"': a cell quoted as CSV quotes one (wrapped in quotes, any inside doubled)."""
    return len(cell) > 1 and cell[0] == cell[-1] == '"' and '"' not in cell[1:-1].replace('""', "")


def _csv_problem(message: str) -> str:

    text = message.splitlines()[0]
    if m := re.search(r"EOF inside string starting at row (\d+)", text):
        return f"row {int(m.group(1))}: a quote is opened and never closed"
    if m := re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", text):
        return f"line {m.group(2)}: expected {m.group(1)} fields, found {m.group(3)} (an unquoted separator?)"
    return f"cannot be parsed as CSV ({text})"


def read_txt(text: str, name: str, table: bool = False) -> ReadResult:
    """Blank-line separated paragraphs become rows; without blank lines, each line is a row. With `table` (the text
    came as UTF-16, as Excel's 'Unicode Text' export does), lines that all hold the same number of tabs, none
    blank, are read as tab-separated columns."""
    lines = _LINE_END.split(text.strip("\r\n"))
    if table and len(lines) > 1 and lines[0].count("\t") and all(line.strip() for line in lines) and \
            all(line.count("\t") == lines[0].count("\t") for line in lines):
        read = read_csv(text, name, "\t")
        read.notes.append("read as tab-separated columns: every line holds the same number of tabs")
        return read
    normal = "\n".join(_LINE_END.split(text))
    parts = [p.strip() for p in normal.split("\n\n")] if "\n\n" in normal.strip() else normal.split("\n")
    rows = [{"text": p.strip()} for p in parts if p.strip()]
    return ReadResult(rows, name, "txt")
