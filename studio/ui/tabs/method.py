"""Method tab: pick a model, a method (full / LoRA / QLoRA) and a stage, move the rank slider, tick the
layers to adapt, and see exact trainable-parameter counts and a GPU-memory estimate update live.

Nothing loads weights: the model is read once from its config on the meta device (studio.models.counting)
and every change after that is arithmetic on layer shapes. Per-browser state is one gr.State (the last
model that was read successfully); a bad input leaves the last good results on screen beside one sentence.

Components are keyed by config path (`tab.fields`); other tabs read the choices with
`tab.choices_of(values)` and `run_config(choices)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from studio.access import readable_model
from studio.config import COMPUTE_DTYPES, METHODS, QUANT_TYPES, RunConfig
from studio.config_form import config_from_form, path_value
from studio.errors import StudioError
from studio.models.counting import ModelShapes, model_shapes, trainable_by_rank
from studio.models.estimate import RunEstimate, estimate_run, whole_number
from studio.models.memory import REFERENCE_GPUS, TrainingSetup, detect_gpu
from studio.models.registry import TINY, find_preset, model_choices
from studio.stages import available_stages, stage
from studio.ui.api import action
from studio.ui.context import AppContext
from studio.ui.method_cards import METHOD_CARDS
from studio.ui.plots import rank_chart
from studio.ui.presets import starting_config
from studio.ui.tabs.train import STRATEGY_CHOICES
from studio.workspace import Workspace

DEFAULT_TARGETS = ["q_proj", "v_proj"]
CHART_RANKS = [1, 2, 4, 8, 16, 32, 64, 128, 256]
METHOD_LABELS = {"full": "Full fine-tuning", "lora": "LoRA", "qlora": "QLoRA"}
METHOD_CHOICES = [(METHOD_LABELS.get(m, m), m) for m in METHODS]
PRECISION_CHOICES = [("bf16 — weights, gradients and AdamW state in 16-bit", "bf16"), ("fp16", "fp16"),
                     ("fp32", "fp32"), ("mixed — fp32 master weights, 16-bit compute", "mixed")]
THIS_MACHINE = "this machine"
FALLBACK_MODEL = "meta-llama/Llama-2-7b-hf"
STAGE_CHOICES = [(s.label, s.name) for s in available_stages()]
STAGE_NAMES = [s.name for s in available_stages()]
ESTIMATE_KEYS = ("precision", "batch", "seq", "checkpointing", "gpu", "processes", "strategy")
"""The memory-estimate settings, which are not part of a run config."""
ESTIMATE_DEFAULTS = {"precision": "bf16", "batch": 1, "seq": 512, "checkpointing": False, "gpu": None,
                     "processes": 1, "strategy": "ddp"}



@dataclass
class MethodTab:
    """The tab's input components keyed by config path ('lora.r'), for other tabs that need the choices.
    A new knob is one component added to `fields` in `build`."""

    fields: dict[str, Any]
    estimate: dict[str, Any] = field(default_factory=dict)
    """The memory estimate's own settings (precision, batch, seq, checkpointing, gpu), keyed as ESTIMATE_KEYS."""

    @property
    def config_inputs(self) -> list[Any]:
        """The components, in the order `choices_of` reads their values."""
        return list(self.fields.values())

    def choices_of(self, values: tuple[Any, ...] | list[Any]) -> dict[str, Any]:
        """The values of `config_inputs`, keyed by config path."""
        return dict(zip(self.fields, values))

    def form_values(self, raw: dict[str, Any]) -> list[Any]:
        """The components' values, in `config_inputs` order, for a config mapping (a preset, say)."""
        cfg = RunConfig.from_dict(raw)
        return [path_value(cfg, p) for p in self.fields]


def run_config(choices: dict[str, Any], base: RunConfig | None = None) -> RunConfig:
    """The tab's choices (by config path) on top of `base`, as a validated RunConfig."""
    return config_from_form(base.to_dict() if base is not None else {}, choices)


def evaluate(choices: dict[str, Any], precision: str, batch: float, seq: float, checkpointing: bool,
             gpu_choice: str | None, processes: float = 1, strategy: str = "ddp") -> RunEstimate:
    """Counts and memory (per GPU) for the tab's values; raises StudioError / ValueError with one sentence."""
    cfg = run_config(choices)
    setup = TrainingSetup(batch_size=whole_number("The batch size", batch),
                          seq_len=whole_number("The sequence length", seq),
                          precision=precision, gradient_checkpointing=bool(checkpointing),
                          processes=whole_number("The number of GPUs", processes), strategy=strategy or "ddp")
    if gpu_choice in REFERENCE_GPUS:
        return estimate_run(cfg, setup, gpu=None, gpu_gib=REFERENCE_GPUS[gpu_choice], gpu_name=f"a {gpu_choice} GPU")
    return estimate_run(cfg, setup)


def default_targets(shapes: ModelShapes, ticked: list[str] | None = None) -> list[str]:
    """Keep the ticked targets this model has; else q_proj + v_proj, else its attention layers."""
    names = shapes.target_names
    kept = [t for t in (ticked or []) if t in names]
    return kept or [t for t in DEFAULT_TARGETS if t in names] or shapes.attention_targets or names[:1]


def model_summary(shapes: ModelShapes, name: str) -> str:
    preset = find_preset(name)
    note = f"  \n{preset.notes}" if preset else ""
    return (f"**{shapes.label}** · {shapes.model_type} · {shapes.num_layers} layers · hidden {shapes.hidden_size} "
            f"· {shapes.base:,} parameters ({shapes.base / 1e9:.2f} B){note}")


def render(est: RunEstimate) -> list[Any]:
    """Markdown and chart for an estimate: counts, verdict, memory table, rank chart."""
    c, m = est.count, est.memory.as_gib()
    counts = (f"### {c.trainable:,} trainable\nof {c.total:,} parameters · **{c.percent:.4f}%**  \n"
              f"base model {c.base:,}")
    if est.cfg.method.name != "full":
        counts += f" · adapters on {c.adapted_layers} layers"
    verdict = est.verdict if est.fits is None else f"**{est.verdict}**"
    s = est.setup
    table = "\n".join([
        "| part | GiB |", "|---|---:|",
        *(f"| {part} | {m[part]:.2f} |" for part in ("weights", "gradients", "optimizer", "activations", "overhead")),
        f"| **total** | **{m['total']:.2f}** |",
        f"\n<small>batch {s.batch_size} × {s.seq_len} tokens · {s.precision} · AdamW · gradient checkpointing "
        f"{'on' if s.gradient_checkpointing else 'off'}"
        + (f" · per GPU of {s.processes} ({s.strategy})" if s.processes > 1 else "")
        + " · formula in docs/memory.md</small>",
    ])
    lo = est.cfg.lora
    targets = lo.targets
    if est.cfg.method.name == "full":
        targets = default_targets(est.shapes)
    curve = trainable_by_rank(est.shapes, targets, CHART_RANKS, dora=lo.dora)
    current = None if est.cfg.method.name == "full" else c.trainable
    chart = rank_chart(CHART_RANKS, curve, est.shapes.base, lo.r, current,
                       label=f"LoRA on {', '.join(targets)}")
    return [counts, verdict, table, chart]


def refresh(last_model: str, choices: dict[str, Any], estimate: dict[str, Any], ws: Workspace | None = None
            ) -> list[Any]:
    """Everything the tab shows, for the current values; on bad input the last good results stay. With
    `ws`, the model must be one the web app may read."""
    model, method_name, stage_name = choices["model.name"], choices["method.name"], choices["method.stage"]
    card = (f"{METHOD_CARDS[method_name]}\n\n{stage(stage_name).card}" if method_name in METHOD_CARDS
            and stage_name in STAGE_NAMES else gr.skip())
    boxes = [gr.update(visible=method_name != "full"), gr.update(visible=method_name == "qlora")]
    try:
        if ws is not None:
            readable_model(ws, model)
        shapes = model_shapes(model, stage=stage_name)
    except (StudioError, ValueError) as err:
        # the typed name stays for correcting; the numbers shown are still the last good model's
        return [gr.skip(), gr.skip(), gr.skip(), gr.skip(), card, *boxes, *[gr.skip()] * 4,
                f"⚠️ {err} The numbers below are still for {last_model}."]
    targets_out: Any = gr.skip()
    targets = choices["lora.targets"]
    if model != last_model or set(targets or []) - set(shapes.target_names):
        targets = default_targets(shapes, targets)
        targets_out = gr.update(choices=shapes.target_names, value=targets)
    try:
        shown = render(evaluate({**choices, "lora.targets": targets},
                                *(estimate.get(k, ESTIMATE_DEFAULTS[k]) for k in ESTIMATE_KEYS)))
        problem = ""
    except (StudioError, ValueError) as err:
        shown, problem = [gr.skip()] * 4, f"⚠️ {err}"
    return [gr.skip(), model, targets_out, model_summary(shapes, model), card, *boxes, *shown, problem]


def shortcut(model: str, stage_name: str, which: str, ws: Workspace | None = None) -> Any:
    """Tick the attention layers or every linear layer of the current model."""
    try:
        if ws is not None:
            readable_model(ws, model)
        shapes = model_shapes(model, stage=stage_name)
    except (StudioError, ValueError):
        return gr.skip()
    return gr.update(value=shapes.attention_targets if which == "attention" else shapes.target_names)


def _gpu_choices() -> tuple[list[tuple[str, str]], str]:
    gpu = detect_gpu()
    here = (f"This machine: {gpu.name} ({gpu.memory_gib:.1f} GiB)" if gpu else "This machine: no GPU detected")
    choices = [(here, THIS_MACHINE)] + [(label, label) for label in REFERENCE_GPUS]
    return choices, THIS_MACHINE if gpu else "24 GB (RTX 4090, 3090, A10)"


def _first_model(preferred: str, stage_name: str) -> tuple[str, ModelShapes | None, str]:
    """The starting config's model when it can be read; else the built-in model, else a shipped config, so
    the tab opens with numbers."""
    for name in dict.fromkeys((preferred, TINY, FALLBACK_MODEL)):
        try:
            return name, model_shapes(name, stage=stage_name), ""
        except (StudioError, ValueError) as err:
            problem = f"⚠️ {err}"
    return TINY, None, problem


def build(ctx: AppContext) -> MethodTab:
    start = RunConfig.from_dict(starting_config())  # the same config the Train tab opens on
    opening = {"batch": start.train.batch_size, "seq": start.data.max_length,  # the Train tab's, which they follow
               "checkpointing": start.train.gradient_checkpointing == "on", "processes": start.train.num_processes,
               "strategy": start.train.strategy}
    first, shapes, problem = _first_model(start.model.name, start.method.stage)
    names = shapes.target_names if shapes else []
    ticked = default_targets(shapes, start.lora.targets) if shapes else DEFAULT_TARGETS
    start.model.name, start.lora.targets = first, ticked
    def v(path: str) -> Any:  # the tab opens on that config
        return path_value(start, path)

    gpu_choices, gpu_default = _gpu_choices()
    last_model = gr.State(first)
    f: dict[str, Any] = {}
    with gr.Row():
        with gr.Column(scale=3):
            f["model.name"] = gr.Dropdown(
                model_choices(), value=first, allow_custom_value=True, label="Model",
                info="A shipped config, any hub id (only its config is fetched) or a local folder")
            info = gr.Markdown(model_summary(shapes, first) if shapes else "")
            with gr.Row():
                f["method.name"] = gr.Radio(METHOD_CHOICES, value=v("method.name"), label="Method")
                f["method.stage"] = gr.Radio(STAGE_CHOICES, value=v("method.stage"), label="Stage",
                                             info="only the stages that can train are offered")
            with gr.Group(visible=v("method.name") != "full") as lora_box:
                f["lora.r"] = gr.Slider(1, 256, value=v("lora.r"), step=1, label="Rank r",
                                        info="capacity of the adapters")
                with gr.Row():
                    f["lora.alpha"] = gr.Number(v("lora.alpha"), label="Alpha", info="update scaled by alpha / r")
                    f["lora.dropout"] = gr.Number(v("lora.dropout"), label="Dropout", step=0.01)
                    f["lora.dora"] = gr.Checkbox(v("lora.dora"), label="DoRA",
                                                 info="adds a magnitude vector per layer")
                    f["lora.rslora"] = gr.Checkbox(v("lora.rslora"), label="rsLoRA",
                                                   info="alpha / √r scaling; same count")
                f["lora.targets"] = gr.CheckboxGroup(names, value=ticked, label="Target modules",
                                                     info="the linear layers this model has")
                with gr.Row():
                    attention_btn = gr.Button("Attention only", size="sm")
                    all_btn = gr.Button("All linear", size="sm")
            with gr.Group(visible=v("method.name") == "qlora") as quant_box:
                with gr.Row():
                    f["quant.bits"] = gr.Radio([("4-bit", 4), ("8-bit", 8)], value=v("quant.bits"),
                                               label="Base precision")
                    f["quant.quant_type"] = gr.Radio(list(QUANT_TYPES), value=v("quant.quant_type"),
                                                     label="4-bit type")
                    f["quant.double_quant"] = gr.Checkbox(v("quant.double_quant"), label="Double quantisation")
                    f["quant.compute_dtype"] = gr.Dropdown(list(COMPUTE_DTYPES), value=v("quant.compute_dtype"),
                                                           label="Compute dtype")
            est: dict[str, Any] = {}
            with gr.Accordion("Memory estimate settings", open=False):
                with gr.Row():
                    est["precision"] = gr.Dropdown(PRECISION_CHOICES, value="bf16", label="Precision")
                    est["batch"] = gr.Number(opening["batch"], label="Batch size per device", minimum=1, step=1,
                                             info="follows the Train tab")
                    est["seq"] = gr.Number(opening["seq"], label="Sequence length", minimum=1, step=1,
                                           info="follows the Train tab's max length")
                with gr.Row():
                    est["checkpointing"] = gr.Checkbox(opening["checkpointing"], label="Gradient checkpointing")
                    est["gpu"] = gr.Dropdown(gpu_choices, value=gpu_default, label="Compare with GPU")
                with gr.Row():
                    est["processes"] = gr.Number(opening["processes"], label="GPUs", minimum=1, step=1,
                                                 info="follows the Train tab")
                    est["strategy"] = gr.Dropdown(STRATEGY_CHOICES, value=opening["strategy"], label="Across GPUs",
                                                  info="follows the Train tab")
            card = gr.Markdown(f"{METHOD_CARDS[v('method.name')]}\n\n{stage(v('method.stage')).card}")
        shown: list[Any] = ["", "", "", None]
        if shapes is not None:  # first numbers at build time, so the tab never opens empty
            try:
                shown = render(evaluate({p: c.value for p, c in f.items()}, *(est[k].value for k in ESTIMATE_KEYS)))
            except (StudioError, ValueError) as err:
                problem = f"⚠️ {err}"
        with gr.Column(scale=2):
            problem_md = gr.Markdown(problem, elem_classes=["studio-problem"])
            counts = gr.Markdown(shown[0])
            verdict = gr.Markdown(shown[1])
            memory = gr.Markdown(shown[2])
            chart = gr.Plot(shown[3], label="Trainable parameters by rank")

    tab = MethodTab(f, est)
    config_inputs = tab.config_inputs
    est_inputs = [est[k] for k in ESTIMATE_KEYS]

    def on_change(last: str, *values: Any) -> list[Any]:
        n = len(config_inputs)
        return refresh(last, tab.choices_of(values[:n]), dict(zip(ESTIMATE_KEYS, values[n:])), ctx.workspace)

    outputs = [f["model.name"], last_model, f["lora.targets"], info, card, lora_box, quant_box, counts, verdict,
               memory, chart, problem_md]
    gr.on([c.change for c in config_inputs + est_inputs], on_change, [last_model, *config_inputs, *est_inputs],
          outputs, show_progress="hidden", trigger_mode="always_last", **action("method_estimate"))
    which = [f["model.name"], f["method.stage"]]
    attention_btn.click(lambda m, s: shortcut(m, s, "attention", ctx.workspace), which, f["lora.targets"],
                        show_progress="hidden", **action("method_targets_attention"))
    all_btn.click(lambda m, s: shortcut(m, s, "all", ctx.workspace), which, f["lora.targets"],
                  show_progress="hidden", **action("method_targets_all"))
    return tab
