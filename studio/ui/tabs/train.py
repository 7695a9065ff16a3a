"""Train tab: set the hyper-parameters, Start / Stop / Resume, watch the progress bar and the curves
stream in, and compare runs.

The model, method and stage come from the Method tab (or a preset) through `base`, a per-browser
gr.State holding a config mapping; this tab fills in data and training settings on top of it.
Everything shown about runs is read back from their folders once a second.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from studio.access import readable_config, run_id_only
from studio.config import PRECISIONS, SCHEDULERS, RunConfig, apply_overrides, dump_config, load_config
from studio.config_form import config_from_form, path_value
from studio.config_speed import ATTENTIONS, BATCHINGS, SWITCHES
from studio.data.load import has_eval_split, saved_dataset
from studio.data.store import list_datasets
from studio.errors import StudioError
from studio.paths import DEMO_DATA, resolve_project_path
from studio.train import runner
from studio.train.metrics import MetricsReader
from studio.train.runs import curves, finished_runs, labelled_runs, list_runs, progress, run_label
from studio.train.status import RunState, RunStatus, read_status
from studio.ui import rewards_panel, run_details
from studio.ui.api import action, glue
from studio.ui.context import AppContext
from studio.ui.plots import training_curves
from studio.ui.presets import DEFAULT_PRESET, load_preset, preset_names, starting_config

FAST_TICK, IDLE_TICK = 1.0, 10.0
"""Seconds between the Train tab's refreshes while a run is active, and while none is."""
ACTIVE_STATES = ("queued", "starting", "running", "stopping")

# The form, keyed by config path: a new knob is one line here. Each row is a list of
# (path, builder); a builder takes the value from the loaded config and returns the component.
Builder = Callable[[Any], Any]
STRATEGY_CHOICES = [("one copy per GPU (DDP)", "ddp"), ("FSDP: all sharded", "fsdp"),
                    ("ZeRO-2: gradients, optimizer sharded", "zero2"), ("ZeRO-3: all sharded", "zero3")]
FORM_ROWS: list[list[tuple[str, Builder]]] = [
    [("train.learning_rate", lambda v: gr.Number(v, label="Learning rate", min_width=110)),
     ("train.max_steps", lambda v: gr.Number(v, label="Max steps (-1: by epochs)", step=1, min_width=110)),
     ("train.epochs", lambda v: gr.Number(v, label="Epochs", minimum=0, min_width=110)),
     ("train.batch_size", lambda v: gr.Number(v, label="Batch size", minimum=1, step=1, min_width=110))],
    [("train.warmup_ratio", lambda v: gr.Number(v, label="Warmup share", minimum=0, maximum=0.99, min_width=110)),
     ("train.logging_steps", lambda v: gr.Number(v, label="Log every", minimum=1, step=1, min_width=110)),
     ("train.save_steps", lambda v: gr.Number(v, label="Checkpoint every (0: each epoch)", step=1, min_width=110)),
     ("train.eval_steps", lambda v: gr.Number(v, label="Eval every (0: each epoch)", minimum=0, step=1,
                                              min_width=110)),
     ("train.grad_accum", lambda v: gr.Number(v, label="Grad accumulation", minimum=1, step=1, min_width=110))],
    [("train.scheduler", lambda v: gr.Dropdown(list(SCHEDULERS), value=v, label="Schedule", min_width=110)),
     ("train.precision", lambda v: gr.Dropdown(list(PRECISIONS), value=v, label="Precision", min_width=110)),
     ("train.gradient_checkpointing", lambda v: gr.Dropdown(list(SWITCHES), value=v, label="Gradient checkpointing",
                                                            info="auto: only if the estimate says it is needed",
                                                            min_width=110)),
     ("train.num_processes", lambda v: gr.Number(v, label="Processes (GPUs)", minimum=1, step=1, min_width=110,
                                                 maximum=runner.device_count()[0])),
     ("train.strategy", lambda v: gr.Dropdown(STRATEGY_CHOICES, value=v, label="Across GPUs", min_width=110))],
    [("speed.attention", lambda v: gr.Dropdown(list(ATTENTIONS), value=v, label="Attention", min_width=110)),
     ("speed.batching", lambda v: gr.Dropdown(list(BATCHINGS), value=v, label="Batching", min_width=110,
                                              info="by_length / padding_free: less padding")),
     ("speed.liger", lambda v: gr.Dropdown(list(SWITCHES), value=v, label="Liger kernels", min_width=110)),
     ("speed.fused_optimizer", lambda v: gr.Dropdown(list(SWITCHES), value=v, label="Fused AdamW", min_width=110))],
    [("data.subset", lambda v: gr.Textbox(v or "", label="Subset", placeholder="optional", min_width=110,
                                          info="of a hub dataset or a folder laid out as one (GSM8K: main)")),
     ("data.split", lambda v: gr.Textbox(v, label="Split to train on", min_width=110,
                                         info="train, or a slice: train[:1000]")),
     ("data.eval_split", lambda v: gr.Textbox(v or "", label="Split to evaluate on", placeholder="optional",
                                              min_width=110, info="test: with no eval data, from the training data"))],
]
ESSENTIAL_ROWS = 2
"""The first rows are always shown; the rest fold away under "More settings"."""
FORM_PATHS = [path for row in FORM_ROWS for path, _ in row]
DATA_PATHS = ["data.train", "data.eval", "data.eval_fraction", "data.max_length", "data.system"]
RUN_PATHS = ["name", "model.parent_run"]
ALL_PATHS = [*FORM_PATHS, *DATA_PATHS, *rewards_panel.RL_PATHS, *RUN_PATHS]
"""Every component this tab reads into the run config, in the order handlers receive them."""


def demo_choices() -> list[str]:
    return [f"assets/data/{p.name}" for p in sorted(DEMO_DATA.glob("*.jsonl"))] if DEMO_DATA.exists() else []


def data_choices(ctx: AppContext) -> list[str]:
    return [d["name"] for d in list_datasets(ctx.workspace)] + demo_choices()


def eval_choices(ctx: AppContext) -> list[str]:
    """Eval data: the held-out split of each saved dataset that has one ('name:eval'), then the rest."""
    held = [f"{d['name']}:eval" for d in list_datasets(ctx.workspace) if d.get("eval_rows")]
    return held + data_choices(ctx)


def eval_for(ctx: AppContext, train: str | None, current: str | None) -> Any:
    """The eval data follows the training data the user picks: a saved dataset's eval split when it has one;
    otherwise an eval choice that belongs to other data (another dataset's eval split, the demo's eval file
    beside data of the user's own) is cleared, and the share set beside it (if any) is held out instead."""
    saved = saved_dataset(train, ctx.workspace) if train else None
    if saved is not None and saved[1] == "train" and has_eval_split(ctx.workspace, saved[0]):
        return gr.update(value=f"{saved[0]}:eval")
    demos = {_project_file(d) for d in demo_choices()}
    demo_beside_own = _project_file(current) in demos and _project_file(train) not in demos
    if str(current or "").endswith(":eval") or demo_beside_own:
        return gr.update(value=None)  # another dataset's split (or one deleted since), or the demo's file
    return gr.update()


def _project_file(value: str | None) -> str:
    """A path as the project reads it ('./assets/x' and 'assets/x' alike); '' for none."""
    return str(resolve_project_path(value)) if value else ""


def form_values(raw: dict[str, Any], paths: list[str]) -> list[Any]:
    """The values a config mapping gives the fields at `paths` (defaults where it says nothing)."""
    cfg = RunConfig.from_dict(raw)
    return [path_value(cfg, p) for p in paths]


def _describe(raw: dict[str, Any]) -> str:
    try:
        cfg = RunConfig.from_dict(raw)
    except ValueError as err:
        return f"⚠️ {err}"
    lo = f" r{cfg.lora.r} on {', '.join(cfg.lora.targets)}" if cfg.method.name != "full" else ""
    return f"**{cfg.model.name}** · {cfg.method.name}{lo} · {cfg.method.stage}"


def progress_html(status: RunStatus) -> str:
    p = progress(status)
    state = p["state"]
    eta = f", about {_clock(p['eta'])} left" if p["eta"] is not None else ""
    queued = ""
    if state == "queued":
        holder = status.waiting_for
        queued = f" — waiting for {html.escape(str(holder))} to finish" if holder else " — starting soon"
    error = (f'<div class="run-error">{html.escape(status.shown_error)}</div>'
             if state in ("failed", "dead") and status.shown_error else "")
    if status.data_note:
        error += f'<div class="run-note">{html.escape(status.data_note)}</div>'

    pct = round(100 * p["fraction"], 1)
    return (f'<div class="run-progress"><div class="bar"><div class="fill state-{state}" style="width:{pct}%">'
            f'</div></div><div class="caption"><b>{state}</b>{queued} · step {p["step"]} / {p["total"] or "?"} · '
            f'{_clock(p["elapsed"])} elapsed{eta}</div>{error}</div>')


def _clock(seconds: float | None) -> str:
    s = int(seconds or 0)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def read_curves(ctx: AppContext, readers: dict[str, Any], run_ids: list[str]) -> dict[str, Any]:
    """Read only new metric lines for each run; readers (per browser) keep offsets and records. Sets
    readers["_fresh"] when any run had new lines (or restarted its file)."""
    out = {}
    readers["_fresh"] = False
    for run_id in run_ids:
        try:
            run_dir = run_id_only(ctx.workspace, run_id)
        except StudioError:
            continue
        entry = readers.setdefault(run_id, {"reader": MetricsReader(run_dir), "records": [],
                                            "stage": read_status(run_dir).stage})
        new = entry["reader"].read_new()
        readers["_fresh"] = readers["_fresh"] or bool(new) or entry["reader"].restarted
        entry["records"] = new if entry["reader"].restarted else entry["records"] + new
        out[run_id] = curves(entry["records"])
    return out


RUN_COLUMNS = ["run", "name", "stage", "model", "method", "status", "steps", "final loss", "exact match", "ROUGE-L",
               "duration",
               "parent", "error"]


def runs_frame(ctx: AppContext) -> pd.DataFrame:
    return pd.DataFrame(list_runs(ctx.workspace), columns=RUN_COLUMNS)


def build(ctx: AppContext) -> dict[str, Any]:
    initial = starting_config()
    base = gr.State(initial)
    readers = gr.State({})
    signature = gr.State({})  # what this browser was last sent: only changes are sent again
    start_values = dict(zip(ALL_PATHS, form_values(initial, ALL_PATHS)))
    f: dict[str, Any] = {}  # components by config path
    with gr.Row(equal_height=False):
        with gr.Column(scale=5, min_width=420):  # the settings
            with gr.Row():
                preset = gr.Dropdown(preset_names(), label="Start from a preset", scale=3,
                                     value=DEFAULT_PRESET if DEFAULT_PRESET in preset_names() else None)
                load_btn = gr.Button("Load preset", scale=1)
            summary = gr.Markdown(_describe(initial), elem_id="train-summary")
            with gr.Row():
                f["data.train"] = gr.Dropdown(demo_choices(), value=start_values["data.train"], allow_custom_value=True,
                                              label="Training data", info="a saved dataset, a demo file or a path",
                                              scale=3)
                f["data.eval"] = gr.Dropdown(demo_choices(), value=start_values["data.eval"], allow_custom_value=True,
                                             label="Eval data (optional)", scale=2)
            with gr.Row():
                f["data.eval_fraction"] = gr.Number(start_values["data.eval_fraction"], minimum=0, maximum=0.9,
                                                    label="…or hold out this share")
                f["data.max_length"] = gr.Number(start_values["data.max_length"], label="Max length", minimum=16,
                                                 step=1)
                f["data.system"] = gr.Textbox(start_values["data.system"] or "", label="System message (optional)",
                                              scale=3, info="first in every conversation without one; chats with "
                                                            "the run, its evaluations and exports use it too")
            for row in FORM_ROWS[:ESSENTIAL_ROWS]:
                with gr.Row():
                    for path, make in row:
                        f[path] = make(start_values[path])
            with gr.Accordion("More settings", open=False):
                for row in FORM_ROWS[ESSENTIAL_ROWS:]:
                    with gr.Row():
                        for path, make in row:
                            f[path] = make(start_values[path])
            rl_group, rl_fields = rewards_panel.build(ctx, start_values,
                                                      rewards_panel.uses_rl(initial.get("method", {}).get("stage")))
            f.update(rl_fields)
            with gr.Row():
                f["name"] = gr.Textbox(label="Run name", placeholder="optional", scale=2)
                f["model.parent_run"] = gr.Dropdown([], value=None, label="Start from an earlier run",
                                                    allow_custom_value=True, scale=2)
            with gr.Row():
                start = gr.Button("Start", variant="primary")
                stop = gr.Button("Stop", variant="stop")
                resume = gr.Button("Resume")
            message = gr.Markdown(elem_id="train-message")
            with gr.Accordion("The config that will run", open=False):
                yaml_view = gr.Code(language="yaml", interactive=False, label="config.yaml")
        with gr.Column(scale=6, min_width=480):  # the live run
            # the run this browser watches; any run id may be typed, the workspace decides whether it exists
            watch = gr.Dropdown([], value=None, label="Watching run", allow_custom_value=True)
            bar = gr.HTML(elem_id="train-progress")
            plot = gr.Plot(label="Curves", elem_id="train-curves")
            overlay = gr.CheckboxGroup([], label="Overlay these runs")
            samples = gr.Dataframe(pd.DataFrame(columns=rewards_panel.SAMPLE_COLUMNS), interactive=False, wrap=True,
                                   label="Answers written during training (RLHF and PPO runs)",
                                   elem_id="train-samples", max_height=260)
    # the page is built once for every user: workspace contents arrive with the first refresh, for admins
    runs = gr.Dataframe(pd.DataFrame(columns=RUN_COLUMNS), interactive=False, label="Runs", wrap=True, elem_id="train-runs")
    timer = gr.Timer(1.0, active=False)  # started at page load for admins (see app.py)
    loaded_paths = [*FORM_PATHS, *DATA_PATHS, *rewards_panel.RL_PATHS]

    def clone(raw: dict[str, Any]) -> list[Any]:
        cfg = RunConfig.from_dict(raw).validate()
        parent = cfg.model.parent_run
        return [cfg.to_dict(), *form_values(cfg.to_dict(), loaded_paths), Path(parent).name if parent else None]

    cloned = run_details.build(ctx, watch, [base, *[f[p] for p in loaded_paths], f["model.parent_run"]], clone,
                               runs, lambda: runs_frame(ctx))

    ctx.picker(f["data.train"], lambda: data_choices(ctx))  # datasets saved in the Data tab meanwhile show up
    ctx.picker(f["data.eval"], lambda: eval_choices(ctx))
    f["data.train"].input(lambda t, e: eval_for(ctx, t, e), [f["data.train"], f["data.eval"]], f["data.eval"],
                          show_progress="hidden", **glue("train_eval_follows_data"))
    ctx.picker(f["model.parent_run"], lambda: labelled_runs(ctx.workspace, finished_runs(ctx.workspace)))
    fields = [f[p] for p in ALL_PATHS]

    def preview(b, *values):
        try:
            cfg = config_from_form(b, dict(zip(ALL_PATHS, values)))
        except (ValueError, StudioError) as err:
            return f"⚠️ {err}", ""
        return _describe(cfg.to_dict()), dump_config(cfg)

    gr.on([comp.change for comp in fields] + [base.change], preview, [base, *fields], [summary, yaml_view],
          **action("train_preview"))
    base.change(lambda b: gr.update(visible=rewards_panel.uses_rl((b or {}).get("method", {}).get("stage"))),
                base, rl_group, **glue("train_rl_fields"))

    def on_load_preset(name):
        try:
            cfg = load_preset(name)
        except (StudioError, ValueError) as err:
            return [gr.update(), f"⚠️ {err}", gr.update(), *[gr.update() for _ in loaded_paths]]
        # the reward fields are shown in the same answer as the sentence, not one event later
        rl = gr.update(visible=rewards_panel.uses_rl(cfg.get("method", {}).get("stage")))
        return [cfg, f"Loaded preset {name}.", rl, *form_values(cfg, loaded_paths)]

    loaded = load_btn.click(on_load_preset, preset, [base, message, rl_group, *[f[p] for p in loaded_paths]],
                            **action("train_load_preset"))

    def on_start(request: gr.Request, b, *values):
        try:
            cfg = readable_config(ctx.workspace, config_from_form(b, dict(zip(ALL_PATHS, values))), ctx.reward_code)
            run_dir = runner.start_run(ctx.workspace, cfg, started_by=ctx.user(request))
        except (ValueError, StudioError) as err:
            return f"⚠️ {err}", gr.update()
        ids = [p.name for p in ctx.workspace.list_runs()]
        return f"Started run **{run_dir.name}**.", gr.update(choices=labelled_runs(ctx.workspace, ids),
                                                             value=run_dir.name)

    # quick answers: no progress timer beside the message (it would sit beside the sentence it waits for)
    start.click(on_start, [base, *fields], [message, watch], show_progress="hidden", **action("train_start")).then(
        lambda: gr.Timer(value=FAST_TICK), None, timer, show_progress="hidden", **glue("train_tick_fast"))

    def start_preset(request: gr.Request, preset: str, changes: list[str] | None = None) -> str:
        """For API clients: start a run from a preset with `section.key=value` changes (as `studio train
        --set` takes them); returns the run id. Checked as the Start button is."""
        try:
            raw = apply_overrides(load_preset(preset), [str(c) for c in changes or []])
            cfg = readable_config(ctx.workspace, RunConfig.from_dict(raw).validate(), ctx.reward_code)
            return runner.start_run(ctx.workspace, cfg, started_by=ctx.user(request)).name
        except (ValueError, StudioError) as err:
            raise gr.Error(str(err)) from None

    gr.api(start_preset, api_name="train_start_preset")

    def on_stop(run_id):
        if not run_id:
            return "Pick the run to stop."
        try:
            run_dir = run_id_only(ctx.workspace, run_id)
            after = runner.stop_run(run_dir)
        except StudioError as err:
            return f"⚠️ {err}"
        if after.state is RunState.STOPPED:
            return f"Stopped {run_dir.name} before it began training, at {time.strftime('%H:%M:%S')}: nothing to save."
        return f"Asked {run_dir.name} to stop at {time.strftime('%H:%M:%S')}: it saves a checkpoint first."

    def on_resume(run_id):
        if not run_id:
            return "Pick the run to resume."
        try:
            run_dir = run_id_only(ctx.workspace, run_id)
            if not ctx.reward_code:  # a run from the command line may score with code this studio does not run
                readable_config(ctx.workspace, load_config(run_dir / "config.yaml"), reward_code=False)
            runner.resume_run(ctx.workspace, run_dir)
        except (StudioError, ValueError) as err:
            return f"⚠️ {err}"
        return f"Resumed {run_dir.name} from its latest checkpoint at {time.strftime('%H:%M:%S')}."

    stop.click(on_stop, watch, message, show_progress="hidden", **action("train_stop"))
    resume.click(on_resume, watch, message, show_progress="hidden", **action("train_resume")).then(
        lambda: gr.Timer(value=FAST_TICK), None, timer, show_progress="hidden", **glue("train_tick_fast_resume"))

    def first_watch(current):
        """At page load an empty picker watches the newest run; after that only Start and the user set it."""
        ids = [p.name for p in ctx.workspace.list_runs()]
        return gr.update(choices=labelled_runs(ctx.workspace, ids), value=current or (ids[0] if ids else None))

    ctx.on_load.append((first_watch, [watch], [watch], "train_first_watch"))

    def tick(run_id, chosen, rds, sig):
        """Once a second: progress, curves, the runs table and the pickers' choices. It never changes which
        run is watched: its input may be a second old, and writing it back would undo a Start or a pick."""
        table = runs_frame(ctx)
        ids = list(table["run"])
        labels = {r.run: run_label(r.run, r.name) for r in table.itertuples()}
        status, run_dir = None, None
        if run_id:
            try:
                run_dir = run_id_only(ctx.workspace, run_id)
                status = runner.observe(run_dir)
            except StudioError:
                status, run_dir = None, None
        table_sig = "|".join(":".join(map(str, row)) for row in
                             table[["run", "name", "status", "steps", "exact match", "ROUGE-L"]].values) \
            + f"|{run_id}:{rewards_panel.samples_size(run_dir)}"
        wanted = list(dict.fromkeys(([run_id] if status else []) + [c for c in (chosen or []) if c in ids]))
        curves_now = read_curves(ctx, rds, wanted) if wanted else {}
        completed = [r.run for r in table.itertuples() if r.status == "completed"]
        last = sig if isinstance(sig, dict) else {}
        changed = table_sig != last.get("table")
        if status is not None:
            shown = progress_html(status)
        elif run_id:
            shown = f"No run {html.escape(str(run_id))} in this workspace."
        else:
            shown = "Pick a run to watch, or press Start." if ids else "No runs yet: press Start."
        keep = gr.update()
        redraw = rds.get("_fresh") or wanted != last.get("wanted")
        stages = {r: rds.get(r, {}).get("stage") for r in curves_now}
        figure = (training_curves(curves_now, stages=stages) if wanted else None) if redraw else keep
        state = status.shown_state if status is not None else None
        # once a second while any run is active, else every few seconds: an idle page costs little
        interval = FAST_TICK if any(s in ACTIVE_STATES for s in table["status"]) else IDLE_TICK
        new_sig = {"table": table_sig, "wanted": wanted, "shown": shown, "state": state, "run": run_id,
                   "interval": interval}
        return (shown if shown != last.get("shown") else keep, figure, rds, new_sig, table if changed else keep,
                rewards_panel.samples_frame(run_dir) if changed else keep,
                gr.update(choices=[(labels[r], r) for r in ids]) if changed else keep,
                gr.update(choices=[(labels[r], r) for r in completed]) if changed else keep,
                gr.Timer(value=interval) if interval != last.get("interval", FAST_TICK) else keep)

    # the tick writes neither the watched run nor the message: its inputs may be a second old, and an
    # answer from it landing after Start's would undo what Start just said (the picker refreshes on focus)
    ctx.picker(watch, lambda: labelled_runs(ctx.workspace, [p.name for p in ctx.workspace.list_runs()]))
    timer.tick(tick, [watch, overlay, readers, signature], [bar, plot, readers, signature, runs, samples, overlay,
                                                            f["model.parent_run"], timer],
               show_progress="hidden", **glue("train_tick"))
    return {"base": base, "data_train": f["data.train"], "preset_loaded": loaded, "cloned": cloned, "timer": timer,
            "max_length": f["data.max_length"], "batch_size": f["train.batch_size"],
            "checkpointing": f["train.gradient_checkpointing"], "processes": f["train.num_processes"],
            "strategy": f["train.strategy"]}
