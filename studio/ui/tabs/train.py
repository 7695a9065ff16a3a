"""Train tab: set the hyper-parameters, Start / Stop / Resume, watch the progress bar and the curves
stream in, and compare runs.

The model, method and stage come from the Method tab (or a preset) through `base`, a per-browser
gr.State holding a config mapping; this tab fills in data and training settings on top of it.
Everything shown about runs is read back from their folders once a second.
"""

from __future__ import annotations

import copy
import html
from typing import Any

import gradio as gr
import pandas as pd
import yaml

from studio.config import SCHEDULERS, RunConfig, dump_config
from studio.data.store import list_datasets
from studio.errors import StudioError
from studio.paths import DEMO_DATA, PRESETS
from studio.train import runner
from studio.train.metrics import MetricsReader
from studio.train.runs import curves, finished_runs, list_runs, progress
from studio.train.status import read_status
from studio.ui.context import AppContext
from studio.ui.plots import training_curves

DEFAULT_PRESET = "tiny-sft-lora.yaml"
TRAIN_FIELDS = ["learning_rate", "epochs", "max_steps", "batch_size", "grad_accum", "warmup_ratio", "scheduler",
                "precision", "gradient_checkpointing", "logging_steps", "save_steps", "num_processes"]
DATA_FIELDS = ["train", "eval", "eval_fraction", "max_length"]


def preset_names() -> list[str]:
    return sorted(p.name for p in PRESETS.glob("*.yaml"))


def load_preset(name: str) -> dict[str, Any]:
    path = PRESETS / name
    if not name or not path.exists():
        raise StudioError(f"No preset named {name!r}.")
    return RunConfig.from_dict(yaml.safe_load(path.read_text(encoding="utf-8"))).validate().to_dict()


def data_choices(ctx: AppContext) -> list[str]:
    demo = [f"assets/data/{p.name}" for p in sorted(DEMO_DATA.glob("*.jsonl"))] if DEMO_DATA.exists() else []
    return [d["name"] for d in list_datasets(ctx.workspace)] + demo


def compose(base: dict[str, Any], train_values: list[Any], data_values: list[Any], name: str,
            parent: str | None) -> RunConfig:
    """The run config Start will use: the base (Method tab or preset) plus this tab's fields."""
    raw = copy.deepcopy(base or {})
    raw.setdefault("train", {}).update({k: v for k, v in zip(TRAIN_FIELDS, train_values) if v is not None})
    data = raw.setdefault("data", {})
    for key, value in zip(DATA_FIELDS, data_values):
        if key == "eval":
            value = value or None
        if value is not None or key == "eval":
            data[key] = value
    for key in ("epochs", "learning_rate", "warmup_ratio"):
        if key in raw["train"]:
            raw["train"][key] = float(raw["train"][key])
    for key in ("max_steps", "batch_size", "grad_accum", "logging_steps", "save_steps", "num_processes"):
        if key in raw["train"]:
            raw["train"][key] = int(raw["train"][key])
    if name and name.strip():
        raw["name"] = name.strip()
    if parent:
        raw.setdefault("model", {})["parent_run"] = parent
    return RunConfig.from_dict(raw).validate()


def _describe(raw: dict[str, Any]) -> str:
    try:
        cfg = RunConfig.from_dict(raw)
    except ValueError as err:
        return f"⚠️ {err}"
    lo = f" r{cfg.lora.r} on {', '.join(cfg.lora.targets)}" if cfg.method.name != "full" else ""
    return f"**{cfg.model.name}** · {cfg.method.name}{lo} · {cfg.method.stage}"


def progress_html(status: dict[str, Any]) -> str:
    p = progress(status)
    state = p["state"]
    eta = f", about {_clock(p['eta'])} left" if p["eta"] is not None else ""
    queued = ""
    if state == "queued":
        holder = status.get("waiting_for")
        queued = f" — waiting for {html.escape(str(holder))} to finish" if holder else " — starting soon"
    error = (f'<div class="run-error">{html.escape(str(status.get("error")))}</div>'
             if state == "failed" and status.get("error") else "")
    pct = round(100 * p["fraction"], 1)
    return (f'<div class="run-progress"><div class="bar"><div class="fill state-{state}" style="width:{pct}%">'
            f'</div></div><div class="caption"><b>{state}</b>{queued} · step {p["step"]} / {p["total"] or "?"} · '
            f'{_clock(p["elapsed"])} elapsed{eta}</div>{error}</div>')


def _clock(seconds: float | None) -> str:
    s = int(seconds or 0)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def read_curves(ctx: AppContext, readers: dict[str, Any], run_ids: list[str]) -> dict[str, Any]:
    """Read only new metric lines for each run; readers (per browser) keep offsets and records."""
    out = {}
    for run_id in run_ids:
        try:
            run_dir = ctx.workspace.run_dir(run_id)
        except StudioError:
            continue
        entry = readers.setdefault(run_id, {"reader": MetricsReader(run_dir), "records": []})
        entry["records"].extend(entry["reader"].read_new())
        out[run_id] = curves(entry["records"])
    return out


def runs_frame(ctx: AppContext) -> pd.DataFrame:
    rows = list_runs(ctx.workspace)
    cols = ["run", "stage", "model", "method", "status", "steps", "final loss", "duration", "parent", "error"]
    return pd.DataFrame(rows, columns=cols)


def build(ctx: AppContext) -> dict[str, Any]:
    try:
        initial = load_preset(DEFAULT_PRESET)
    except StudioError:
        initial = RunConfig().to_dict()
    base = gr.State(initial)
    readers = gr.State({})
    signature = gr.State("")
    t0, d0 = initial.get("train", {}), initial.get("data", {})
    with gr.Row():
        preset = gr.Dropdown(preset_names(), value=DEFAULT_PRESET if DEFAULT_PRESET in preset_names() else None,
                             label="Start from a preset", scale=3)
        load_btn = gr.Button("Load preset", scale=1)
        summary = gr.Markdown(_describe(initial), elem_id="train-summary")
    with gr.Row():
        d_train = gr.Dropdown(data_choices(ctx), value=d0.get("train"), allow_custom_value=True,
                              label="Training data", info="a saved dataset, a demo file or a path", scale=3)
        d_eval = gr.Dropdown(data_choices(ctx), value=d0.get("eval"), allow_custom_value=True,
                             label="Eval data (optional)", scale=2)
        d_frac = gr.Number(d0.get("eval_fraction", 0.0), label="…or hold out this share", minimum=0, maximum=0.9,
                           scale=1)
        d_len = gr.Number(d0.get("max_length", 512), label="Max length", precision=0, minimum=16, scale=1)
    with gr.Row():
        lr = gr.Number(t0.get("learning_rate", 2e-4), label="Learning rate")
        epochs = gr.Number(t0.get("epochs", 1), label="Epochs", minimum=0)
        max_steps = gr.Number(t0.get("max_steps", -1), label="Max steps (-1: by epochs)", precision=0)
        bs = gr.Number(t0.get("batch_size", 4), label="Batch size", precision=0, minimum=1)
        ga = gr.Number(t0.get("grad_accum", 1), label="Grad accumulation", precision=0, minimum=1)
        warm = gr.Number(t0.get("warmup_ratio", 0.0), label="Warmup share", minimum=0, maximum=0.99)
    with gr.Row():
        sched = gr.Dropdown(list(SCHEDULERS), value=t0.get("scheduler", "linear"), label="Schedule")
        prec = gr.Dropdown(["auto", "fp32", "bf16", "fp16"], value=t0.get("precision", "auto"), label="Precision")
        ckpt = gr.Checkbox(t0.get("gradient_checkpointing", False), label="Gradient checkpointing")
        log_steps = gr.Number(t0.get("logging_steps", 5), label="Log every", precision=0, minimum=1)
        save_steps = gr.Number(t0.get("save_steps", 0), label="Checkpoint every (0: each epoch)", precision=0)
        procs = gr.Number(t0.get("num_processes", 1), label="Processes (GPUs)", precision=0, minimum=1)
    with gr.Row():
        run_name = gr.Textbox(label="Run name", placeholder="optional", scale=2)
        parent = gr.Dropdown([], value=None, label="Start from an earlier run", allow_custom_value=False, scale=2)
        start = gr.Button("Start", variant="primary", scale=1)
        stop = gr.Button("Stop", variant="stop", scale=1)
        resume = gr.Button("Resume", scale=1)
    message = gr.Markdown(elem_id="train-message")
    with gr.Accordion("The config that will run", open=False):
        yaml_view = gr.Code(language="yaml", interactive=False, label="config.yaml")
    watch = gr.Dropdown([], value=None, label="Watching run", allow_custom_value=False)
    bar = gr.HTML(elem_id="train-progress")
    plot = gr.Plot(label="Curves", elem_id="train-curves")
    with gr.Row():
        overlay = gr.CheckboxGroup([], label="Overlay these runs", scale=4)
    runs = gr.Dataframe(runs_frame(ctx), interactive=False, label="Runs", wrap=True, elem_id="train-runs")
    timer = gr.Timer(1.0)

    for box in (d_train, d_eval):  # datasets saved in the Data tab meanwhile show up
        ctx.picker(box, lambda: data_choices(ctx))
    ctx.picker(parent, lambda: finished_runs(ctx.workspace))
    train_inputs = [lr, epochs, max_steps, bs, ga, warm, sched, prec, ckpt, log_steps, save_steps, procs]
    data_inputs = [d_train, d_eval, d_frac, d_len]

    def preview(b, name, par, *values):
        try:
            cfg = compose(b, list(values[:len(TRAIN_FIELDS)]), list(values[len(TRAIN_FIELDS):]), name, par)
        except (ValueError, StudioError) as err:
            return f"⚠️ {err}", ""
        return _describe(cfg.to_dict()), dump_config(cfg)

    preview_in = [base, run_name, parent, *train_inputs, *data_inputs]
    for comp in [*train_inputs, *data_inputs, run_name, parent]:
        comp.change(preview, preview_in, [summary, yaml_view])
    base.change(preview, preview_in, [summary, yaml_view])

    def on_load_preset(name):
        try:
            cfg = load_preset(name)
        except (StudioError, ValueError) as err:
            return [gr.update(), f"⚠️ {err}", *[gr.update() for _ in train_inputs + data_inputs]]
        t, d = cfg.get("train", {}), cfg.get("data", {})
        return [cfg, f"Loaded preset {name}.", *[t.get(k) for k in TRAIN_FIELDS],
                *[d.get(k) for k in DATA_FIELDS]]

    loaded = load_btn.click(on_load_preset, preset, [base, message, *train_inputs, *data_inputs])

    def on_start(b, name, par, *values):
        try:
            cfg = compose(b, list(values[:len(TRAIN_FIELDS)]), list(values[len(TRAIN_FIELDS):]), name, par)
            run_dir = runner.start_run(ctx.workspace, cfg)
        except (ValueError, StudioError) as err:
            return f"⚠️ {err}", gr.update()
        ids = [p.name for p in ctx.workspace.list_runs()]
        return f"Started run **{run_dir.name}**.", gr.update(choices=ids, value=run_dir.name)

    start.click(on_start, preview_in, [message, watch])

    def on_stop(run_id):
        if not run_id:
            return "Pick the run to stop."
        try:
            runner.stop_run(ctx.workspace.run_dir(run_id))
        except StudioError as err:
            return f"⚠️ {err}"
        return f"Stopping {run_id}: it saves a checkpoint first."

    def on_resume(run_id):
        if not run_id:
            return "Pick the run to resume."
        try:
            runner.resume_run(ctx.workspace, ctx.workspace.run_dir(run_id))
        except StudioError as err:
            return f"⚠️ {err}"
        return f"Resuming {run_id} from its latest checkpoint."

    stop.click(on_stop, watch, message)
    resume.click(on_resume, watch, message)

    def tick(run_id, chosen, rds, sig):
        table = runs_frame(ctx)
        new_sig = "|".join(f"{r.run}:{r.status}:{r.steps}" for r in table.itertuples())
        ids = list(table["run"])
        if run_id not in ids:
            run_id = ids[0] if ids else None
        status = read_status(ctx.workspace.run_dir(run_id)) if run_id else {}
        wanted = list(dict.fromkeys(([run_id] if run_id else []) + [c for c in (chosen or []) if c in ids]))
        figure = training_curves(read_curves(ctx, rds, wanted)) if wanted else None
        completed = [r.run for r in table.itertuples() if r.status == "completed"]
        changed = new_sig != sig
        return (progress_html(status) if run_id else "No runs yet: press Start.", figure, rds, new_sig,
                table if changed else gr.update(),
                gr.update(choices=ids, value=run_id) if changed else gr.update(),
                gr.update(choices=ids) if changed else gr.update(),
                gr.update(choices=completed) if changed else gr.update())

    timer.tick(tick, [watch, overlay, readers, signature], [bar, plot, readers, signature, runs, watch, overlay,
                                                            parent], show_progress="hidden")
    return {"base": base, "data_train": d_train, "preset_loaded": loaded}
