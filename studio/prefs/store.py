"""Preference pairs and votes in SQLite (workspace/prefs.sqlite), each written the moment it is made.

    store = PreferenceStore(ws.prefs_db)
    pid = store.add_pair("prompt", "answer one", "answer two", model_a="base", model_b="run-x")
    store.vote(pid, "a", voter="ann")
    rows = store.export_rows()      # TRL preference data: prompt, chosen, rejected

Votes are 'a', 'b', 'tie' or 'both_bad'; ties and both-bad votes are kept for statistics but give
no training pair. A vote may carry an edited winner, which then becomes the chosen answer.

Ratings are single answers marked good or bad (thumbs up / down in Chat): unpaired data for KTO.
    store.rate([{"role": "user", "content": "hi"}], "hello", True, model="run-x", rater="ann")
    store.rating_rows()             # prompt, completion, label
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from studio.errors import StudioError

CHOICES = ("a", "b", "tie", "both_bad")
SCHEMA = """
CREATE TABLE IF NOT EXISTS pairs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    prompt TEXT NOT NULL,
    answer_a TEXT NOT NULL,
    answer_b TEXT NOT NULL,
    model_a TEXT NOT NULL DEFAULT '',
    model_b TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS votes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    pair_id INTEGER NOT NULL REFERENCES pairs(id),
    choice TEXT NOT NULL CHECK (choice IN ('a', 'b', 'tie', 'both_bad')),
    edited TEXT,
    voter TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS votes_pair ON votes(pair_id);
CREATE TABLE IF NOT EXISTS ratings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    prompt TEXT NOT NULL,
    answer TEXT NOT NULL,
    label INTEGER NOT NULL CHECK (label IN (0, 1)),
    model TEXT NOT NULL DEFAULT '',
    rater TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    UNIQUE (rater, prompt, answer)
);
"""
ONE_VOTE_EACH = """
DELETE FROM votes WHERE id NOT IN (SELECT MIN(id) FROM votes GROUP BY pair_id, voter);
CREATE UNIQUE INDEX IF NOT EXISTS votes_one_each ON votes(pair_id, voter);
"""
"""One vote per voter and pair: a store from before the rule keeps each voter's first vote."""


PAIR_COLUMNS = {"created_by": "TEXT NOT NULL DEFAULT ''", "prompt_turns": "TEXT", "needed": "INTEGER"}
"""prompt_turns: the whole conversation before the answers (JSON), where it is more than one user message.
needed: how many annotators should vote on the pair (None: everyone may)."""
VOTE_COLUMNS = {"reason": "TEXT", "flipped": "INTEGER"}
"""reason: the annotator's optional why. flipped: 1 when answer b was shown on the left."""


class AlreadyVoted(StudioError):
    """A second vote by the same voter on the same pair (a double click, say)."""


def _sentence(path: Path, err: sqlite3.Error, what: str) -> str:
    text = str(err).lower()
    if "disk" in text and ("full" in text or "i/o" in text) or "database or disk is full" in text:
        return f"{what}: the disk holding {path.name} is full; free some space and try again."
    if "locked" in text or "busy" in text:
        return f"{what}: {path.name} is busy with another writer; try again in a moment."
    if "readonly" in text or "read-only" in text:
        return f"{what}: {path.name} cannot be written (read-only)."
    return f"{what}: {path.name} reports {err}."


class PreferenceStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self._connect() as db:
                db.executescript(SCHEMA)
                columns = {r["name"] for r in db.execute("PRAGMA table_info(pairs)")}
                for column, kind in PAIR_COLUMNS.items():  # columns added after the first release
                    if column not in columns:
                        db.execute(f"ALTER TABLE pairs ADD COLUMN {column} {kind}")
                voted = {r["name"] for r in db.execute("PRAGMA table_info(votes)")}
                for column, kind in VOTE_COLUMNS.items():
                    if column not in voted:
                        db.execute(f"ALTER TABLE votes ADD COLUMN {column} {kind}")
                if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'votes_one_each'").fetchone():
                    db.executescript(ONE_VOTE_EACH)
                db.execute("CREATE INDEX IF NOT EXISTS pairs_by_prompt ON pairs(prompt)")  # finding stored pairs
        except sqlite3.Error as err:
            raise StudioError(_sentence(self.path, err, "The preference store could not be opened")) from None

    def _connect(self) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        except sqlite3.Error as err:
            raise StudioError(f"Cannot open the preference store {self.path}: {err}.") from None
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA foreign_keys=ON")
        return db

    def add_pair(self, prompt: str | list[dict[str, str]], answer_a: str, answer_b: str, model_a: str = "",
                 model_b: str = "", source: str = "", created_by: str = "", needed: int | None = None) -> int:
        """Store a pair. `prompt` is a message, or the whole conversation before the answers (kept, and
        exported as conversational data); `needed` is how many annotators should vote on it."""
        return self.add_pairs([(prompt, answer_a, answer_b, model_a, model_b)], source, created_by, needed)[0]

    def add_pairs(self, pairs: list[tuple[Any, str, str, str, str]], source: str = "", created_by: str = "",
                  needed: int | None = None, skip_stored: bool = False) -> list[int]:
        """Store many (prompt, answer_a, answer_b, model_a, model_b) pairs in one transaction. With
        `skip_stored`, a pair whose prompt and two answers the store holds already (either way round) is
        left out; the ids are those of the pairs added."""
        if needed is not None and needed < 1:
            raise StudioError(f"A pair needs at least one annotator (got {needed}).")
        rows = []
        for prompt, answer_a, answer_b, model_a, model_b in pairs:
            shown, turns = _prompt_parts(prompt)
            if not shown.strip() or not answer_a.strip() or not answer_b.strip():
                raise StudioError("A pair needs a prompt and two non-empty answers.")
            rows.append((shown, turns, answer_a, answer_b, model_a, model_b, source, time.time(), created_by, needed))
        try:
            with self._connect() as db:
                db.execute("BEGIN IMMEDIATE")
                if skip_stored:
                    rows = _not_stored(db, rows)
                ids = [int(db.execute("INSERT INTO pairs (prompt, prompt_turns, answer_a, answer_b, model_a, model_b, "
                                      "source, created, created_by, needed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                      row).lastrowid) for row in rows]
                db.execute("COMMIT")
                return ids
        except sqlite3.Error as err:
            raise StudioError(_sentence(self.path, err, "The pair was not stored")) from None

    def pair(self, pair_id: int) -> dict[str, Any]:
        with self._connect() as db:
            row = db.execute("SELECT * FROM pairs WHERE id = ?", (pair_id,)).fetchone()
        if row is None:
            raise StudioError(f"No preference pair {pair_id}.")
        return dict(row)

    def vote(self, pair_id: int, choice: str, voter: str = "", edited: str | None = None, reason: str | None = None,
             flipped: bool | None = None) -> int:
        """Store one vote: 'a', 'b', 'tie' or 'both_bad', an edited winner, a reason, and which side answer a
        was shown on (flipped: answer b on the left)."""
        if choice not in CHOICES:
            raise StudioError(f"A vote is one of {', '.join(CHOICES)} (got {choice!r}).")
        if edited and choice not in ("a", "b"):
            raise StudioError("Only a winner can be edited: vote A or B better to rewrite the answer.")
        self.pair(pair_id)
        try:
            with self._connect() as db:
                cur = db.execute("INSERT INTO votes (pair_id, choice, edited, voter, created, reason, flipped) "
                                 "VALUES (?, ?, ?, ?, ?, ?, ?)",
                                 (pair_id, choice, edited or None, voter, time.time(), (reason or "").strip() or None,
                                  None if flipped is None else int(flipped)))
                return int(cur.lastrowid)
        except sqlite3.IntegrityError:
            raise AlreadyVoted(f"You have voted on pair #{pair_id} already; your first vote stands.") from None
        except sqlite3.Error as err:
            raise StudioError(_sentence(self.path, err, "The vote was not stored")) from None

    def votes_of(self, voter: str) -> list[dict[str, Any]]:
        """Every vote of one voter, oldest first."""
        with self._connect() as db:
            rows = db.execute("SELECT * FROM votes WHERE voter = ? ORDER BY id", (voter,)).fetchall()
        return [dict(r) for r in rows]

    def next_pair(self, voter: str = "", skip: tuple[int, ...] = ()) -> dict[str, Any] | None:
        """A random pair this voter has not voted on yet, that still needs votes (and is not in `skip`),
        or None when none is left. Pairs that have fewest votes so far come first."""
        marks = ",".join("?" * len(skip))
        extra = f" AND p.id NOT IN ({marks})" if skip else ""
        with self._connect() as db:
            row = db.execute("SELECT p.*, (SELECT COUNT(*) FROM votes c WHERE c.pair_id = p.id) AS votes_so_far "
                             "FROM pairs p WHERE NOT EXISTS (SELECT 1 FROM votes v WHERE v.pair_id = p.id AND "
                             f"v.voter = ?){extra} AND (p.needed IS NULL OR (SELECT COUNT(*) FROM votes w WHERE "
                             "w.pair_id = p.id) < p.needed) ORDER BY votes_so_far, RANDOM() LIMIT 1",
                             (voter, *skip)).fetchone()
        return dict(row) if row is not None else None

    def progress(self, voter: str = "") -> dict[str, int]:
        """Votes cast by `voter` and pairs still open to them: the annotator's progress bar."""
        with self._connect() as db:
            mine = db.execute("SELECT COUNT(*) FROM votes WHERE voter = ?", (voter,)).fetchone()[0]
            left = db.execute("SELECT COUNT(*) FROM pairs p WHERE NOT EXISTS (SELECT 1 FROM votes v WHERE "
                              "v.pair_id = p.id AND v.voter = ?) AND (p.needed IS NULL OR (SELECT COUNT(*) FROM "
                              "votes w WHERE w.pair_id = p.id) < p.needed)", (voter,)).fetchone()[0]
        return {"done": int(mine), "left": int(left)}

    def vote_rows(self) -> list[dict[str, Any]]:
        """Every vote with its pair's answers and sources, oldest first: what the statistics read."""
        with self._connect() as db:
            rows = db.execute("SELECT v.pair_id, v.voter, v.choice, v.edited, v.reason, v.flipped, p.model_a, "
                              "p.model_b, p.answer_a, p.answer_b, p.source FROM votes v JOIN pairs p ON "
                              "p.id = v.pair_id ORDER BY v.id").fetchall()
        return [dict(r) for r in rows]

    def has_vote(self, pair_id: int, voter: str = "") -> bool:
        with self._connect() as db:
            row = db.execute("SELECT 1 FROM votes WHERE pair_id = ? AND voter = ? LIMIT 1", (pair_id, voter)).fetchone()
        return row is not None

    def counts(self) -> dict[str, int]:
        with self._connect() as db:
            pairs = db.execute("SELECT COUNT(*) FROM pairs").fetchone()[0]
            votes = db.execute("SELECT COUNT(*) FROM votes").fetchone()[0]
            usable = db.execute(  # what export_rows gives, counted in SQL: a decisive vote whose chosen differs
                "SELECT COUNT(*) FROM votes v JOIN pairs p ON p.id = v.pair_id WHERE v.choice IN ('a', 'b') AND "
                "TRIM(COALESCE(NULLIF(v.edited, ''), CASE v.choice WHEN 'a' THEN p.answer_a ELSE p.answer_b END), "
                "char(32, 9, 10, 13)) != TRIM(CASE v.choice WHEN 'a' THEN p.answer_b ELSE p.answer_a END, "
                "char(32, 9, 10, 13))").fetchone()[0]
        return {"pairs": int(pairs), "votes": int(votes), "usable": int(usable)}

    def export_rows(self) -> list[dict[str, Any]]:
        """One preference row per decisive vote (a or b), edited winners used as chosen. A pair whose prompt
        is a conversation gives TRL's conversational form (lists of turns); a single message, plain text."""
        with self._connect() as db:
            rows = db.execute("SELECT p.prompt, p.prompt_turns, p.answer_a, p.answer_b, v.choice, v.edited FROM "
                              "votes v JOIN pairs p ON p.id = v.pair_id WHERE v.choice IN ('a', 'b') "
                              "ORDER BY v.id").fetchall()
        out = []
        for r in rows:
            win, lose = (r["answer_a"], r["answer_b"]) if r["choice"] == "a" else (r["answer_b"], r["answer_a"])
            chosen = r["edited"] or win
            if chosen.strip() == lose.strip():
                continue
            if r["prompt_turns"]:
                out.append({"prompt": json.loads(r["prompt_turns"]),
                            "chosen": [{"role": "assistant", "content": chosen}],
                            "rejected": [{"role": "assistant", "content": lose}]})
            else:
                out.append({"prompt": r["prompt"], "chosen": chosen, "rejected": lose})
        return out

    def rate(self, prompt: list[dict[str, str]], answer: str, liked: bool | None, model: str = "",
             rater: str = "") -> None:
        """Mark one answer good (True) or bad (False); None takes the rater's mark back. A new mark by the
        same rater on the same answer replaces the old one."""
        if not prompt or prompt[-1].get("role") != "user" or not answer.strip():
            raise StudioError("A rating needs the conversation up to a user message and a non-empty answer.")
        key = json.dumps(prompt, ensure_ascii=False, sort_keys=True)
        try:
            with self._connect() as db:
                if liked is None:
                    db.execute("DELETE FROM ratings WHERE rater = ? AND prompt = ? AND answer = ?", (rater, key, answer))
                    return
                db.execute("INSERT INTO ratings (prompt, answer, label, model, rater, created) VALUES "
                           "(?, ?, ?, ?, ?, ?) ON CONFLICT (rater, prompt, answer) DO UPDATE SET "
                           "label = excluded.label, model = excluded.model, created = excluded.created",
                           (key, answer, int(bool(liked)), model, rater, time.time()))
        except sqlite3.Error as err:
            raise StudioError(_sentence(self.path, err, "The rating was not stored")) from None

    def rating_counts(self) -> dict[str, int]:
        with self._connect() as db:
            rows = db.execute("SELECT label, COUNT(*) FROM ratings GROUP BY label").fetchall()
        found = {int(r[0]): int(r[1]) for r in rows}
        return {"good": found.get(1, 0), "bad": found.get(0, 0)}

    def rating_rows(self) -> list[dict[str, Any]]:
        """TRL's unpaired preference rows, one per rated answer in the order first rated: the conversation,
        the answer, and the label most raters gave it (an answer the raters split evenly on is left out)."""
        with self._connect() as db:
            rows = db.execute("SELECT prompt, answer, SUM(label) AS good, COUNT(*) AS marks, MIN(id) AS first "
                              "FROM ratings GROUP BY prompt, answer ORDER BY first").fetchall()
        return [{"prompt": json.loads(r["prompt"]), "completion": [{"role": "assistant", "content": r["answer"]}],
                 "label": 2 * r["good"] > r["marks"]} for r in rows if 2 * r["good"] != r["marks"]]


def _not_stored(db: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The rows (prompt, turns, answer a, answer b, ...) whose pair neither the store nor an earlier row holds,
    either way round."""
    seen: set[tuple[Any, ...]] = set()
    out = []
    for row in rows:
        key = (row[0], row[1], *sorted((row[2], row[3])))
        if key in seen or db.execute(
                "SELECT 1 FROM pairs WHERE prompt = ? AND prompt_turns IS ? AND ((answer_a = ? AND answer_b = ?) "
                "OR (answer_a = ? AND answer_b = ?)) LIMIT 1", (row[0], row[1], row[2], row[3], row[3], row[2])
        ).fetchone():
            continue
        seen.add(key)
        out.append(row)
    return out


def _prompt_parts(prompt: str | list[dict[str, str]]) -> tuple[str, str | None]:
    """(the text shown as the prompt, the conversation as JSON or None) of a pair's prompt. A conversation
    of one user message is stored as that message; a longer one shows its last user message."""
    if isinstance(prompt, str):
        return prompt, None
    if not prompt or prompt[-1].get("role") != "user":
        raise StudioError("A pair's prompt must end with a user message.")
    if len(prompt) == 1:
        return str(prompt[0].get("content", "")), None
    return str(prompt[-1].get("content", "")), json.dumps(prompt, ensure_ascii=False)
