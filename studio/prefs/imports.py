"""Bring an existing preference file into the store, so that annotators label its pairs again.

    added, left_out, stored = import_pairs(store, "hh_rlhf_train.jsonl.gz", needed=3)

Any preference shape the data readers know (TRL prompt/chosen/rejected, LLaMA-Factory ranking files,
HH transcripts ...) is read. The file's chosen answer is stored as answer a under the source name
"chosen in FILE" and its rejected one as answer b ("rejected in FILE"); the Preferences tab shows them on
random sides without names, and the statistics then say how often annotators side with the file.
"""

from __future__ import annotations

from pathlib import Path

from studio.data.load import load_records
from studio.errors import StudioError
from studio.prefs.store import PreferenceStore


def import_pairs(store: PreferenceStore, path: str | Path, needed: int | None = None,
                 created_by: str = "") -> tuple[int, int, int]:
    """(pairs added, rows left out, pairs the store held already). Left out: rows that cannot be read, and
    pairs whose answers run over several turns (a vote compares two single answers). Importing a file again
    adds only the pairs it did not hold."""
    records, left_out = load_records(str(path), ("preference",), purpose="importing pairs to vote on")
    name = Path(path).name
    pairs = []
    for r in records:
        if len(r["chosen"]) != 1 or len(r["rejected"]) != 1:
            left_out += 1
            continue
        pairs.append((r["prompt"], r["chosen"][0]["content"], r["rejected"][0]["content"], f"chosen in {name}",
                      f"rejected in {name}"))
    if not pairs:
        raise StudioError(f"{name}: no pair with one answer on each side to import.")
    added = store.add_pairs(pairs, source=f"import {name}", created_by=created_by, needed=needed, skip_stored=True)
    return len(added), left_out, len(pairs) - len(added)
