"""Load the data a run config names, normalised, as a `datasets.Dataset` a TRL trainer takes.

A source is a file, a saved-dataset folder, a dataset saved in the workspace (by name), or a hub
dataset id. Whatever its format (Alpaca, ShareGPT, HH ...), rows are normalised to TRL's forms by
studio.data.formats; unusable rows are left out and counted.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from studio.access import looks_like_path
from studio.data.hub import read_hub
from studio.data.readers import NO_DATA, DataError, names_a_file, read_rows, source_name
from studio.data.turns import has_tools, with_default_system
from studio.data.validate import build_report, category
from studio.paths import resolve_project_path

KIND_NAMES = {"sft": "instruction or chat", "preference": "preference (prompt, chosen, rejected)", "text": "plain text",
              "unpaired": "rated answers (prompt, completion, a true/false label)",
              "prompt": "prompt-only (conversations waiting for an answer)"}
JSON_COLUMNS = ("messages", "prompt", "completion", "chosen", "rejected", "tools")
"""Columns whose values are turns or tool descriptions."""


def resolve_source(source: str, workspace: Any = None) -> str:
    """A workspace dataset name becomes the path of its latest version's file: 'support' (or 'support:train')
    its train split, 'support:eval' its eval split. Other sources pass through."""
    path = resolve_project_path(source)
    if path.exists():
        return str(path.resolve())
    saved = saved_dataset(source, workspace)
    if saved is not None:
        from studio.data.store import dataset_path

        name, split = saved
        return str(dataset_path(workspace, name, split=split))
    return source


def saved_dataset(source: str | None, workspace: Any) -> tuple[str, str] | None:
    """(name, split) when `source` names a dataset saved in the workspace ('support', 'support:eval'), else None."""
    if not source or workspace is None:
        return None
    from studio.data.store import versions

    name, _, split = str(source).partition(":")
    if split not in ("", "train", "eval"):
        return None
    try:
        return (name, split or "train") if versions(workspace, name) else None
    except DataError:
        return None


def eval_source(source: str, workspace: Any, split: str | None = None) -> tuple[str, str]:
    """What to evaluate on, and its split. A dataset saved in the workspace ('qa', 'qa:eval') is read as its latest
    version's folder; without a split named (there or in `split`), a saved version is scored on its eval split when
    it has one and on train otherwise, as is any other source."""
    saved = saved_dataset(source, workspace)
    if saved is not None:
        name, named = saved
        if ":" in source and split and split != named:
            raise DataError(f"'{source}' names the split {named}, and the split {split} was asked for too: name one.")
        split = split or (named if ":" in source else None)
        from studio.data.store import dataset_path

        source = str(dataset_path(workspace, name).parent)
    path = resolve_project_path(source)
    if not path.exists():
        return source, split or "train"
    if not split:
        from studio.data.folders import folder_kind

        version = path.is_dir() and folder_kind(path) == "version"
        split = "eval" if version and (path / "eval.jsonl").is_file() else "train"
    return str(path.resolve()), split


def has_eval_split(workspace: Any, name: str) -> bool:
    from studio.data.store import dataset_path

    try:
        dataset_path(workspace, name, split="eval")
    except DataError:
        return False
    return True


def load_records(source: str, wanted: tuple[str, ...], split: str = "train", subset: str | None = None,
                 fmt: str | None = None, mapping: dict[str, str] | None = None, purpose: str = "this stage"
                 ) -> tuple[list[dict[str, Any]], int]:
    """Normalised usable records of a source, and how many rows were left out.

    `wanted` names the acceptable kinds ('sft', 'text', 'preference', 'unpaired', 'prompt'); `fmt` and
    `mapping` (format field -> column) override detection, as data.format and data.map do in a config.
    """
    records, report = _load_report(source, wanted, split, subset, fmt, mapping, purpose)
    return records, report.total_rows - len(records)


def _load_report(source: str, wanted: tuple[str, ...], split: str = "train", subset: str | None = None,
                 fmt: str | None = None, mapping: dict[str, str] | None = None, purpose: str = "this stage"
                 ) -> tuple[list[dict[str, Any]], Any]:
    read = read_source(source, split, subset)
    if "preference" in wanted and "sft" not in wanted:  # message trees: their ranked answers, not the threads
        read = read.as_pairs()
    report = build_report(read, fmt, mapping)
    if report.format is None and not report.mappable:
        raise DataError(f"{read.source}: {report.reason}.")
    if report.format is None:
        raise DataError(f"{read.source}: {report.reason} (columns: {', '.join(report.columns)}): in the Data tab, "
                        "or with data.format and data.map in the run config, e.g. format: prompt_completion and "
                        "map: {prompt: question, completion: reply}.")
    if report.kind not in wanted:
        need, name = " or ".join(KIND_NAMES[k] for k in wanted), source_name(resolve_project_path(source), read.source)
        raise DataError(f"{name} holds {KIND_NAMES[report.kind]} data, but {purpose} needs {need} "
                        f"data{_stages_for(report.kind) if purpose == 'this stage' else ''}{_read_as(report, wanted)}.")
    if not report.usable:
        first = report.problem_rows(1)[0]
        raise DataError(f"{read.source}: no usable row; {first['where']}, {first['field']}: {first['problem']}.")
    return report.usable, report


def read_source(source: str, split: str = "train", subset: str | None = None,
                first: tuple[int, int] | None = None) -> Any:
    """The rows of a file or folder (a path from here or the project, or a name that looks like a path or a data
    file, which is refused as missing rather than looked for on the hub), else of a hub dataset id (with `first`,
    (rows, bytes): only its first rows, streamed)."""
    if not str(source or "").strip():
        raise DataError(NO_DATA)
    path = resolve_project_path(source)
    if path.exists() or names_a_file(source) or looks_like_path(source):
        return read_rows(path, split=split, subset=subset)
    return read_hub(source, split=split, subset=subset, first=first)


def eval_choice(data: Any) -> tuple[str, str | None]:
    """The split and subset a run's eval data (a DataConfig's) is read with: data.eval_split (else train), and
    data.subset unless the eval data is a single file (a saved dataset's eval split is one)."""
    single = not data.eval or resolve_project_path(data.eval).is_file()
    return data.eval_split or "train", None if single else data.subset


def _read_as(report: Any, wanted: tuple[str, ...]) -> str:
    """'; or read it as alpaca (data.format: alpaca), leaving label aside' where another format gives the kind
    wanted from the same columns (instruction data with a 0/1 label column reads as rated answers first)."""
    from studio.data.formats import SPECS, default_mapping, missing_fields

    for spec in SPECS.values():
        mapping = default_mapping(spec.name, report.columns)
        if spec.kind in wanted and spec.name != report.format and mapping and not missing_fields(spec.name, mapping):
            aside = [c for c in report.columns if c not in mapping.values()]
            return (f"; or read it as {spec.name} (data.format: {spec.name})"
                    + (f", leaving {', '.join(aside)} aside" if aside else ""))
    return ""


def _stages_for(kind: str) -> str:
    """'; the stages that train on it: DPO, KTO ... (chosen in the Method tab, or method.stage)'."""
    from studio.stages import STAGES

    names = [s.label for s in STAGES.values() if kind in s.data_kinds]
    return (f"; the stages that train on it: {', '.join(names)} (chosen in the Method tab, or method.stage in "
            "the run config)") if names else ""


def left_out_note(report: Any) -> str:
    """'153 of 300 rows left out (120 empty, 33 missing field); first: line 4, messages: ...' or ''."""
    dropped = report.total_rows - len(report.usable)
    if dropped <= 0:
        return ""
    errors = [i for i in report.problem_rows() if i["severity"] == "error"]
    kinds = Counter(category(i) for i in report.errors).most_common(3)
    why = ", ".join(f"{n} {k}" for k, n in kinds)
    first = f"; first: {errors[0]['where']}, {errors[0]['field']}: {errors[0]['problem']}" if errors else ""
    return f"{report.source}: {dropped} of {report.total_rows} rows left out ({why}){first}."


def load_dataset_source(source: str, wanted: tuple[str, ...], split: str = "train",
                        subset: str | None = None, notes: list[str] | None = None, fmt: str | None = None,
                        mapping: dict[str, str] | None = None, system: str | None = None,
                        opened: list[int] | None = None) -> Any:
    """The records as a datasets.Dataset, each conversation opened by `system` where it has no system turn
    (with `opened`, the training data's: how many were is appended to it, and said in `notes` when not all);
    a sentence on rows left out is appended to `notes`."""
    records, report = _load_report(source, wanted, split, subset, fmt, mapping)
    given = records
    records = with_default_system(records, system)
    if system and system.strip() and opened is not None:  # the training data: what the run learns with
        n = sum(a is not b for a, b in zip(given, records))
        opened.append(n)
        if notes is not None and n < len(records):
            notes.append(f"{report.source}: " + ("data.system was not used: every conversation has a system message "
                                                 "of its own, so chats with the run are not sent it either" if not n else
                                                 f"data.system opened {n} of {len(records)} conversations; the others "
                                                 "keep a system message of their own"))
    if notes is not None:  # what reading did to the rows (trees joined, unanswered ends cut ...), then what it left out
        notes += [n if n.startswith(f"{report.source}:") else f"{report.source}: {n}" for n in report.notes]
        notes += [n for n in [left_out_note(report)] if n]
    return as_dataset(records)


def as_dataset(records: list[dict[str, Any]]) -> Any:
    """A datasets.Dataset of normalised records. Rows with tool calls keep their turns as JSON values:
    Arrow would otherwise merge every call's arguments into one struct, adding null keys to each."""
    import datasets

    if not any(has_tools(r) for r in records if "text" not in r):
        return datasets.Dataset.from_list(records)
    columns = list(dict.fromkeys(k for r in records for k in r))
    features = datasets.Features({c: datasets.Json() if c in JSON_COLUMNS else
                                  datasets.Value("bool") if c == "label" else datasets.Value("string")
                                  for c in columns})
    return datasets.Dataset.from_list([{c: r.get(c) for c in columns} for r in records], features=features)
