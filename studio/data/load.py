"""Load the data a run config names, normalised, as a `datasets.Dataset` a TRL trainer takes.

A source is a file, a saved-dataset folder, a dataset saved in the workspace (by name), or a hub
dataset id. Whatever its format (Alpaca, ShareGPT, HH ...), rows are normalised to TRL's forms by
studio.data.formats; unusable rows are left out and counted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from studio.data.formats import SPECS
from studio.data.readers import DataError, read_hub, read_rows
from studio.data.validate import build_report
from studio.paths import resolve_project_path

KIND_NAMES = {"sft": "instruction or chat", "preference": "preference (prompt, chosen, rejected)", "text": "plain text"}


def resolve_source(source: str, workspace: Any = None) -> str:
    """A workspace dataset name becomes the path of its latest train file; other sources pass through."""
    path = resolve_project_path(source)
    if path.exists():
        return str(path.resolve())
    if workspace is not None:
        from studio.data.store import dataset_path, versions

        try:
            if versions(workspace, source):
                return str(dataset_path(workspace, source))
        except DataError:
            pass
    return source


def load_records(source: str, wanted: tuple[str, ...], split: str = "train", subset: str | None = None
                 ) -> tuple[list[dict[str, Any]], int]:
    """Normalised usable records of a source, and how many rows were left out.

    `wanted` names the acceptable kinds ('sft', 'text', 'preference').
    """
    path = resolve_project_path(source)
    if path.exists() or Path(source).suffix:
        read = read_rows(path, split=split)
    else:
        read = read_hub(source, split=split, subset=subset)
    report = build_report(read)
    if report.format is None:
        raise DataError(f"{read.source}: {report.reason} (columns: {', '.join(report.columns)}).")
    if report.kind not in wanted:
        need = " or ".join(KIND_NAMES[k] for k in wanted)
        raise DataError(f"{read.source} holds {SPECS[report.format].label} data, but this stage needs {need} data.")
    if not report.usable:
        first = report.problem_rows(1)[0]
        raise DataError(f"{read.source}: no usable row; {first['where']}, {first['field']}: {first['problem']}.")
    return report.usable, report.total_rows - len(report.usable)


def load_dataset_source(source: str, wanted: tuple[str, ...], split: str = "train",
                        subset: str | None = None) -> Any:
    """The records as a datasets.Dataset."""
    import datasets

    records, _ = load_records(source, wanted, split, subset)
    return datasets.Dataset.from_list(records)
