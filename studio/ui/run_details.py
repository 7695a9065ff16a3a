"""The Train tab's panel for the watched run as an experiment: its name and notes, its metrics as a table,
its log, a config diff against another run, clone into the form, and delete (asked twice)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradio as gr
import pandas as pd

from studio.access import run_id_only
from studio.errors import StudioError
from studio.train import experiments
from studio.train.runs import labelled_runs
from studio.ui.api import action, glue
from studio.ui.context import AppContext
from studio.workspace import read_run_config, run_names

DIFF_COLUMNS = ["setting", "this run", "the other run"]
NAME_HINT = "e.g. lr 3e-4, more data"


def started_name(run_dir: Any) -> str:
    """The name a run was started with (its config's `name:`), '' when it has none or its config is unreadable."""
    try:
        name = read_run_config(run_dir).get("name")
    except StudioError:
        return ""
    return name if isinstance(name, str) else ""


def build(ctx: AppContext, watch: Any, clone_outputs: list[Any], clone: Callable[[dict[str, Any]], list[Any]],
          runs: Any, runs_now: Callable[[], Any]) -> Any:
    """`clone(config mapping)` gives the values of `clone_outputs` for a run's config (the form, the base);
    `runs_now()` the runs table, redrawn at once after a rename or a delete (the page's timer is slow while
    nothing trains). Returns the clone event, for the Method tab to follow it as it follows a loaded preset."""
    with gr.Accordion("The watched run: name, notes, metrics, log, compare, clone, delete", open=False) as panel:
        with gr.Row():
            title = gr.Textbox(label="Name", placeholder=NAME_HINT, scale=2)
            notes = gr.Textbox(label="Notes", lines=2, scale=4)
            save = gr.Button("Save name and notes", scale=1)
        said = gr.Markdown(elem_id="run-details-message")
        with gr.Row():
            clone_btn = gr.Button("Clone into the form", scale=1)
            other = gr.Dropdown([], label="Compare its config with", allow_custom_value=True, scale=2)
            delete = gr.Button("Delete this run…", variant="stop", scale=1)
            confirm = gr.Button("Yes, delete it with its checkpoints", variant="stop", visible=False, scale=1)
            cancel = gr.Button("Keep it", visible=False, scale=1)
        diff = gr.Dataframe(pd.DataFrame(columns=DIFF_COLUMNS), label="Config differences", interactive=False,
                            wrap=True)
        metrics = gr.Dataframe(pd.DataFrame(columns=["step", "loss"]), label="Logged metrics (latest 50 logs)",
                               interactive=False, max_height=300)
        with gr.Row():
            log = gr.Textbox(label="Log (the end of stdout.log)", lines=10, max_lines=20, interactive=False,
                             scale=6, elem_id="run-log")
            refresh = gr.Button("↻ Refresh", scale=0, min_width=80)
    ctx.picker(other, lambda: labelled_runs(ctx.workspace, [p.name for p in ctx.workspace.list_runs()]))

    def show(run_id):
        """Everything the panel shows for the watched run."""
        try:
            run_dir = run_id_only(ctx.workspace, run_id or "")
        except StudioError:
            return (gr.update(value="", placeholder=NAME_HINT), "", pd.DataFrame(columns=["step", "loss"]), "",
                    gr.update(visible=False), gr.update(visible=False))
        d = experiments.details(run_dir)
        table = pd.DataFrame(experiments.metrics_table(run_dir))
        began = started_name(run_dir)  # shown, not filled in: saving the notes gives no run a name it was not given
        return (gr.update(value=d["title"], placeholder=f"started as {began}" if began else NAME_HINT), d["notes"], table if len(table) else pd.DataFrame(columns=["step", "loss"]),
                experiments.log_tail(run_dir), gr.update(visible=False), gr.update(visible=False))

    shown = [title, notes, metrics, log, confirm, cancel]
    is_open = gr.State(False)  # filled only while open: a late fill must never wipe a name being typed

    def show_if_open(run_id, open_now):
        return show(run_id) if open_now else [gr.skip()] * len(shown)

    watch.change(show_if_open, [watch, is_open], shown, show_progress="hidden", **glue("run_panel_follow"))
    refresh.click(show, watch, shown, show_progress="hidden", **action("run_details"))
    panel.expand(lambda run_id: [True, *show(run_id)], watch, [is_open, *shown], show_progress="hidden",
                 **glue("run_panel_open"))
    panel.collapse(lambda: False, None, is_open, show_progress="hidden", **glue("run_panel_close"))

    def save_details(run_id, new_title, new_notes):
        try:
            run_dir = run_id_only(ctx.workspace, run_id or "")
            saved = experiments.set_details(run_dir, new_title or "", new_notes or "")
        except StudioError as err:
            return f"⚠️ {err}", gr.skip()
        # the picker says the new name now (and holds the id: a name typed into it may have changed)
        ids = [p.name for p in ctx.workspace.list_runs()]
        twins = [p.name for p in ctx.workspace.list_runs() if p != run_dir and saved["title"] in run_names(p)]
        shared = f" ⚠️ Run {twins[0]} is called that too{f' (and {len(twins) - 1} more)' if len(twins) > 1 else ''}: " \
                 "the name finds neither now; pick them by id, or give one another name." if twins else ""
        return f"Saved the name and notes of {run_dir.name}.{shared}", \
            gr.update(choices=labelled_runs(ctx.workspace, ids), value=run_dir.name)

    gr.on([save.click, title.submit], save_details, [watch, title, notes], [said, watch],  # Enter in Name saves too
          **action("run_rename")).then(runs_now, None, runs, show_progress="hidden", **glue("run_rename_table"))

    def compare(run_id, with_id):
        if not run_id or not with_id:
            return pd.DataFrame(columns=DIFF_COLUMNS), gr.skip()
        try:
            rows = experiments.config_diff(run_id_only(ctx.workspace, run_id), run_id_only(ctx.workspace, with_id))
        except StudioError as err:
            return pd.DataFrame(columns=DIFF_COLUMNS), f"⚠️ {err}"
        text = f"{len(rows)} settings differ." if rows else "The two configs are the same."
        return pd.DataFrame([(k, str(a), str(b)) for k, a, b in rows], columns=DIFF_COLUMNS), text

    other.input(compare, [watch, other], [diff, said], **action("run_config_diff"))

    def do_clone(run_id):
        try:
            run_dir = run_id_only(ctx.workspace, run_id or "")
            raw = experiments.run_config_dict(run_dir)
            raw.pop("name", None)
            return [*clone(raw), f"The form now holds the config of {run_dir.name}: change what you like and press "
                                 "Start."]
        except (StudioError, ValueError) as err:
            return [*[gr.skip()] * len(clone_outputs), f"⚠️ {err}"]

    cloned = clone_btn.click(do_clone, watch, [*clone_outputs, said], **action("run_clone"))
    delete.click(lambda: (gr.update(visible=True), gr.update(visible=True)), None, [confirm, cancel],
                 **glue("run_delete_ask"))
    cancel.click(lambda: (gr.update(visible=False), gr.update(visible=False)), None, [confirm, cancel],
                 **glue("run_delete_cancel"))

    def do_delete(run_id):
        hide = [gr.update(visible=False), gr.update(visible=False)]
        try:
            run_dir = run_id_only(ctx.workspace, run_id or "")
            experiments.delete_run(run_dir)
        except StudioError as err:
            return [f"⚠️ {err}", *hide, gr.skip()]
        ids = [p.name for p in ctx.workspace.list_runs()]
        return [f"Deleted run {run_dir.name}.", *hide,
                gr.update(choices=labelled_runs(ctx.workspace, ids), value=ids[0] if ids else None)]

    confirm.click(do_delete, watch, [said, confirm, cancel, watch], **action("run_delete")).then(
        runs_now, None, runs, show_progress="hidden", **glue("run_delete_table"))
    return cloned
