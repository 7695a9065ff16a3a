"""The validation report: what a file holds, which rows are unusable and why, how long rows are.

    report = inspect_file("train.jsonl", model="tiny", max_length=512)
    report.summary()            # one paragraph for people
    report.to_dict()            # what `studio data inspect --json` prints

Problems carry the row's place in the file ('line 12' for JSONL, 'row 12' otherwise) and its field.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.data.detect import detect
from studio.data.formats import (
    SPECS,
    Detection,
    Issue,
    columns_of,
    default_mapping,
    missing_fields,
    normalise,
)
from studio.data.readers import DataError, ReadResult, read_rows
from studio.data.turns import conversation, has_tools

_CATEGORIES = [
    ("a tie:", "tie"), ("is not above", "chosen not rated above rejected"),
    ("should say which answer is better", "verdict names no answer"), ("out of order", "turns out of order"),
    ("unknown role", "unknown role"), ("identical", "chosen = rejected"),
    ("no assistant", "no assistant turn"), ("duplicate", "duplicate"), ("tokens, longer", "too long"),
    ("missing or empty", "missing or empty"), ("is empty", "missing or empty"), ("no turns", "missing or empty"),
    ("no answer", "missing or empty"), ("no prompt", "missing or empty"),
]


def category(issue: Issue) -> str:
    for needle, name in _CATEGORIES:
        if needle in issue.message:
            return name
    return "wrong type or shape"


@dataclass
class Report:
    source: str
    read_as: str
    format: str | None
    format_label: str
    kind: str | None
    reason: str
    columns: list[str]
    mapping: dict[str, str]
    total_rows: int
    records: list[dict[str, Any] | None]
    issues: list[Issue]
    places: list[str]
    """'line N' / 'row N' for each issue, same order as issues."""
    token_lengths: list[int] = field(default_factory=list)
    max_length: int | None = None
    notes: list[str] = field(default_factory=list)
    mappable: bool = True
    """False when naming columns by hand cannot make the rows usable (an index file, not data)."""

    @property
    def usable(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r is not None]

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def ok(self) -> bool:
        return self.format is not None and bool(self.usable)

    def counts(self) -> dict[str, int]:
        return dict(Counter(category(i) for i in self.issues))

    def problem_rows(self, limit: int | None = None) -> list[dict[str, Any]]:
        out = [{"where": p, "row": i.index + 1, "field": i.field, "severity": i.severity, "problem": i.message}
               for p, i in zip(self.places, self.issues)]
        return out[:limit] if limit else out

    def summary(self) -> str:
        rows = "1 row" if self.total_rows == 1 else f"{self.total_rows} rows"
        if self.format is None:
            return f"{self.source}: {rows} with columns {', '.join(self.columns)}; {self.reason}."
        parts = [f"{self.source}: {self.format_label}, {rows}, {len(self.usable)} usable"]
        if self.counts():
            parts.append("; ".join(f"{n} {k}" for k, n in sorted(self.counts().items())))
        if self.token_lengths:
            lens = sorted(self.token_lengths)
            parts.append(f"tokens: median {lens[len(lens) // 2]}, max {lens[-1]}")
        parts += [_capitalised(note) for note in self.notes if note]
        return ". ".join(parts) + "."

    def to_dict(self, issue_limit: int = 1000) -> dict[str, Any]:
        lens = sorted(self.token_lengths)
        return {
            "file": self.source, "read_as": self.read_as, "format": self.format, "kind": self.kind,
            "reason": self.reason, "columns": self.columns, "mapping": self.mapping,
            "rows": self.total_rows, "usable_rows": len(self.usable), "ok": self.ok,
            "issue_counts": self.counts(), "issues": self.problem_rows(issue_limit),
            "issues_shown": min(len(self.issues), issue_limit),
            "tokens": {"max_length": self.max_length, "min": lens[0] if lens else None,
                       "median": lens[len(lens) // 2] if lens else None, "max": lens[-1] if lens else None},
            "notes": self.notes,
        }


PAIR_FORMATS = ("preference", "preference_messages")


def build_report(read: ReadResult, fmt: str | None = None, mapping: dict[str, str] | None = None,
                 tokenizer: Any = None, max_length: int | None = None) -> Report:
    if fmt in PAIR_FORMATS:  # message trees give pairs when a preference format is chosen
        read = read.as_pairs()
    unmapped = {k for k, v in (mapping or {}).items() if not v}  # a field named with no column: left out
    mapping = {k: v for k, v in (mapping or {}).items() if v}
    guess = detect(read.rows) if fmt is None else Detection(fmt, {}, "chosen by hand")
    if fmt is not None:  # columns named by hand win over the format's usual names
        guess.mapping = {**default_mapping(fmt, columns_of(read.rows)), **(mapping or {})}
    elif mapping and guess.name is not None:
        guess.mapping = {**guess.mapping, **mapping}
        guess.reason += "; some columns named by hand"
    elif mapping:  # detection failed, but the columns named by hand say which format this is
        name = format_for_mapping(mapping, columns_of(read.rows))
        if name is not None:
            guess = Detection(name, {**default_mapping(name, columns_of(read.rows)), **mapping},
                              "the format whose fields the column map names", columns_of(read.rows))
    guess.mapping = {k: v for k, v in guess.mapping.items() if k not in unmapped}
    if mapping:
        cols = set(columns_of(read.rows))
        absent = sorted(c for c in mapping.values() if c not in cols)
        if absent:
            raise DataError(f"{read.source} has no column {', '.join(repr(c) for c in absent)}; its columns are "
                            f"{', '.join(columns_of(read.rows))}.")
    cols = guess.columns or columns_of(read.rows)
    if guess.name is None:
        return Report(read.source, read.kind, None, "unknown", None, guess.reason, cols, {}, len(read.rows),
                      [None] * len(read.rows), [], [], notes=list(read.notes), mappable=guess.mappable)
    try:
        records, issues = normalise(read.rows, guess.name, guess.mapping)
    except ValueError as err:  # a format chosen by hand without the columns it needs
        raise DataError(f"{read.source}: {str(err)[:1].lower()}{str(err)[1:]}") from None
    cut = _unanswered_ends(records)
    issues += _duplicates(records)
    lengths: list[int] = []
    notes = list(read.notes)
    if tokenizer is not None:
        lengths, too_long, measured = token_lengths(records, tokenizer, max_length)
        for i, n in too_long.items():
            issues.append(Issue(i, _longest_field(read.rows[i], guess), f"{n} tokens, longer than the max length "
                                f"{max_length}; it will be truncated", "warning"))
        if len(lengths) < measured:
            notes.append(f"token lengths: the chart shows a random sample of {len(lengths):,} of {measured:,} "
                         "rows; every row that could pass the max length was measured")
    notes += unused_media(read.rows, cols, guess.mapping) + _weight_note(records) + cut
    issues.sort(key=lambda i: i.index)
    return Report(read.source, read.kind, guess.name, SPECS[guess.name].label, SPECS[guess.name].kind,
                  guess.reason, cols, guess.mapping, len(read.rows), records, issues,
                  [read.where(i.index) for i in issues], lengths, max_length, notes)


def format_for_mapping(mapping: dict[str, str], columns: list[str]) -> str | None:
    """The first format whose fields include every field `mapping` names and that then lacks none."""
    for name, spec in SPECS.items():
        if set(mapping) <= set(spec.fields) and not missing_fields(name, {**default_mapping(name, columns),
                                                                          **mapping}):
            return name
    return None


MEDIA_NAMES = ("image", "images", "img", "picture", "pictures", "photo", "audio", "audios", "video", "videos",
               "pixel_values")


def unused_media(rows: list[dict[str, Any]], cols: list[str], mapping: dict[str, str]) -> list[str]:
    """A note for each column of images, audio or video that the studio leaves out (it trains on text)."""
    used = set(mapping.values())
    first = next((r for r in rows if isinstance(r, dict)), {})
    notes = []
    for col in cols:
        if col in used:
            continue
        value = first.get(col)
        sample = value[0] if isinstance(value, list) and value else value
        looks_binary = isinstance(sample, (bytes, bytearray)) or (isinstance(sample, dict) and
                                                                  {"bytes", "path"} & set(sample))
        if col.lower() in MEDIA_NAMES or looks_binary:
            notes.append(f"column '{col}' holds images, audio or other media, which are left out: the studio trains "
                         "text models")
    return notes


def _longest_field(row: dict[str, Any], guess: Detection) -> str:
    """The mapped column holding the most text in `row`: the one to shorten when the row is too long."""
    columns = [c for c in guess.mapping.values() if c in row]
    return max(columns, key=lambda c: len(str(row.get(c) or "")), default="row")


def _weight_note(records: list[dict[str, Any] | None]) -> list[str]:
    """A note when conversations mark assistant turns "weight": 0 (OpenAI's "do not learn this turn")."""
    marked = sum(1 for r in records if r and any(m.get("weight") == 0 for m in r.get("messages") or []))
    if not marked:
        return []
    return [f"{marked} conversation{'s mark' if marked > 1 else ' marks'} assistant turns with weight 0: those "
            "turns are read as context but not learnt"]


def _unanswered_ends(records: list[dict[str, Any] | None]) -> list[str]:
    """Conversations that end after their last answer (a user's question nobody answered, as cut-off chat
    logs do) lose those last turns, which nothing would learn from; a note says how many."""
    cut = 0
    for rec in records:
        msgs = rec.get("messages") if rec else None
        if msgs and msgs[-1]["role"] != "assistant" and any(m["role"] == "assistant" for m in msgs):
            last = max(i for i, m in enumerate(msgs) if m["role"] == "assistant")
            rec["messages"] = msgs[:last + 1]
            cut += 1
    if not cut:
        return []
    return [f"{cut} conversation{'s end' if cut > 1 else ' ends'} on turns after the last answer (an unanswered "
            "question or tool reply): those turns are left out"]


def _duplicates(records: list[dict[str, Any] | None]) -> list[Issue]:
    seen: dict[str, int] = {}
    out = []
    for i, rec in enumerate(records):
        if rec is None:
            continue
        key = repr(rec)  # normalised records have a fixed key order, so repr identifies them
        if key in seen:
            out.append(Issue(i, "row", f"duplicate of row {seen[key] + 1}", "warning"))
        else:
            seen[key] = i
    return out


def render_for_length(record: dict[str, Any], tokenizer: Any, render: Any = None) -> str:
    """The text a model is trained on for a normalised record (template applied when there is one)."""
    if "text" in record:
        return record["text"]
    msgs, tools = conversation(record), record.get("tools")
    if render is not None:
        return render(msgs, tools)
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(msgs, tools=tools, tokenize=False)
    return "\n".join(f"{m['role']}: {m['content']}" for m in msgs)


def _fast_renderer(tokenizer: Any, example: dict[str, Any] | None) -> Any:
    """The compiled chat template called directly: many times faster than apply_chat_template per row.
    Used only when it renders the first record exactly as apply_chat_template does."""
    if not getattr(tokenizer, "chat_template", None) or example is None or "text" in example:
        return None
    try:
        from transformers.utils.chat_template_utils import _compile_jinja_template

        template = _compile_jinja_template(tokenizer.chat_template)
        specials = {k: v for k, v in tokenizer.special_tokens_map.items() if isinstance(v, str)}

        def render(msgs: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> str:
            return template.render(messages=msgs, tools=tools, add_generation_prompt=False, **specials)

        if render_for_length(example, tokenizer, render) == render_for_length(example, tokenizer):
            return render
    except Exception:  # a private helper of transformers: fall back to the public call
        return None
    return None


SAMPLE = 5_000
"""Above this many rows, the histogram uses a random sample; rows that might be too long are all measured."""


def _byte_bound(record: dict[str, Any], render: Any, cache: dict[tuple[str, ...], int]) -> int:
    """An upper bound on the rendered row's UTF-8 bytes without rendering it: the template's own text
    for this sequence of roles (measured once, with one-byte contents) plus the contents' bytes."""
    if "text" in record:
        return len(record["text"].encode("utf-8"))
    if has_tools(record):  # calls and tool descriptions render as the template likes: measure these rows
        return 1 << 62
    msgs = conversation(record)
    roles = tuple(m["role"] for m in msgs)
    if roles not in cache:
        cache[roles] = len(render([{"role": r, "content": "x"} for r in roles]).encode("utf-8")) - len(roles)
    return cache[roles] + sum(len(m["content"].encode("utf-8")) for m in msgs)


def _count_tokens(tokenizer: Any, texts: list[str]) -> list[int]:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    fast = getattr(backend, "encode_batch_fast", None)
    if fast is not None:  # the Rust tokenizer alone: no offsets, no Python-side conversion
        return [len(e.ids) for e in fast(texts, add_special_tokens=False)]
    return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]


def token_lengths(records: list[dict[str, Any] | None], tokenizer: Any, max_length: int | None = None,
                  batch: int = 4096, seed: int = 0) -> tuple[list[int], dict[int, int], int]:
    """(lengths for the histogram, {record index: tokens} for rows over max_length, rows measured).

    A token never covers less than one byte, so a row whose rendered text has at most `max_length`
    bytes cannot be too long: only longer rows, and the histogram's sample, go through the tokenizer.
    """
    import random

    usable = [i for i, r in enumerate(records) if r is not None]
    render = _fast_renderer(tokenizer, records[usable[0]] if usable else None)
    sample = set(usable) if len(usable) <= SAMPLE else set(random.Random(seed).sample(usable, SAMPLE))
    chosen = set(sample)
    if max_length:
        if render is not None:
            cache: dict[tuple[str, ...], int] = {}
            chosen |= {i for i in usable if _byte_bound(records[i], render, cache) > max_length}
        else:
            chosen = set(usable)
    order = sorted(chosen)
    counts: dict[int, int] = {}
    for start in range(0, len(order), batch):
        idx = order[start:start + batch]
        texts = [render_for_length(records[i], tokenizer, render) for i in idx]
        counts.update(zip(idx, _count_tokens(tokenizer, texts)))
    lengths = [counts[i] for i in usable if i in sample]
    too_long = {i: n for i, n in counts.items() if max_length and n > max_length}
    return lengths, too_long, len(usable)


def inspect_file(path: str | Path, fmt: str | None = None, mapping: dict[str, str] | None = None,
                 model: str | None = "tiny", max_length: int | None = 512, pairs: bool = False,
                 split: str = "train", subset: str | None = None) -> Report:
    """Read, detect, normalise and validate a file or a dataset folder (its `split` and `subset`); token lengths
    use `model`'s tokenizer. `pairs`: message trees are read as the preference pairs their ranked answers give."""
    read = read_rows(path, split, subset)
    if pairs:
        read = read.as_pairs()
    tokenizer = None
    if model:
        from studio.models.loading import load_tokenizer

        tokenizer = load_tokenizer(model)
    return build_report(read, fmt, mapping, tokenizer, max_length)


def histogram(lengths: list[int], bins: int = 30) -> list[tuple[int, int, int]]:
    """(low, high, count) buckets for the token-length chart."""
    if not lengths:
        return []
    lo, hi = min(lengths), max(lengths)
    width = max(1, -(-(hi - lo + 1) // bins))
    counts = Counter((n - lo) // width for n in lengths)
    return [(lo + b * width, lo + (b + 1) * width - 1, counts.get(b, 0)) for b in range((hi - lo) // width + 1)]


def _capitalised(note: str) -> str:
    """A note as a sentence: its first word capitalised, unless that word is a name (a file, a column) that must
    keep its spelling."""
    first = note.split(" ", 1)[0]
    return note[0].upper() + note[1:] if first.isalpha() else note
