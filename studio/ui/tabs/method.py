"""Method tab: pick a model, a method (full / LoRA / QLoRA) and a stage, move the rank slider, tick the
layers to adapt, and see exact trainable-parameter counts and a GPU-memory estimate update live.

Nothing loads weights: the model is read once from its config on the meta device (studio.models.counting)
and every change after that is arithmetic on layer shapes. Per-browser state is one gr.State (the last
model that was read successfully); a bad input leaves the last good results on screen beside one sentence.

Other tabs read the choices with `tab.config_inputs` and `run_config(*values)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from studio.config import COMPUTE_DTYPES, QUANT_TYPES, RunConfig
from studio.errors import StudioError
from studio.models.counting import ModelShapes, model_shapes, trainable_by_rank
from studio.models.estimate import RunEstimate, choices_to_config, estimate_run, whole_number
from studio.models.memory import REFERENCE_GPUS, TrainingSetup, detect_gpu
from studio.models.registry import TINY, find_preset, model_choices
from studio.ui.context import AppContext
from studio.ui.method_cards import METHOD_CARDS, STAGE_CARDS
from studio.ui.plots import rank_chart

DEFAULT_TARGETS = ["q_proj", "v_proj"]
CHART_RANKS = [1, 2, 4, 8, 16, 32, 64, 128, 256]
STAGE_CHOICES = [("SFT", "sft"), ("Reward model", "reward"), ("RLHF", "rlhf"), ("DPO", "dpo")]
METHOD_CHOICES = [("Full fine-tuning", "full"), ("LoRA", "lora"), ("QLoRA", "qlora")]
PRECISION_CHOICES = [("bf16 — weights, gradients and AdamW state in 16-bit", "bf16"), ("fp16", "fp16"),
                     ("fp32", "fp32"), ("mixed — fp32 master weights, 16-bit compute", "mixed")]
THIS_MACHINE = "this machine"
FALLBACK_MODEL = "meta-llama/Llama-2-7b-hf"


@dataclass
class MethodTab:
    """The tab's input components, for other tabs that need the current choices."""

    model: Any
    method: Any
    stage: Any
    rank: Any
    alpha: Any
    dropout: Any
    targets: Any
    dora: Any
    rslora: Any
    bits: Any
    quant_type: Any
    double_quant: Any
    compute_dtype: Any

    @property
    def config_inputs(self) -> list[Any]:
        """Components in the order `run_config` takes their values."""
        return [self.model, self.method, self.stage, self.rank, self.alpha, self.dropout, self.targets,
                self.dora, self.rslora, self.bits, self.quant_type, self.double_quant, self.compute_dtype]


def run_config(model: str, method: str, stage: str, rank: float, alpha: float, dropout: float,
               targets: list[str], dora: bool, rslora: bool, bits: int, quant_type: str, double_quant: bool,
               compute_dtype: str, base: RunConfig | None = None) -> RunConfig:
    """The tab's choices as a validated RunConfig (model, method, lora and quant sections set)."""
    return choices_to_config(model, method, stage, rank, alpha, dropout, targets, dora, rslora, bits,
                             quant_type, double_quant, compute_dtype, base).validate()


def evaluate(choices: list[Any], precision: str, batch: float, seq: float, checkpointing: bool,
             gpu_choice: str) -> RunEstimate:
    """Counts and memory for the tab's values; raises StudioError / ValueError with one sentence."""
    cfg = run_config(*choices)
    setup = TrainingSetup(batch_size=whole_number("The batch size", batch),
                          seq_len=whole_number("The sequence length", seq),
                          precision=precision, gradient_checkpointing=bool(checkpointing))
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
        f"{'on' if s.gradient_checkpointing else 'off'} · formula in docs/memory.md</small>",
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


def refresh(model: str, last_model: str, *values: Any) -> list[Any]:
    """Everything the tab shows, for the current values; on bad input the last good results stay."""
    method, stage, rank, alpha, dropout, targets, dora, rslora, bits, qtype, dq, cdtype = values[:12]
    precision, batch, seq, checkpointing, gpu_choice = values[12:]
    card = f"{METHOD_CARDS[method]}\n\n{STAGE_CARDS.get(stage, '')}" if method in METHOD_CARDS else gr.skip()
    boxes = [gr.update(visible=method != "full"), gr.update(visible=method == "qlora")]
    try:
        shapes = model_shapes(model, stage=stage)
    except (StudioError, ValueError) as err:
        # the typed name stays for correcting; the numbers shown are still the last good model's
        return [gr.skip(), gr.skip(), gr.skip(), gr.skip(), card, *boxes, *[gr.skip()] * 4,
                f"⚠️ {err} The numbers below are still for {last_model}."]
    targets_out: Any = gr.skip()
    if model != last_model or set(targets or []) - set(shapes.target_names):
        targets = default_targets(shapes, targets)
        targets_out = gr.update(choices=shapes.target_names, value=targets)
    choices = [model, method, stage, rank, alpha, dropout, targets, dora, rslora, bits, qtype, dq, cdtype]
    try:
        shown = render(evaluate(choices, precision, batch, seq, checkpointing, gpu_choice))
        problem = ""
    except (StudioError, ValueError) as err:
        shown, problem = [gr.skip()] * 4, f"⚠️ {err}"
    return [gr.skip(), model, targets_out, model_summary(shapes, model), card, *boxes, *shown, problem]


def shortcut(model: str, stage: str, which: str) -> Any:
    """Tick the attention layers or every linear layer of the current model."""
    try:
        shapes = model_shapes(model, stage=stage)
    except (StudioError, ValueError):
        return gr.skip()
    return gr.update(value=shapes.attention_targets if which == "attention" else shapes.target_names)


def _gpu_choices() -> tuple[list[tuple[str, str]], str]:
    gpu = detect_gpu()
    here = (f"This machine: {gpu.name} ({gpu.memory_gib:.1f} GiB)" if gpu else "This machine: no GPU detected")
    choices = [(here, THIS_MACHINE)] + [(label, label) for label in REFERENCE_GPUS]
    return choices, THIS_MACHINE if gpu else "24 GB (RTX 4090, 3090, A10)"


def _first_model() -> tuple[str, ModelShapes | None, str]:
    """The built-in model when it is there; else a shipped config, so the tab opens with numbers."""
    for name in (TINY, FALLBACK_MODEL):
        try:
            return name, model_shapes(name), ""
        except (StudioError, ValueError) as err:
            problem = f"⚠️ {err}"
    return TINY, None, problem


def build(ctx: AppContext) -> MethodTab:
    first, shapes, problem = _first_model()
    names = shapes.target_names if shapes else []
    ticked = default_targets(shapes) if shapes else DEFAULT_TARGETS
    gpu_choices, gpu_default = _gpu_choices()
    shown: list[Any] = ["", "", "", None]
    if shapes is not None:  # first numbers at build time, so the tab never opens empty
        try:
            shown = render(evaluate([first, "lora", "sft", 8, 16, 0.05, ticked, False, False, 4, "nf4", True,
                                     "bfloat16"], "bf16", 1, 512, False, gpu_default))
        except (StudioError, ValueError) as err:
            problem = f"⚠️ {err}"
    last_model = gr.State(first)
    with gr.Row():
        with gr.Column(scale=3):
            model = gr.Dropdown(model_choices(), value=first, allow_custom_value=True, label="Model",
                                info="A shipped config, any hub id (only its config is fetched) or a local folder")
            info = gr.Markdown(model_summary(shapes, first) if shapes else "")
            with gr.Row():
                method = gr.Radio(METHOD_CHOICES, value="lora", label="Method")
                stage = gr.Radio(STAGE_CHOICES, value="sft", label="Stage")
            with gr.Group() as lora_box:
                rank = gr.Slider(1, 256, value=8, step=1, label="Rank r", info="capacity of the adapters")
                with gr.Row():
                    alpha = gr.Number(16, label="Alpha", info="update scaled by alpha / r")
                    dropout = gr.Number(0.05, label="Dropout", step=0.01)
                    dora = gr.Checkbox(False, label="DoRA", info="adds a magnitude vector per layer")
                    rslora = gr.Checkbox(False, label="rsLoRA", info="alpha / √r scaling; same count")
                targets = gr.CheckboxGroup(names, value=ticked, label="Target modules",
                                           info="the linear layers this model has")
                with gr.Row():
                    attention_btn = gr.Button("Attention only", size="sm")
                    all_btn = gr.Button("All linear", size="sm")
            with gr.Group(visible=False) as quant_box:
                with gr.Row():
                    bits = gr.Radio([("4-bit", 4), ("8-bit", 8)], value=4, label="Base precision")
                    quant_type = gr.Radio(list(QUANT_TYPES), value="nf4", label="4-bit type")
                    double_quant = gr.Checkbox(True, label="Double quantisation")
                    compute_dtype = gr.Dropdown(list(COMPUTE_DTYPES), value="bfloat16", label="Compute dtype")
            with gr.Accordion("Memory estimate settings", open=False):
                with gr.Row():
                    precision = gr.Dropdown(PRECISION_CHOICES, value="bf16", label="Precision")
                    batch = gr.Number(1, label="Batch size", precision=0, minimum=1)
                    seq = gr.Number(512, label="Sequence length", precision=0, minimum=1)
                with gr.Row():
                    checkpointing = gr.Checkbox(False, label="Gradient checkpointing")
                    gpu = gr.Dropdown(gpu_choices, value=gpu_default, label="Compare with GPU")
            card = gr.Markdown(f"{METHOD_CARDS['lora']}\n\n{STAGE_CARDS['sft']}")
        with gr.Column(scale=2):
            problem_md = gr.Markdown(problem, elem_classes=["studio-problem"])
            counts = gr.Markdown(shown[0])
            verdict = gr.Markdown(shown[1])
            memory = gr.Markdown(shown[2])
            chart = gr.Plot(shown[3], label="Trainable parameters by rank")

    tab = MethodTab(model, method, stage, rank, alpha, dropout, targets, dora, rslora, bits, quant_type,
                    double_quant, compute_dtype)
    inputs = [model, last_model, method, stage, rank, alpha, dropout, targets, dora, rslora, bits, quant_type,
              double_quant, compute_dtype, precision, batch, seq, checkpointing, gpu]
    outputs = [model, last_model, targets, info, card, lora_box, quant_box, counts, verdict, memory, chart,
               problem_md]
    gr.on([c.change for c in inputs if c is not last_model], refresh, inputs, outputs,
          show_progress="hidden", trigger_mode="always_last")
    attention_btn.click(lambda m, s: shortcut(m, s, "attention"), [model, stage], targets, show_progress="hidden")
    all_btn.click(lambda m, s: shortcut(m, s, "all"), [model, stage], targets, show_progress="hidden")
    return tab
