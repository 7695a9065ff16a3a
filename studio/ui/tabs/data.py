"""Data tab: bring data in (upload, hub, saved, or written by hand), see its format and problems by
row, map columns when detection is wrong, preview what the model sees, save a versioned dataset.

Per-browser state lives in gr.State: the rows read, and the latest report.
"""

from __future__ import annotations

import html
from typing import Any

import gradio as gr
import pandas as pd

from studio.access import WEB_HUB_ROWS, WEB_READ_BYTES, read_here, readable_model
from studio.config import MAX_LENGTHS, RunConfig
from studio.data import store
from studio.data.formats import SPECS, columns_of, default_mapping
from studio.data.load import read_source
from studio.data.preview import template_preview
from studio.data.readers import UPLOAD_SUFFIXES, ReadResult, read_rows
from studio.data.validate import Report, build_report
from studio.errors import StudioError
from studio.models.loading import cached_tokenizer
from studio.ui.api import action, glue
from studio.ui.context import AppContext
from studio.ui.plots import token_length_histogram
from studio.ui.presets import starting_config
from studio.workspace import Workspace

FIELDS = ["messages", "conversations", "instruction", "input", "context", "output", "response", "prompt",
          "completion", "chosen", "rejected", "answer_a", "answer_b", "verdict", "answers", "label", "system",
          "history", "tools", "text", "reference"]
"""Every field some format maps a column to, in the order the boxes show: those of the chosen format are shown."""
AUTO = "auto-detect"
NONE = "(none)"
SFT_COLUMNS = ["system", "prompt", "response"]
PREF_COLUMNS = ["prompt", "chosen", "rejected"]


def _read(source: dict[str, Any]) -> ReadResult:
    pairs = source.get("pairs")
    return ReadResult(source["rows"], source["name"], source["kind"], source.get("lines"), source.get("notes", []),
                      None if pairs is None else _read(pairs), source.get("places"))


def analyse(source: dict[str, Any] | None, fmt: str, mapping: dict[str, str], model: str,
            max_length: float, ws: Workspace | None = None) -> tuple[Report | None, str]:
    """Build the report for the rows in hand; returns (report, message). With `ws`, the tokenizer's model
    must be one the web app may load."""
    if not source:
        return None, "Load a file, a hub dataset or a saved dataset first."
    try:
        length = int(max_length)
    except (TypeError, ValueError, OverflowError):
        return None, f"⚠️ The max length must be a whole number of tokens (got {str(max_length)[:40]!r})."
    if not MAX_LENGTHS[0] <= length <= MAX_LENGTHS[1]:
        return None, f"⚠️ The max length must be between {MAX_LENGTHS[0]} and {MAX_LENGTHS[1]} tokens (got {length})."
    read = _read(source)
    tokenizer = None
    note = ""
    if model.strip():
        try:
            if ws is not None:
                readable_model(ws, model.strip())
            tokenizer = cached_tokenizer(model.strip())
        except StudioError as err:
            note = f" Token lengths skipped: {err}"
    try:
        report = build_report(read, None if fmt == AUTO else fmt, mapping or None, tokenizer, length)
    except (ValueError, StudioError) as err:
        return None, f"⚠️ {err}"
    return report, report.summary() + note


ISSUE_COLUMNS = ["where", "field", "severity", "problem"]


def _outputs(report: Report | None, message: str, max_length: float, source: dict[str, Any] | None = None,
             fmt: str = AUTO, mapping: dict[str, str] | None = None) -> list[Any]:
    """Values for: status, issues table, histogram, format dropdown, mapping dropdowns, row number.

    Without a report (nothing loaded, or a format whose columns are not mapped yet) the table and
    chart are cleared, and the chosen format's mapping boxes are offered with the file's columns.
    """
    empty = pd.DataFrame(columns=ISSUE_COLUMNS)
    if report is None:
        columns = columns_of(source["rows"]) if source else []
        wanted = set(SPECS[fmt].fields) if source and fmt in SPECS else set()
        chosen = {**(default_mapping(fmt, columns) if wanted else {}), **(mapping or {})}
        boxes = [gr.update(choices=[NONE, *columns], value=chosen.get(name) or NONE, visible=name in wanted)
                 for name in FIELDS]
        return [message, empty, None, gr.update(value=fmt if source else AUTO), *boxes, gr.update(value=1)]
    issues = pd.DataFrame(report.problem_rows(2000), columns=ISSUE_COLUMNS) if report.issues else empty
    fig = token_length_histogram(report.token_lengths, int(max_length)) if report.token_lengths else None
    choices = [NONE, *report.columns]
    wanted = set(SPECS[report.format].fields) if report.format else set()
    dropdowns = [gr.update(choices=choices, value=report.mapping.get(name, NONE), visible=name in wanted)
                 for name in FIELDS]
    if report.format is None:
        message += " Pick the format above, then say which column holds what under Column mapping."
    return [message, issues, fig, gr.update(value=report.format or AUTO), *dropdowns,
            gr.update(maximum=max(1, report.total_rows), value=1)]


def _mapping(values: tuple[str, ...]) -> dict[str, str]:
    """Field -> column from the mapping boxes; a box set to (none) maps its field to '' (left out, even where
    the format would find a column of that name itself)."""
    return {name: v if v and v != NONE else "" for name, v in zip(FIELDS, values)}


def _source_from(read: ReadResult) -> dict[str, Any]:
    return {"rows": read.rows, "name": read.source, "kind": read.kind, "lines": read.lines, "notes": read.notes,
            "pairs": None if read.tree_pairs is None else _source_from(read.tree_pairs), "places": read.places}


def build(ctx: AppContext) -> dict[str, Any]:
    start = RunConfig.from_dict(starting_config())  # the run config every tab opens on
    source = gr.State(None)
    report_state = gr.State(None)
    with gr.Row():
        with gr.Column(scale=2):
            upload = gr.File(label="Upload data", file_types=list(UPLOAD_SUFFIXES), type="filepath")
        with gr.Column(scale=2):
            hub_id = gr.Textbox(label="…or a hub dataset", placeholder="org/dataset")
            with gr.Row():
                hub_split = gr.Textbox(label="split", value="train", scale=1)
                hub_subset = gr.Textbox(label="subset", placeholder="optional", scale=1)
            hub_btn = gr.Button("Load from hub", size="sm")
        with gr.Column(scale=1):
            saved = ctx.picker(gr.Dropdown(label="…or a saved dataset", choices=[],
                                           allow_custom_value=True), lambda: _saved_names(ctx))
            saved_btn = gr.Button("Open saved", size="sm")
    with gr.Row():
        fmt = gr.Dropdown([AUTO, *SPECS], value=AUTO, label="Format", scale=2,
                          info="Detected automatically; change it when detection is wrong.")
        model = gr.Textbox(value=start.model.name, label="Tokenizer of model", scale=2,
                           info="Token counts and the template preview use this model (it follows the Method tab).")
        max_length = gr.Number(value=start.data.max_length, label="Max length (tokens)", precision=0, scale=1)
        recheck = gr.Button("Re-check", scale=1)
    with gr.Accordion("Column mapping", open=True):
        with gr.Row():
            mapping_boxes = [gr.Dropdown([NONE], value=NONE, label=name, visible=False, min_width=140)
                             for name in FIELDS]
    status = gr.Markdown("Load data to see its format and problems.", elem_id="data-status")
    with gr.Row():
        issues = gr.Dataframe(pd.DataFrame(columns=ISSUE_COLUMNS), label="Problems by row", interactive=False,
                              max_height=320, wrap=True, scale=3,
                              elem_id="data-issues")
        hist = gr.Plot(label="Token lengths", scale=2)
    with gr.Accordion("Template preview: what the model sees", open=True):
        with gr.Row():
            row_no = gr.Number(value=1, minimum=1, precision=0, label="Row", scale=1)
            tok_info = gr.HTML(elem_id="data-preview-rule")  # it quotes the row's text: escaped, not Markdown
        preview = gr.HTML()
    with gr.Row():
        save_name = gr.Textbox(label="Save as", placeholder="my-dataset", scale=2)
        eval_share = gr.Slider(0, 0.5, value=0.1, step=0.01, label="Eval share", scale=2)
        save_btn = gr.Button("Save version", variant="primary", scale=1)
    save_msg = gr.Markdown()
    with gr.Accordion("Write examples by hand", open=False):
        kind = gr.Radio(["instructions", "preferences"], value="instructions", label="Kind")
        table = gr.Dataframe(value=pd.DataFrame(columns=SFT_COLUMNS), headers=SFT_COLUMNS, interactive=True,
                             label="Examples (edit cells directly)", wrap=True, show_row_numbers=True)
        with gr.Row():
            a = gr.Textbox(label="system / prompt", lines=2)
            b = gr.Textbox(label="prompt / chosen", lines=2)
            c = gr.Textbox(label="response / rejected", lines=2)
        with gr.Row():
            add_btn = gr.Button("Add example")
            del_rows = gr.Textbox(label="Delete rows", placeholder="e.g. 2, 5-7", scale=2)
            del_btn = gr.Button("Delete")
            use_btn = gr.Button("Check these examples", variant="secondary")

    outputs = [status, issues, hist, fmt, *mapping_boxes, row_no]

    def analyse_here(*args: Any) -> tuple[Report | None, str]:
        return analyse(*args, ws=ctx.workspace)

    def run_format(src, f, mx, mdl):  # a new format starts from its default column mapping
        report, msg = analyse_here(src, f, {}, mdl, mx)
        return [report, *_outputs(report, msg, mx, src, f)]

    def run_mapping(src, f, mx, mdl, *maps):
        report, msg = analyse_here(src, f, _mapping(maps) if f != AUTO else {}, mdl, mx)
        return [report, *_outputs(report, msg, mx, src, f, _mapping(maps))]

    def load_file(path, mdl, mx):
        if not path:
            return [None, None, *_outputs(None, "No file chosen.", mx)]
        try:
            src = _source_from(read_rows(read_here(ctx.workspace, path, "The upload")))
        except StudioError as err:
            return [None, None, *_outputs(None, f"⚠️ {err}", mx)]
        report, msg = analyse_here(src, AUTO, {}, mdl, mx)
        return [src | {"origin": "upload"}, report, *_outputs(report, msg, mx)]

    def clear_upload(src, mx):
        """The upload box emptied: the rows it brought go too (rows opened another way stay)."""
        if not src or src.get("origin") != "upload":
            return [gr.skip(), gr.skip(), *[gr.skip()] * len(outputs)]
        return [None, None, *_outputs(None, "No file chosen.", mx)]

    def load_hub(ds_id, split, subset, mdl, mx):
        if not ds_id.strip():
            return [None, None, *_outputs(None, "Name a hub dataset, e.g. org/dataset.", mx)]
        try:
            read_here(ctx.workspace, ds_id.strip(), "The hub dataset")
            src = _source_from(read_source(ds_id.strip(), split.strip() or "train", subset.strip() or None,
                                           first=(WEB_HUB_ROWS, WEB_READ_BYTES)))
        except StudioError as err:
            return [None, None, *_outputs(None, f"⚠️ {err}", mx)]
        report, msg = analyse_here(src, AUTO, {}, mdl, mx)
        return [src, report, *_outputs(report, msg, mx)]

    def load_saved(name, mdl, mx):
        if not name:
            return [None, None, *_outputs(None, "Pick a saved dataset.", mx)]
        try:
            src = _source_from(read_rows(store.dataset_path(ctx.workspace, name)))
        except StudioError as err:
            return [None, None, *_outputs(None, f"⚠️ {err}", mx)]
        src["name"] = name
        report, msg = analyse_here(src, AUTO, {}, mdl, mx)
        return [src, report, *_outputs(report, msg, mx)]

    upload.upload(load_file, [upload, model, max_length], [source, report_state, *outputs], **action("data_upload"))
    upload.clear(clear_upload, [source, max_length], [source, report_state, *outputs], **glue("data_upload_clear"))
    hub_btn.click(load_hub, [hub_id, hub_split, hub_subset, model, max_length], [source, report_state, *outputs],
                  **action("data_from_hub"))
    saved_btn.click(load_saved, [saved, model, max_length], [source, report_state, *outputs],
                    **action("data_open_saved"))
    fmt.input(run_format, [source, fmt, max_length, model], [report_state, *outputs], **action("data_format"))
    recheck.click(run_mapping, [source, fmt, max_length, model, *mapping_boxes], [report_state, *outputs],
                  **action("data_map_columns"))
    for n, box in enumerate(mapping_boxes):
        box.input(run_mapping, [source, fmt, max_length, model, *mapping_boxes], [report_state, *outputs],
                  **glue(f"data_map_column_{n}"))

    def show_preview(report, n, mdl):
        if report is None or not report.records:
            return "", ""
        rec = report.records[min(int(n), len(report.records)) - 1]
        if rec is None:
            if report.format is None:
                return "<p>Map the columns first: no format is chosen yet.</p>", ""
            problem = next((i.message for i in report.issues if i.index == int(n) - 1), "it has a problem")
            return f"<p>Row {int(n)} is not usable: {html.escape(problem)}.</p>", ""
        try:
            name = readable_model(ctx.workspace, mdl.strip() or "tiny")
            pv = template_preview(rec, cached_tokenizer(name))
        except (StudioError, ValueError, TypeError) as err:
            return f"<p>No preview: {html.escape(str(err))}</p>", ""
        ref = str(rec.get("reference") or "")
        checked = "" if not ref else " RLHF's rule rewards check answers against this row's reference, " \
            f"«{html.escape(ref if len(ref) <= 300 else ref[:300] + ' …')}»."
        return pv.html(), f"<p><b>{pv.total} tokens</b>, {pv.trained} trained — {html.escape(pv.rule)}.{checked}</p>"

    for name, trigger in (("data_row_preview", row_no.change), ("data_preview_follow", report_state.change)):
        trigger(show_preview, [report_state, row_no, model], [preview, tok_info], **glue(name))

    def save(request: gr.Request, report, name, share):
        if report is None or not report.ok:
            return "⚠️ Nothing usable to save yet.", gr.update()
        try:
            before = store.versions(ctx.workspace, store.check_name(name))
            folder = store.save_dataset(ctx.workspace, name, report.usable, report.kind, float(share),
                                        source=report.source, created_by=ctx.user(request))
        except StudioError as err:
            return f"⚠️ {err}", gr.update()
        if before and folder.name == f"v{before[-1]}":
            return (f"**{folder.parent.name} {folder.name}** already holds exactly these rows and split: no new "
                    "version was made.", gr.update(choices=_saved_names(ctx), value=folder.parent.name))
        skipped = report.total_rows - len(report.usable)
        extra = f" ({skipped} unusable row{'s' if skipped != 1 else ''} left out)" if skipped else ""
        meta = store.version_meta(folder)
        split = f": {meta['train_rows']} to train, {meta['eval_rows']} held out for evaluation" \
            if meta.get("eval_rows") else ""
        n = len(report.usable)
        return (f"Saved **{folder.parent.name} {folder.name}**: {n} row{'s' if n != 1 else ''}{extra}{split}.",
                gr.update(choices=_saved_names(ctx), value=folder.parent.name))

    save_btn.click(save, [report_state, save_name, eval_share], [save_msg, saved], **action("data_save"))
    save_name.submit(save, [report_state, save_name, eval_share], [save_msg, saved], **glue("data_save_enter"))

    kind.change(lambda k: pd.DataFrame(columns=SFT_COLUMNS if k == "instructions" else PREF_COLUMNS),
                kind, table, **glue("data_table_kind"))
    add_btn.click(add_example, [table, kind, a, b, c], [table, a, b, c, save_msg], **action("data_add_example"))
    del_btn.click(delete_rows, [table, del_rows], [table, save_msg], **action("data_delete_rows"))

    def check_table(frame, k, mdl, mx):
        src = table_source(frame, k)
        if src is None:
            return [None, None, *_outputs(None, "Write at least one example first.", mx)]
        report, msg = analyse_here(src, "prompt_completion" if k == "instructions" else "preference",
                              dict(zip(*_table_mapping(k))), mdl, mx)
        return [src, report, *_outputs(report, msg, mx)]

    use_btn.click(check_table, [table, kind, model, max_length], [source, report_state, *outputs],
                  **action("data_check_table"))
    return {"model": model, "max_length": max_length}


def _saved_names(ctx: AppContext) -> list[str]:
    return [d["name"] for d in store.list_datasets(ctx.workspace)]


def _table_mapping(kind: str) -> tuple[list[str], list[str]]:
    if kind == "instructions":
        return ["system", "prompt", "completion"], ["system", "prompt", "response"]
    return ["prompt", "chosen", "rejected"], ["prompt", "chosen", "rejected"]


def table_source(frame: pd.DataFrame | None, kind: str) -> dict[str, Any] | None:
    """Rows written in the table, as if read from a file."""
    if frame is None or len(frame) == 0:
        return None
    frame = frame.fillna("")
    rows = [{k: str(v) for k, v in rec.items()} for rec in frame.to_dict(orient="records")]
    rows = [r for r in rows if any(v.strip() for v in r.values())]
    return {"rows": rows, "name": "examples written by hand", "kind": "table", "lines": None} if rows else None


def add_example(frame: pd.DataFrame | None, kind: str, a: str, b: str, c: str):
    cols = SFT_COLUMNS if kind == "instructions" else PREF_COLUMNS
    values = [a, b, c]
    if not any(v.strip() for v in values):
        return frame, a, b, c, "Type an example first."
    frame = frame if frame is not None and len(frame.columns) == 3 else pd.DataFrame(columns=cols)
    row = pd.DataFrame([dict(zip(cols, values))])
    return pd.concat([frame, row], ignore_index=True), "", "", "", f"Added example {len(frame) + 1}."


def parse_row_numbers(text: str, count: int) -> list[int]:
    """'2, 5-7' -> [1, 4, 5, 6] (0-based), or ValueError naming the bad part."""
    out: set[int] = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        lo, _, hi = part.partition("-")
        try:
            start, end = int(lo), int(hi or lo)
        except ValueError:
            raise ValueError(f"'{part}' is not a row number or range like 5-7.") from None
        if not 1 <= start <= end <= count:
            raise ValueError(f"Rows {part} are outside 1-{count}.")
        out.update(range(start - 1, end))
    return sorted(out)


def delete_rows(frame: pd.DataFrame | None, text: str):
    if frame is None or len(frame) == 0:
        return frame, "There are no rows to delete."
    try:
        idx = parse_row_numbers(text, len(frame))
    except ValueError as err:
        return frame, f"⚠️ {err}"
    return frame.drop(index=frame.index[idx]).reset_index(drop=True), f"Deleted {len(idx)} row{'' if len(idx) == 1 else 's'}."

