"""The `studio data` commands: what a data file holds, and the file in TRL's forms.

    studio data inspect FILE [--format F --map field=column] [--split S --subset N] [--json]
    studio data convert FILE --to messages|preference|unpaired|prompts --out OUT.jsonl [--split S --subset N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from studio.cli import positive_int, print_json
from studio.errors import StudioError


def cmd_data_inspect(args: argparse.Namespace) -> int:

    if args.json:  # --json promises one JSON object on stdout, failures included
        try:
            return _inspect(args)
        except (StudioError, ValueError) as err:
            print_json({"file": args.file, "ok": False, "error": str(err)})
            raise
    return _inspect(args)


def _inspect(args: argparse.Namespace) -> int:
    from studio.data.validate import inspect_file

    model, max_length = args.model, args.max_length
    fmt, mapping = args.format, parse_map(args.map)
    if args.config:  # measure with the run's own model and max length, read as the run reads it
        from studio.config import load_config

        cfg = load_config(args.config)
        model, max_length = cfg.model.name, cfg.data.max_length
        fmt, mapping = fmt or cfg.data.format, {**cfg.data.map, **(mapping or {})} or None
    split, subset = args.split, args.subset
    if args.config:
        split, subset = split or cfg.data.split, subset or cfg.data.subset
    report = inspect_file(_saved_or_file(args.file, args.workspace), fmt=fmt, mapping=mapping, model=model or None,
                          max_length=max_length, split=split or "train", subset=subset)
    if args.json:
        print_json(report.to_dict())
    else:
        print(report_text(report))
    if not report.ok:
        why = report.reason if report.format is None else "no row is usable"
        print(f"error: {report.source}: {why}.", file=sys.stderr)
        return 1
    return 0


def _saved_or_file(source: str, workspace: str | None) -> str:
    """A dataset saved in the workspace ('support', 'support:eval') as its file; anything else (a version folder of
    one too: its split is read by --split) as given. A workspace that does not exist yet is not made for this."""
    from studio.workspace import Workspace

    given = Path(source)
    root = Workspace.chosen_root(workspace)
    if given.exists() or not root.is_dir():
        return source
    from studio.data.load import resolve_source

    return resolve_source(source, Workspace.open(root))


def _split_arguments(q: argparse.ArgumentParser) -> None:
    q.add_argument("--split", help="the split of a dataset folder to read (default: train; test, train[:100])")
    q.add_argument("--subset", help="the subset of a folder laid out as a hub dataset (GSM8K: main)")


def parse_map(items: list[str] | None) -> dict[str, str] | None:
    """--map field=column pairs; field names are those of the chosen format (prompt, completion ...)."""
    mapping = {}
    for item in items or []:
        field, sep, column = item.partition("=")
        if not sep or not field.strip() or not column.strip():
            raise StudioError(f"--map needs field=column, e.g. completion=answer (got {item!r}).")
        mapping[field.strip()] = column.strip()
    return mapping or None


def report_text(report, shown: int = 20) -> str:
    lines = [f"file:    {report.source} (read as {report.read_as})",
             f"format:  {report.format or 'unknown'} - {report.format_label} ({report.reason})",
             f"rows:    {report.total_rows} ({len(report.usable)} usable)"]
    if report.mapping:
        lines.append("columns: " + ", ".join(f"{k} <- {v}" for k, v in report.mapping.items()))
    elif report.format is None and report.columns and report.mappable:
        lines.append("columns: " + ", ".join(map(str, report.columns)) +
                     "  (name the format and its columns: --format NAME --map field=column ...)")
    counts = report.counts()
    if report.format is not None or counts:  # rows are checked once their format is known
        lines.append("issues:  " + (", ".join(f"{n} {k}" for k, n in sorted(counts.items())) if counts else "none"))
    for item in report.problem_rows(shown):
        lines.append(f"  {item['where']:>10}  {item['field']}: {item['problem']} [{item['severity']}]")
    if len(report.issues) > shown:
        lines.append(f"  ... and {len(report.issues) - shown} more (use --json for all)")
    if report.token_lengths:
        lens = sorted(report.token_lengths)
        lines.append(f"tokens:  min {lens[0]}, median {lens[len(lens) // 2]}, max {lens[-1]} "
                     f"(max length {report.max_length})")
    lines += [f"note:    {n}" for n in report.notes]
    return "\n".join(lines)


def cmd_data_convert(args: argparse.Namespace) -> int:
    from pathlib import Path

    from studio.data.store import write_jsonl
    from studio.data.validate import inspect_file

    out = Path(args.out)
    if out.suffix.lower() not in (".jsonl", ".ndjson"):
        raise StudioError(f"--out {out.name}: the rows are written as JSON Lines; name the file with .jsonl.")
    if out.exists() and out.resolve() == Path(args.file).resolve():
        raise StudioError(f"--out {out} is the file being converted; write to another file, so the original "
                          "(with any rows that cannot be used) stays as it is.")
    report = inspect_file(args.file, fmt=args.format, mapping=parse_map(args.map), model=None, max_length=None,
                          pairs=args.to == "preference", split=args.split or "train", subset=args.subset)
    if report.format is None and not report.mappable:
        raise StudioError(f"{report.source}: {report.reason}.")
    if report.format is None:
        raise StudioError(f"{report.source}: {report.reason}; name the format with --format and the columns "
                          "with --map, e.g. --format prompt_completion --map completion=answer.")
    rows = report.usable
    if args.to == "prompts" and report.kind in ("sft", "preference", "unpaired"):  # each question before its answer
        from studio.data.turns import as_prompt

        rows = [p for p in map(as_prompt, rows) if p is not None]
    elif report.kind != CONVERT_TO[args.to]:
        if report.kind == "text":
            raise StudioError(f"{report.source} holds plain text without prompts or answers, so it has no "
                              "conversations or preference pairs to write.")
        other = next(k for k, v in CONVERT_TO.items() if v == report.kind)
        raise StudioError(f"{report.source} holds data in the {report.format} format ({report.format_label}); "
                          f"convert it --to {other}.")
    if not rows:
        raise StudioError(f"{report.source}: no row is usable; see `studio data inspect {args.file}`.")
    if out.exists() and not args.force:
        raise StudioError(f"{out} exists already; choose another --out, or add --force to replace it.")
    out.parent.mkdir(parents=True, exist_ok=True)
    n = write_jsonl(out, rows)
    skipped = report.total_rows - n
    print(f"rows written: {n} to {out}" + (f" ({skipped} unusable row{'s' if skipped != 1 else ''} skipped)"
                                            if skipped else ""))
    for note in report.notes:  # what reading did to the rows: trees joined, unanswered ends cut ...
        print(f"note: {note}")
    return 0


CONVERT_TO = {"messages": "sft", "preference": "preference", "unpaired": "unpaired", "prompts": "prompt"}
"""`studio data convert --to` choices and the kind of data each writes."""


def add_data_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="inspect or convert a data file")
    data_sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    q = data_sub.add_parser("inspect", help="detect the format, validate, report problems by row")
    q.add_argument("file")
    q.add_argument("--json", action="store_true", help="one JSON object on stdout")
    q.add_argument("--format", help="skip detection and read as this format")
    q.add_argument("--map", action="append", metavar="FIELD=COLUMN", help="which column holds a field")
    q.add_argument("--model", default="tiny", help="tokenizer for token lengths (default: the built-in model)")
    q.add_argument("--max-length", type=positive_int, default=512, help="flag rows longer than this many tokens")
    q.add_argument("--config", help="a run config: measure with its model and max length (overrides both)")
    _split_arguments(q)
    q.add_argument("--workspace")
    q.set_defaults(func=cmd_data_inspect)
    q = data_sub.add_parser("convert", help="normalise to TRL's forms (messages, preference, unpaired, prompts)")
    q.add_argument("file")
    q.add_argument("--to", choices=list(CONVERT_TO), required=True,
                   help="messages (SFT), preference (pairs), unpaired (rated answers, KTO), prompts (RLHF; chat "
                        "and preference data give each conversation up to its last answer)")
    q.add_argument("--out", required=True)
    q.add_argument("--force", action="store_true", help="replace --out if it exists")
    _split_arguments(q)
    q.add_argument("--format", help="skip detection and read as this format")
    q.add_argument("--map", action="append", metavar="FIELD=COLUMN", help="which column holds a field")
    q.add_argument("--workspace")
    q.set_defaults(func=cmd_data_convert)
