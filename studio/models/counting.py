"""Exact trainable / total parameter counts for full fine-tuning, LoRA and QLoRA, without loading weights.

The model is built once from its config on the meta device (tensors with shapes but no storage), its
linear layers and parameter totals are recorded in a `ModelShapes`, and every later count is arithmetic
on those shapes. The Llama family (Llama, SmolLM, Mistral, Qwen2, Gemma 2, Phi-3) is worked out from config.json
without building anything (shapes_formula.py; the tests hold it equal to the built model), and shapes are kept on
disk (shapes_cache.py), so neither needs torch. The numbers equal what PEFT's `get_nb_trainable_parameters()` reports for the same
model and `LoraConfig`:

- `trainable`: adapter parameters (r * (in + out) per adapted linear layer, plus `out` for DoRA's
  magnitude vector; rsLoRA only changes the scaling, not the count), plus biases when `bias` asks for
  them, plus the classification head for a reward model (PEFT keeps a trainable copy of it).
- `total`: every parameter of the PEFT model, adapters included, tied weights counted once.
- `base`: the parameters of the model before any adapter is added: what the model card calls its size.

QLoRA counts the same as LoRA: bitsandbytes packs two 4-bit weights per byte and PEFT multiplies the
packed size back, so `get_nb_trainable_parameters()` reports the same totals on a 4-bit or 8-bit model.

    python -m studio count --model meta-llama/Llama-2-7b-hf --method lora --rank 8 --targets q_proj,v_proj
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.config import METHODS
from studio.errors import StudioError
from studio.models import loading, registry
from studio.stages import stage as stage_of

ALL_LINEAR = "all-linear"
BIAS_MODES = ("none", "all", "lora_only")


@dataclass(frozen=True)
class LinearLayer:
    name: str
    """Full module name, e.g. model.layers.0.self_attn.q_proj."""
    in_features: int
    out_features: int
    bias: int
    """Size of the layer's bias (0 when it has none)."""


@dataclass(frozen=True)
class ModelShapes:
    """What counting and memory estimates need to know about a model, read from its meta-device skeleton."""

    label: str
    model_type: str
    head: str
    """'lm' (causal language model) or 'score' (a reward model's one-number head)."""
    base: int
    """Parameters of the plain model, tied weights counted once."""
    linears: tuple[LinearLayer, ...]
    output_layer: str
    """The lm_head / score layer: 'all-linear' leaves it out, as PEFT does."""
    bias_params: int
    """Parameters whose name contains 'bias' (what PEFT trains with bias='all')."""
    quantisable: int
    """Weights bitsandbytes quantises for QLoRA: every linear weight except the output layer."""
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int
    build_seconds: float

    @property
    def target_names(self) -> list[str]:
        """Short names of the linear layers an adapter can target, in model order (q_proj, k_proj, ...)."""
        seen: dict[str, None] = {}
        for layer in self.linears:
            if layer.name != self.output_layer:
                seen.setdefault(layer.name.rsplit(".", 1)[-1], None)
        return list(seen)

    @property
    def attention_targets(self) -> list[str]:
        """The target names that live inside an attention block."""
        names = {}
        for layer in self.linears:
            parent, _, short = layer.name.rpartition(".")
            if layer.name != self.output_layer and ("attn" in parent or "attention" in parent):
                names.setdefault(short, None)
        return list(names)


@dataclass(frozen=True)
class ParamCount:
    trainable: int
    total: int
    """All parameters of the model as trained (base plus adapters), as PEFT reports them."""
    base: int
    adapted_layers: int = 0
    adapted_in_features: int = 0
    """Sum of in_features over adapted layers: the inputs LoRA keeps for its backward pass."""

    @property
    def percent(self) -> float:
        return 100.0 * self.trainable / self.total if self.total else 0.0


def model_shapes(name: str, revision: str | None = None, stage: str = "sft") -> ModelShapes:
    """Shapes of a model from its config alone (shipped preset, local folder or hub id), cached per model.

    A reward model (stage 'reward') has a one-output score head instead of the language-model head.
    """
    name = (name or "").strip()
    if not name:
        raise StudioError("Pick a model: 'tiny', a hub id such as org/model, or a folder.")
    head = stage_of(stage).head
    preset = registry.find_preset(name)
    if preset is not None:
        return _shapes(("preset", str(preset.config_dir)), head, preset.label)
    if loading.is_local(name):
        folder = loading.resolve_model(name, weights=False)
        # the mtime makes a rebuilt folder (e.g. the tiny model) count afresh
        return _shapes(("folder", str(folder), (folder / "config.json").stat().st_mtime_ns), head, name)
    return _shapes(("hub", name, revision), head, name)


@functools.lru_cache(maxsize=16)
def _shapes(source: tuple, head: str, label: str) -> ModelShapes:
    from studio.models import shapes_cache

    cached_as = None
    if source[0] != "hub":  # a config on disk: its shapes may be on disk too (no torch import needed)
        try:
            text = (Path(source[1]) / "config.json").read_text(encoding="utf-8")
            cached_as = shapes_cache.key(text, head, label)
        except OSError:
            text, cached_as = "", None
        found = shapes_cache.load(cached_as, ModelShapes, LinearLayer) if cached_as else None
        if found is None and text:  # the Llama family is worked out from the config (shapes_formula.py)
            found = _from_formula(text, head, label)
            if found is not None and cached_as:
                shapes_cache.save(cached_as, found)
        if found is not None:
            return found
    import torch
    from transformers import AutoConfig

    started = time.perf_counter()
    if source[0] == "hub":
        config = loading.load_model_config(source[1], source[2])
    else:
        config = AutoConfig.from_pretrained(Path(source[1]))
    with torch.device("meta"):
        model = _skeleton(config, head, label)
    shapes = _read_shapes(model, config, head, label, time.perf_counter() - started)
    if cached_as:
        shapes_cache.save(cached_as, shapes)
    return shapes


def _from_formula(config_text: str, head: str, label: str) -> ModelShapes | None:
    import json

    from studio.models.shapes_formula import formula_shapes

    try:
        config = json.loads(config_text)
    except ValueError:
        return None
    return formula_shapes(config, head, label, ModelShapes, LinearLayer) if isinstance(config, dict) else None


def _skeleton(config: Any, head: str, label: str) -> Any:
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    try:
        if head == "score":
            config.num_labels = 1
            return AutoModelForSequenceClassification.from_config(config)
        return AutoModelForCausalLM.from_config(config)
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        kind = "reward model" if head == "score" else "language model"
        raise StudioError(f"Model '{label}' (model_type '{getattr(config, 'model_type', '?')}') cannot be "
                          f"built as a {kind} by transformers: {str(err).splitlines()[0]}") from None


def _read_shapes(model: Any, config: Any, head: str, label: str, seconds: float) -> ModelShapes:
    from torch import nn
    from transformers.pytorch_utils import Conv1D

    output = model.get_output_embeddings() if head == "lm" else getattr(model, "score", None)
    linears, output_name = [], ""
    for name, module in model.named_modules():
        if module is output:
            output_name = name
        if isinstance(module, nn.Linear):
            linears.append(LinearLayer(name, module.in_features, module.out_features, _numel(module.bias)))
        elif isinstance(module, Conv1D):  # GPT-2 style: weight is (in, out)
            rows, cols = module.weight.shape
            linears.append(LinearLayer(name, rows, cols, _numel(module.bias)))
    base = sum(p.numel() for p in model.parameters())
    bias_params = sum(p.numel() for n, p in model.named_parameters() if "bias" in n)
    quantisable = sum(lin.in_features * lin.out_features for lin in linears if lin.name != output_name)
    hidden = _first(config, "hidden_size", "n_embd", "d_model")
    heads = _first(config, "num_attention_heads", "n_head") or 1
    return ModelShapes(
        label=label, model_type=str(getattr(config, "model_type", "")), head=head, base=base,
        linears=tuple(linears), output_layer=output_name, bias_params=bias_params, quantisable=quantisable,
        hidden_size=hidden, intermediate_size=_first(config, "intermediate_size", "n_inner") or 4 * hidden,
        num_layers=_first(config, "num_hidden_layers", "n_layer"), num_heads=heads,
        num_kv_heads=_first(config, "num_key_value_heads") or heads,
        head_dim=_first(config, "head_dim") or hidden // heads,
        vocab_size=_first(config, "vocab_size"), build_seconds=seconds,
    )


def _numel(tensor: Any) -> int:
    return 0 if tensor is None else int(tensor.numel())


def _first(config: Any, *keys: str) -> int:
    for key in keys:
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return 0


def adapted_layers(shapes: ModelShapes, targets: Sequence[str]) -> list[LinearLayer]:
    """The linear layers LoRA adapts for these targets, matched the way PEFT matches names.

    A name matches a layer whose full name equals it or ends with '.name'; 'all-linear' alone means every
    linear layer except the output layer. A name that matches nothing is an error, naming what exists.
    """
    targets = [t.strip() for t in targets if t and t.strip()]
    if not targets:
        raise ValueError("Pick at least one target module for LoRA, or 'all-linear'.")
    if any(t.lower() == ALL_LINEAR for t in targets):
        if len(targets) > 1:
            raise ValueError("'all-linear' already covers every linear layer: give it alone.")
        return [lin for lin in shapes.linears if lin.name != shapes.output_layer]
    # PEFT never puts an adapter on the reward head: it is trained whole instead
    candidates = [lin for lin in shapes.linears if not (shapes.head == "score" and lin.name == shapes.output_layer)]
    chosen = []
    for target in targets:
        hits = [lin for lin in candidates if lin.name == target or lin.name.endswith("." + target)]
        if not hits:
            raise StudioError(f"Model {shapes.label} has no layer named '{target}'; it has "
                              f"{', '.join(shapes.target_names)}.")
        chosen.extend(hits)
    unique = {lin.name: lin for lin in chosen}
    return list(unique.values())


def count_trainable_params(
    model: str | ModelShapes,
    method: str = "lora",
    rank: int = 8,
    targets: Sequence[str] = ("q_proj", "v_proj"),
    *,
    dora: bool = False,
    bias: str = "none",
    stage: str = "sft",
    revision: str | None = None,
) -> ParamCount:
    """Trainable and total parameters for a method, exactly as PEFT counts them (see the module docstring)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)} (got {method!r}).")
    shapes = model if isinstance(model, ModelShapes) else model_shapes(model, revision, stage)
    if method == "full":
        return ParamCount(trainable=shapes.base, total=shapes.base, base=shapes.base)
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise ValueError(f"LoRA rank must be a whole number of at least 1 (got {rank!r}).")
    if bias not in BIAS_MODES:
        raise ValueError(f"bias must be one of {', '.join(BIAS_MODES)} (got {bias!r}).")
    layers = adapted_layers(shapes, targets)
    adapter = sum(rank * (lin.in_features + lin.out_features) + (lin.out_features if dora else 0)
                  for lin in layers)
    trainable = adapter
    if bias == "all":
        trainable += shapes.bias_params
    elif bias == "lora_only":
        trainable += sum(lin.bias for lin in layers)
    total = shapes.base + adapter
    if shapes.head == "score":
        head = next(lin for lin in shapes.linears if lin.name == shapes.output_layer)
        head_params = head.in_features * head.out_features + head.bias
        trainable += head_params  # the trainable copy PEFT makes of the head ...
        total += head_params  # ... sits beside the frozen original, so both count
    return ParamCount(trainable=trainable, total=total, base=shapes.base, adapted_layers=len(layers),
                      adapted_in_features=sum(lin.in_features for lin in layers))


def trainable_by_rank(shapes: ModelShapes, targets: Sequence[str], ranks: Sequence[int], *,
                      dora: bool = False) -> list[int]:
    """Trainable parameters at each rank for the same targets: the data behind the rank chart."""
    return [count_trainable_params(shapes, "lora", r, targets, dora=dora).trainable for r in ranks]


def clear_cache() -> None:
    """Forget every model's shapes (tests and benchmarks measure the first build with this)."""
    _shapes.cache_clear()
