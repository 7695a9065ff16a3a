"""What every reader gives back: the rows of a source (ReadResult), and the one-sentence error (DataError)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from studio.errors import StudioError

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
