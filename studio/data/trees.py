"""Message trees (OpenAssistant's oasst1/oasst2 shapes) joined into one conversation per tree.

    joined = join_trees(rows, "oasst.jsonl")   # None when the rows are not message trees
    joined.rows, joined.notes                  # one conversation per tree
    joined.pairs, joined.pair_notes            # the ranked replies as preference pairs

Two published shapes are read:
    flat    one message a row, linked by parent_id: {"message_id", "parent_id", "role", "text", "rank",
            "deleted", "review_result", "message_tree_id", "lang", ...} (the hub's oasst1/oasst2 splits)
    nested  one tree a row: {"message_tree_id", "prompt": {"text", "role", "replies": [{...}, ...]}}
            (the *.trees.jsonl exports)

Each tree gives the thread that follows the best-ranked reply at every turn (rank 0; unranked replies
after ranked ones, then file order), ending on the last assistant answer. Trees in a state other than
ready_for_export (the full exports hold growing and aborted ones) are left out. Where a question has two or
more ranked answers, the best-ranked one against each lower-ranked one is a preference pair, after the
turns that led to the question. Messages marked deleted or failed in review are left out with the
replies under them. Roles: prompter is the user.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from studio.data.readers import BROKEN

FLAT_KEYS = frozenset({"message_id", "parent_id", "role", "text"})
ROLES = {"prompter": "user", "assistant": "assistant", "user": "user"}
READY = "ready_for_export"
"""The state of a finished tree; OpenAssistant's full exports also hold growing and aborted ones."""


@dataclass
class Joined:
    rows: list[dict[str, Any]]
    notes: list[str]
    pairs: list[dict[str, Any]] = field(default_factory=list)
    pair_notes: list[str] = field(default_factory=list)


def _lower(row: Any) -> dict[str, Any] | None:
    return {str(k).lower(): v for k, v in row.items()} if isinstance(row, dict) else None


def _sample(rows: list[Any], size: int = 50) -> list[dict[str, Any]]:
    """Keys lower-cased, lines that could not be read skipped: some writers leave null fields out, so the
    first row alone (a root, with no parent_id) does not show every column."""
    return [r for r in (_lower(row) for row in rows[:size * 2]) if r and BROKEN not in r][:size]


def is_flat_tree(rows: list[Any]) -> bool:
    keys = set().union(*_sample(rows)) if rows else set()
    return FLAT_KEYS <= keys


def is_nested_tree(rows: list[Any]) -> bool:
    prompts = [_lower(r.get("prompt")) for r in _sample(rows)]
    return any(p and "text" in p and "role" in p and ("replies" in p or "message_id" in p) for p in prompts)


def join_trees(rows: list[Any], source: str) -> Joined | None:
    """Conversation rows ({"message_tree_id", "messages"}), pair rows ({"message_tree_id", "prompt",
    "chosen", "rejected"}) and notes on each; None when the rows are not message trees."""
    if is_nested_tree(rows):
        roots, left = [], Counter()
        for n, row in enumerate(_lower(r) for r in rows):
            root = _nested(row.get("prompt")) if row else None
            if root is None:
                left["rows that are not a tree"] += 1
            else:
                roots.append((str(row.get("message_tree_id") or n + 1), root, row.get("tree_state")))
        return _threads(roots, source, _n(len(rows), "tree"), left)
    if not is_flat_tree(rows):
        return None
    nodes: dict[str, dict[str, Any]] = {}
    left = Counter()
    for row in map(_lower, rows):
        if not row or row.get("message_id") in (None, ""):
            left["rows that are not a message (no message_id)"] += 1
        elif str(row["message_id"]) in nodes:
            left["repeated message_ids (the first kept)"] += 1
        else:
            nodes[str(row["message_id"])] = {**row, "replies": []}
    roots = []
    for node in nodes.values():
        parent = node.get("parent_id")
        if parent is None or parent == "":  # a CSV export writes no parent as an empty cell
            roots.append((str(node.get("message_tree_id") or node["message_id"]), node, node.get("tree_state")))
        elif str(parent) in nodes:
            nodes[str(parent)]["replies"].append(node)
        else:
            left["replies whose parent is not in the file"] += 1
    return _threads(roots, source, _n(len(rows), "message row"), left)


def _nested(prompt: Any) -> dict[str, Any] | None:
    """A nested tree with every node's keys lower-cased (walked without recursion: trees can be deep)."""
    root = _lower(prompt)
    if root is None:
        return None
    todo = [root]
    while todo:
        node = todo.pop()
        node["replies"] = [r for r in map(_lower, node.get("replies") or []) if r is not None] \
            if isinstance(node.get("replies"), list) else []
        todo += node["replies"]
    return root


def _flag(value: Any) -> bool | None:
    """A true/false field as JSON, Parquet or a CSV export writes it; None when absent or blank."""
    if isinstance(value, str):
        return {"true": True, "1": True, "false": False, "0": False}.get(value.strip().lower())
    return None if value is None else bool(value)


def _usable(message: Any) -> bool:
    return (isinstance(message, dict) and _flag(message.get("deleted")) is not True
            and _flag(message.get("review_result")) is not False
            and ROLES.get(str(message.get("role", "")).lower()) is not None and isinstance(message.get("text"), str)
            and bool(message["text"].strip()))


def _rank(message: dict[str, Any]) -> tuple[int, float]:
    try:
        rank = float(message.get("rank")) if not isinstance(message.get("rank"), bool) else None
    except (TypeError, ValueError):
        rank = None
    return (0, rank) if rank is not None and rank == rank else (1, 0.0)  # rank == rank: not NaN


def _replies(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in node.get("replies") or [] if _usable(r)]


def _thread(root: dict[str, Any]) -> list[dict[str, str]]:
    """The best-ranked path from the root, cut after its last assistant turn."""
    path, node = [], root
    while node is not None:
        path.append(_turn(node))
        replies = _replies(node)
        node = min(replies, key=_rank) if replies else None
    last = max((i for i, m in enumerate(path) if m["role"] == "assistant"), default=-1)
    return path[:last + 1]


def _turn(node: dict[str, Any]) -> dict[str, str]:
    return {"role": ROLES[str(node["role"]).lower()], "content": node["text"]}


def _walk(tree_id: str, root: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """Every question in the tree with two or more ranked answers, the best against each worse one; and how
    many replies were passed over as deleted, failed in review or empty (with everything under them)."""
    turns = [(_turn(root), -1)]  # each turn with the index of the one before it
    out, stack, dropped = [], [(root, 0)], 0
    while stack:
        node, at = stack.pop()
        replies = _replies(node)
        dropped += len(node.get("replies") or []) - len(replies)
        if turns[at][0]["role"] == "user":
            ranked = sorted((r for r in replies if _turn(r)["role"] == "assistant" and _rank(r)[0] == 0), key=_rank)
            worse = [r for r in ranked[1:] if _rank(r) > _rank(ranked[0])]
            prompt = _path(turns, at) if worse else []
            out += [{"message_tree_id": tree_id, "prompt": prompt, "chosen": [_turn(ranked[0])],
                     "rejected": [_turn(r)]} for r in worse]
        for reply in reversed(replies):
            turns.append((_turn(reply), at))
            stack.append((reply, len(turns) - 1))
    return out, dropped


def _path(turns: list[tuple[dict[str, str], int]], at: int) -> list[dict[str, str]]:
    path = []
    while at >= 0:
        path.append(turns[at][0])
        at = turns[at][1]
    return path[::-1]


def _threads(roots: list[tuple[str, Any, Any]], source: str, read: str, left: Counter) -> Joined:
    out, langs, pairs, paired = [], Counter(), [], 0
    for tree_id, root, state in roots:
        if state not in (None, "", READY):  # still growing, or stopped by moderators or for low grades
            left[f"trees in state {state}"] += 1
            continue
        if not _usable(root):
            left["trees whose first message is deleted, failed review or empty"] += 1
            continue
        msgs = _thread(root)
        if not msgs:
            left["trees with no answer that passed review"] += 1
            continue
        out.append({"message_tree_id": tree_id, "messages": msgs})
        langs[str(root.get("lang") or "unknown")] += 1
        found, dropped = _walk(tree_id, root)
        pairs += found
        paired += bool(found)
        if dropped:
            left["replies deleted, failed in review or empty (with the replies under them)"] += dropped
    shared = []  # notes that hold for the pairs as well as the threads
    if left:
        shared.append("left out: " + "; ".join(f"{why}: {n:,}" for why, n in left.most_common()))
    if len(langs) > 1:
        top = ", ".join(f"{lang} {n:,}" for lang, n in langs.most_common(4))
        shared.append(f"the conversations are in {len(langs)} languages ({top}{' ...' if len(langs) > 4 else ''}); "
                      "filter the file by its lang field first if the model should answer in one")
    notes = [f"{source}: {read} joined into {_n(len(out), 'conversation')}, each following the best-ranked "
             "reply at every turn (OpenAssistant's message trees)", *shared]
    if pairs:
        notes.append(f"their ranked answers also give {_n(len(pairs), 'preference pair')}: reward-model, DPO and KTO "
                     "runs read those from this file (the Data tab shows them under the format preference_messages)")
    pair_notes = [f"{source}: {_n(len(pairs), 'preference pair')} from the ranked answers in {read} "
                  f"(found in {_n(paired, 'tree')}): the best-ranked answer to a question against each lower-ranked "
                  "one, after the turns that led to the question (OpenAssistant's message trees)", *shared]
    return Joined(out, notes, pairs, pair_notes)


def _n(count: int, thing: str) -> str:
    return f"{count:,} {thing}{'' if count == 1 else 's'}"
