"""Readers: every file type, and one clear sentence for every kind of broken file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from studio.data.readers import DataError, read_rows
from studio.data.validate import build_report

DATA = os.path.join(os.path.dirname(__file__), "assets", "data")


@pytest.mark.parametrize("name, kind, rows", [
    ("alpaca.json", "json", 5), ("sharegpt.jsonl", "jsonl", 4), ("prompt_completion.csv", "csv", 3),
    ("qa.tsv", "tsv", 2), ("corpus.txt", "txt", 3), ("dolly.jsonl", "jsonl", 2),
])
def test_reads_each_file_type(name, kind, rows):
    result = read_rows(os.path.join(DATA, name))
    assert result.kind == kind and len(result.rows) == rows


def test_jsonl_keeps_file_line_numbers_across_blank_lines():
    result = read_rows(os.path.join(DATA, "sharegpt.jsonl"))
    assert result.where(2) == "line 4"  # a blank line sits between rows 2 and 3


def test_parquet_and_saved_folder(tmp_path):
    import datasets

    ds = datasets.Dataset.from_list([{"prompt": "a", "completion": "b"}, {"prompt": "c", "completion": "d"}])
    ds.to_parquet(str(tmp_path / "x.parquet"))
    assert read_rows(tmp_path / "x.parquet").rows[1] == {"prompt": "c", "completion": "d"}
    ds.save_to_disk(str(tmp_path / "saved"))
    assert len(read_rows(tmp_path / "saved").rows) == 2
    datasets.DatasetDict({"train": ds}).save_to_disk(str(tmp_path / "dd"))
    assert len(read_rows(tmp_path / "dd").rows) == 2
    with pytest.raises(DataError, match="no split 'test'"):
        read_rows(tmp_path / "dd", split="test")


def test_json_wrappers_and_columns(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"data": [{"text": "x"}]}))
    assert read_rows(tmp_path / "a.json").rows == [{"text": "x"}]
    (tmp_path / "b.json").write_text(json.dumps({"prompt": ["p1", "p2"], "completion": ["c1", "c2"]}))
    assert read_rows(tmp_path / "b.json").rows[1] == {"prompt": "p2", "completion": "c2"}
    (tmp_path / "c.json").write_text('{"text": "a"}\n{"text": "b"}\n')  # JSON Lines named .json
    got = read_rows(tmp_path / "c.json")
    assert len(got.rows) == 2 and got.notes


def write(tmp_path, name, data: bytes):
    p = tmp_path / name
    p.write_bytes(data)
    return p


@pytest.mark.parametrize("name, data, message", [
    ("empty.jsonl", b"", r"empty.jsonl: the file is empty"),
    ("blank.json", b"  \n\n ", r"blank.json: the file holds only whitespace"),
    ("cut.json", b'[{"prompt": "a", "completion": "b"}, {"prompt": "c", "comp', r"cut.json line 1: the JSON ends early"),
    ("bad.jsonl", b'{"text" "b"}\n', r"bad.jsonl line 1: not valid JSON \(Expecting ':' delimiter"),
    ("allbad.jsonl", b'{"text" "b"}\n[1]\n', r"allbad.jsonl line 1: .*; none of its 2 lines is usable"),
    ("latin.jsonl", '{"text": "caf\xe9"}\n'.encode("latin-1"), r"latin.jsonl line 1: not UTF-8 text \(byte 0xe9"),
    ("excel.csv", 'prompt,completion\nCoût ?,Dix €\n'.encode("cp1252"),
     r"excel.csv line 2: not UTF-8 text \(byte 0xfb at offset 20, 'û' in Windows-1252, the encoding Excel gives a "
     r"plain CSV on Western systems\); save it as UTF-8 \(in Excel: 'CSV UTF-8'\)\.$"),
    ("bom.csv", b"\xef\xbb\xbfab\ncd\xe9f\n", r"bom.csv line 2: not UTF-8 text \(byte 0xe9 at offset 8, 'é' in Windows"),
    ("utf16.csv", b"\xff\xfea\x00b", r"utf16.csv: the file starts as UTF-16 text but does not read as UTF-16"),
    ("gbk.csv", b"prompt,completion\n\x81\x81\n", r"gbk.csv line 2: not UTF-8 text \(byte 0x81 at offset 18\); "
                                                     r"save the file as UTF-8\.$"),
    ("quote.csv", b'prompt,completion\n"hello,world\nbye,now\n', r"quote.csv: row 1: a quote is opened and never closed"),
    ("fields.csv", b'prompt,completion\na,b\nc,d,e\n', r"fields.csv: line 3: expected 2 fields, found 3"),
    ("list.jsonl", b'[1, 2]\n', r"list.jsonl line 1: each line must be a JSON object"),
    ("scalar.json", b'42', r"scalar.json: expected a list of objects, found a number"),
    ("mixed.json", b'[{"a": 1}, 7]', r"mixed.json row 2: expected an object"),
    ("header.csv", b'prompt,completion\n', r"header.csv: a header but no rows"),
    ("x.xlsx", b'PK..', r"x.xlsx: files of type '.xlsx' are not read"),
    ("broken.parquet", b'PAR1 not really', r"broken.parquet: not a readable Parquet file"),
])
def test_broken_files_get_one_sentence(tmp_path, name, data, message):
    with pytest.raises(DataError, match=message) as info:
        read_rows(write(tmp_path, name, data))
    assert "\n" not in str(info.value)


def test_broken_jsonl_lines_are_row_problems_not_fatal(tmp_path):
    path = write(tmp_path, "cut.jsonl", b'{"text": "a"}\n{"text" "b"}\n\n{"text": "c"}\n{"text": "d')
    report = build_report(read_rows(path))
    assert report.format == "text" and len(report.usable) == 2
    problems = {p["where"]: p["problem"] for p in report.problem_rows()}
    assert problems["line 2"].startswith("not valid JSON (Expecting ':' delimiter")
    assert problems["line 5"].endswith("(the file may be cut short)")


def test_huge_file_is_refused_without_reading_it(tmp_path):
    big = tmp_path / "huge.jsonl"
    with open(big, "wb") as fh:  # a sparse 2 GiB file: no disk or memory is spent on it
        fh.truncate(2 * 1024**3)
    with pytest.raises(DataError, match=r"huge.jsonl: the file is 2.0 GiB, over the 1.0 GiB"):
        read_rows(big)


def test_missing_file_and_not_a_saved_folder(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_rows(tmp_path / "nope.jsonl")
    (tmp_path / "folder").mkdir()
    with pytest.raises(DataError, match="folder is not a dataset folder: neither saved with datasets.save_to_disk"):
        read_rows(tmp_path / "folder")


def test_parquet_with_nested_columns_of_the_wrong_type(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"messages": pa.array([[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
                                            [{"role": "user", "content": "x"}]]),
                      "other": [1, 2]})
    pq.write_table(table, tmp_path / "ok.parquet")
    report = build_report(read_rows(tmp_path / "ok.parquet"))
    assert report.format == "messages" and len(report.usable) == 1
    assert "no assistant turn" in report.problem_rows()[0]["problem"]
    wrong = pa.table({"messages": pa.array([{"role": "user", "content": "hi"}]), "id": [1]})
    pq.write_table(wrong, tmp_path / "wrong.parquet")
    report = build_report(read_rows(tmp_path / "wrong.parquet"), fmt="messages")
    assert report.problem_rows()[0]["problem"] == "'messages' must be a list of turns, found an object"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400), suffix=st.sampled_from([".json", ".jsonl", ".csv", ".tsv", ".txt", ".parquet"]))
def test_random_bytes_never_escape_as_tracebacks(tmp_path, data, suffix):
    path = write(tmp_path, "fuzz" + suffix, data)
    try:
        report = build_report(read_rows(path))
    except DataError as err:
        assert "\n" not in str(err)
        return
    assert report.total_rows >= 1


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["messages", "role", "content", "from", "value", "prompt", "chosen", "rejected",
                         "instruction", "output", "text", "conversations", "completion", "x"]), children, max_size=5),
    max_leaves=25)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(json_values, min_size=1, max_size=6))
def test_random_json_never_escapes(tmp_path, rows):
    path = tmp_path / "fuzz.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    try:
        report = build_report(read_rows(path))
    except DataError as err:
        assert "\n" not in str(err)
        return
    assert len(report.records) == report.total_rows
    for issue in report.issues:
        assert issue.message and "\n" not in issue.message


def test_json_nested_too_deeply_is_one_sentence(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(DataError, match="deep.json: the JSON is nested too deeply to read"):
        read_rows(deep)
    lines = tmp_path / "deep.jsonl"
    lines.write_text('{"messages": ' + "[" * 50_000 + "]" * 50_000 + '}\n{"text": "fine"}\n')
    result = read_rows(lines)  # one bad line is a row problem, not a rejected file
    assert len(result.rows) == 2 and "nested too deeply" in str(result.rows[0])


@pytest.mark.parametrize("ext", [".gz", ".bz2", ".xz", ".zst"])
def test_compressed_jsonl_reads_like_the_plain_file(tmp_path, ext):
    """HH-RLHF is published as train.jsonl.gz; the other compressions are common for large files too."""
    import bz2
    import gzip
    import lzma

    import pyarrow as pa

    plain = Path(DATA) / "hh.jsonl"
    raw = plain.read_bytes()
    packed = tmp_path / f"train.jsonl{ext}"
    if ext == ".zst":
        with pa.CompressedOutputStream(pa.OSFile(str(packed), "wb"), "zstd") as out:
            out.write(raw)
    else:
        packed.write_bytes({".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress}[ext](raw))
    assert read_rows(packed).rows == read_rows(plain).rows
    report = build_report(read_rows(packed))
    assert report.format == "hh" and report.usable


def test_broken_compressed_files_are_one_sentence(tmp_path, monkeypatch):
    import gzip

    from studio.data import readers

    whole = gzip.compress(b'{"text": "hello"}\n' * 1000)
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match="cut.jsonl.gz: the gzip file ends early"):
        read_rows(cut)
    fake = tmp_path / "fake.jsonl.gz"
    fake.write_text('{"text": "not packed"}\n')
    with pytest.raises(DataError, match="fake.jsonl.gz: the gzip file cannot be read as gzip"):
        read_rows(fake)
    inner = tmp_path / "data.parquet.gz"
    inner.write_bytes(gzip.compress(b"x"))
    with pytest.raises(DataError, match="must hold one of .json, .jsonl"):
        read_rows(inner)
    bomb = tmp_path / "bomb.jsonl.gz"
    bomb.write_bytes(gzip.compress(b" " * 5_000_000))  # 5 MB of nothing, packed into a few KB
    monkeypatch.setattr(readers, "MAX_BYTES", 1_000_000)
    with pytest.raises(DataError, match="bomb.jsonl.gz: unpacked, the file is over"):
        read_rows(bomb)


TOOLS = os.path.join(DATA, "written_by_tools")
ALPACA_ROWS = [("Translate 'cat' to German.", "", "Katze"), ("Give the capital of France.", "Answer in one word.", "Paris"),
               ("Quote the sign.", "", 'It said "Closed"; we left, sadly.')]


@pytest.mark.parametrize("name, note", [
    ("excel_semicolon.csv", "read with semicolons between columns (its header line has no commas)"),
    ("excel_sep_hint.csv", "read with semicolons between columns, as its first line (sep=) says"),
    ("pandas_columns.json", "read as a table pandas wrote (DataFrame.to_json)"),
    ("pandas_index.json", "read as a table pandas wrote (DataFrame.to_json)"),
    ("pandas_split.json", "read as a table pandas wrote (DataFrame.to_json)"),
])
def test_files_as_excel_and_pandas_write_them_read_as_their_rows(name, note):
    """Excel in much of Europe separates columns with ';' (and may say so on a first 'sep=;' line); pandas'
    DataFrame.to_json writes columns of {index: value} unless told otherwise."""
    read = read_rows(os.path.join(TOOLS, name))
    assert [(r["instruction"], r["input"], r["output"]) for r in read.rows] == ALPACA_ROWS
    assert read.notes == ([note] if note else [])
    assert build_report(read).format == "alpaca"


def test_a_header_spaced_after_its_commas_names_the_columns():
    read = read_rows(os.path.join(TOOLS, "spaced_header.csv"))
    assert read.rows[0] == {"prompt": "Where is my parcel?", "completion": "On its way."}
    assert build_report(read).format == "prompt_completion"


def test_nan_and_infinity_in_json_are_missing_values_not_words(tmp_path):
    """json.dump writes NaN for a pandas frame's empty cells: an empty input is no input, and an answer that is
    NaN leaves its row out rather than teaching the model to say 'nan'."""
    read = read_rows(os.path.join(TOOLS, "pandas_nan.json"))
    assert read.notes == ["3 NaN or Infinity values read as missing"]
    report = build_report(read)
    assert report.format == "alpaca" and len(report.usable) == 2
    assert [m["content"] for m in report.usable[0]["messages"]] == ["Name a colour.", "Blue"]
    assert report.problem_rows(1)[0]["where"] == "row 2"
    lines = tmp_path / "inf.jsonl"
    lines.write_text('{"prompt": "How big?", "completion": Infinity}\n{"prompt": "And this?", "completion": "Small."}\n')
    report = build_report(read_rows(lines))
    assert [r["messages"][-1]["content"] for r in report.usable] == ["Small."]
    assert "nan" not in json.dumps(report.usable).lower() and "inf" not in json.dumps(report.usable)


def test_tab_separated_files_keep_their_quotes_as_written_unless_quoted_as_csv():
    """GLUE's and most TSV files hold quotes as plain characters, one row a line; pandas quotes a field that
    holds a tab or a quote, as CSV does. Each reads as written."""
    glue = read_rows(os.path.join(TOOLS, "glue_style.tsv"))
    assert [r["prompt"] for r in glue.rows] == ['"Hello" he said, what next?', 'She wrote "see you', "A plain question"]
    assert glue.notes == ["quotes read as written (the file does not quote its fields as CSV does)"]
    quoted = read_rows(os.path.join(TOOLS, "pandas_quoted.tsv"))
    assert [r["prompt"] for r in quoted.rows] == ['He said "hi"\tthen left', "Plain"] and not quoted.notes


def test_json_lines_printed_over_several_lines_or_as_one_list_are_read():
    pretty = read_rows(os.path.join(TOOLS, "jq_pretty.jsonl"))
    assert [r["completion"] for r in pretty.rows] == ["Katze", "Paris", 'It said "Closed"; we left, sadly.']
    assert pretty.notes == ["read as JSON objects one after another, each over several lines"]
    listed = read_rows(os.path.join(DATA, "alpaca.json")).rows
    as_lines = Path(TOOLS).parent.parent / "tmp_list.jsonl"
    try:
        as_lines.write_text(json.dumps(listed, indent=2))
        read = read_rows(as_lines)
        assert read.rows == listed and read.notes == ["read as one JSON list (the file is named as JSON Lines)"]
    finally:
        as_lines.unlink()


def test_line_separators_inside_json_strings_do_not_split_rows():
    read = read_rows(os.path.join(TOOLS, "line_separator_inside.jsonl"))
    assert [r["prompt"] for r in read.rows] == ["First line\u2028second line", "Next\x85one"]
    assert read.where(1) == "line 2"


def test_openai_developer_messages_and_alpaca_history_saved_as_csv_are_read():
    """OpenAI's chat files now open with a 'developer' message (the system message by another name); a CSV
    export keeps Alpaca's history as JSON text."""
    chat = build_report(read_rows(os.path.join(TOOLS, "openai_developer_role.jsonl")))
    assert chat.format == "messages" and len(chat.usable) == 2
    assert [m["role"] for m in chat.usable[0]["messages"]] == ["system", "user", "assistant"]
    alpaca = build_report(read_rows(os.path.join(TOOLS, "alpaca_history.csv")))
    assert alpaca.format == "alpaca" and len(alpaca.usable) == 2
    assert [m["content"] for m in alpaca.usable[0]["messages"]] == ["Translate 'cat' to German.", "Katze.",
                                                                    "And in French?", "Chat."]


def test_json_holding_lists_of_rows_under_other_names_is_read_or_refused_by_name(tmp_path):
    row = {"prompt": "Q?", "completion": "A."}
    named = tmp_path / "named.json"
    named.write_text(json.dumps({"training": [row, row], "testing": [row]}))
    assert len(read_rows(named).rows) == 2
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"easy": [row, row], "hard": [row]}))
    with pytest.raises(DataError, match=r"other.json: it holds several lists of rows \(easy: 2, hard: 1\); name the one"):
        read_rows(other)


def test_excels_unicode_text_and_utf16_without_a_mark_are_read():
    """Excel's 'Unicode Text' export is a UTF-16 table with tabs, named .txt; some Windows tools write UTF-16
    with no byte-order mark."""
    table = read_rows(os.path.join(TOOLS, "excel_unicode_text.txt"))
    assert table.rows == [{"instruction": "Translate cat", "output": "Katze"},
                          {"instruction": "Translate dog", "output": "Hund"}]
    assert table.notes == ["read as tab-separated columns: every line holds the same number of tabs"]
    assert build_report(table).format == "alpaca"
    assert read_rows(os.path.join(TOOLS, "utf16_no_mark.jsonl")).rows == [{"prompt": "Q?", "completion": "A."}]
    prose = read_rows(os.path.join(DATA, "corpus.txt"))  # plain text stays plain text
    assert prose.kind == "txt" and set(prose.rows[0]) == {"text"}


def test_shapes_that_look_like_others_are_read_as_what_they_are(tmp_path):
    """Prose indented with tabs is no table; a TSV of MNLI's kind keeps its quotes though one cell is wholly
    quoted; a one-column CSV whose name holds ';' stays one column; equal lists of rows are not zipped together."""
    book = tmp_path / "book.txt"
    book.write_text("\tIt was the best of times.\n\n\tIt was the worst of times.\n")
    assert read_rows(book).rows == [{"text": "It was the best of times."}, {"text": "It was the worst of times."}]
    nli = tmp_path / "dev.tsv"
    nli.write_text('premise\thypothesis\tlabel\n"I\'m not sure," she said.\tShe was unsure.\tentailment\n'
                   '"Yes."\tHe agreed.\tentailment\n')
    assert [r["premise"] for r in read_rows(nli).rows] == ['"I\'m not sure," she said.', '"Yes."']
    one = tmp_path / "notes.csv"
    one.write_text("my text; notes\nhello\nworld\n")
    assert read_rows(one).rows == [{"my text; notes": "hello"}, {"my text; notes": "world"}]
    splits = tmp_path / "splits.json"
    splits.write_text(json.dumps({"dev": [{"prompt": "a", "completion": "b"}], "test": [{"prompt": "c", "completion": "d"}]}))
    with pytest.raises(DataError, match=r"it holds several lists of rows \(dev: 1, test: 1\)"):
        read_rows(splits)
    wide = tmp_path / "wide.jsonl"  # UTF-16 whose length is odd (cut by one byte): NUL bytes, not text
    wide.write_bytes('{"prompt": "hi", "completion": "yo"}\n'.encode("utf-16-le")[:-1])
    with pytest.raises(DataError, match="wide.jsonl line 1: holds NUL bytes, as UTF-16 or UTF-32 text"):
        read_rows(wide)
