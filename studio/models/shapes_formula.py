"""Model shapes worked out from config.json alone for the Llama family (Llama, SmolLM, Mistral, Qwen2)
and its close kin (Gemma 2, Phi-3), so a model of these kinds counts at once the first time, without
importing torch.

The result is the same `ModelShapes` that building the model on the meta device gives:
tests/test_counting.py checks every shipped config of these kinds, with both heads, against it. Other
kinds return None and are built as before.
"""

from __future__ import annotations

from typing import Any

BIASES = {
    # model_type: (q/k/v bias, o bias, MLP bias), each True/False or a config key to read
    "llama": ("attention_bias", "attention_bias", "mlp_bias"),
    "mistral": (False, False, False),
    "qwen2": (True, False, False),
    "gemma2": ("attention_bias", "attention_bias", False),
    "phi3": (False, False, False),
}
NORMS_PER_LAYER = {"gemma2": 4}
"""RMSNorm weights per layer (2 elsewhere: before attention and before the MLP; Gemma 2 adds two after)."""
TIED_BY_DEFAULT = {"gemma2"}
"""Kinds whose config ties the output layer to the embedding unless it says otherwise."""
FUSED = {"phi3"}
"""Kinds with one qkv_proj and one gate_up_proj instead of separate layers."""


def _flag(config: dict[str, Any], rule: bool | str) -> bool:
    return bool(config.get(rule, False)) if isinstance(rule, str) else rule


def formula_shapes(config: dict[str, Any], head: str, label: str, shapes_class: Any, layer_class: Any) -> Any:
    """ModelShapes for a Llama-family config (a dict read from config.json), or None for other kinds."""
    kind = config.get("model_type")
    if kind not in BIASES:
        return None
    try:
        hidden, layers = int(config["hidden_size"]), int(config["num_hidden_layers"])
        heads, inner, vocab = int(config["num_attention_heads"]), int(config["intermediate_size"]), int(config["vocab_size"])
        kv_heads = int(config.get("num_key_value_heads") or heads)
        head_dim = int(config.get("head_dim") or hidden // heads)
    except (KeyError, TypeError, ValueError):
        return None  # an unusual config: let transformers build it and say what is wrong
    qkv_bias, o_bias, mlp_bias = (_flag(config, rule) for rule in BIASES[kind])
    if kind in FUSED and config.get("attention_bias"):
        return None  # not a shape the shipped configs show: let transformers build it
    linears = []
    for n in range(layers):
        attn, mlp = f"model.layers.{n}.self_attn", f"model.layers.{n}.mlp"
        if kind in FUSED:
            linears += [layer_class(f"{attn}.o_proj", heads * head_dim, hidden, 0),
                        layer_class(f"{attn}.qkv_proj", hidden, (heads + 2 * kv_heads) * head_dim, 0),
                        layer_class(f"{mlp}.gate_up_proj", hidden, 2 * inner, 0),
                        layer_class(f"{mlp}.down_proj", inner, hidden, 0)]
            continue
        linears += [layer_class(f"{attn}.q_proj", hidden, heads * head_dim, heads * head_dim if qkv_bias else 0),
                    layer_class(f"{attn}.k_proj", hidden, kv_heads * head_dim, kv_heads * head_dim if qkv_bias else 0),
                    layer_class(f"{attn}.v_proj", hidden, kv_heads * head_dim, kv_heads * head_dim if qkv_bias else 0),
                    layer_class(f"{attn}.o_proj", heads * head_dim, hidden, hidden if o_bias else 0),
                    layer_class(f"{mlp}.gate_proj", hidden, inner, inner if mlp_bias else 0),
                    layer_class(f"{mlp}.up_proj", hidden, inner, inner if mlp_bias else 0),
                    layer_class(f"{mlp}.down_proj", inner, hidden, hidden if mlp_bias else 0)]
    body = sum(lin.in_features * lin.out_features + lin.bias for lin in linears)
    norms = layers * NORMS_PER_LAYER.get(kind, 2) * hidden + hidden
    embedding = vocab * hidden
    if head == "score":
        output = layer_class("score", hidden, 1, 0)
        base = embedding + body + norms + hidden
    else:
        output = layer_class("lm_head", hidden, vocab, 0)
        tied = config.get("tie_word_embeddings", kind in TIED_BY_DEFAULT)
        base = embedding + body + norms + (0 if tied else vocab * hidden)
    return shapes_class(
        label=label, model_type=kind, head=head, base=base, linears=(*linears, output), output_layer=output.name,
        bias_params=sum(lin.bias for lin in linears), quantisable=sum(lin.in_features * lin.out_features for lin in linears),
        hidden_size=hidden, intermediate_size=inner, num_layers=layers, num_heads=heads, num_kv_heads=kv_heads,
        head_dim=head_dim, vocab_size=vocab, build_seconds=0.0,
    )
