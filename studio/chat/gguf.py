"""Write a run's merged model as one GGUF file (llama.cpp, Ollama, LM Studio) with the `gguf` package,
plus an Ollama Modelfile beside it that carries the chat template and the stop tokens.

    studio export RUN --gguf --quant q8_0 --out model.gguf     # and model.Modelfile next to it
    ollama create my-model -f model.Modelfile

Llama-shaped models (Llama, Mistral, SmolLM, the built-in tiny model) and Qwen2 are written; their
tokenizer must be byte-level BPE, whose way of splitting text llama.cpp knows by name. Weights are
written as f16, or as q8_0 where a row splits into blocks of 32 (others stay f16, as llama.cpp does);
norms and biases stay f32.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from studio.errors import StudioError

QUANTS = ("f16", "q8_0")

ARCHITECTURES = {"llama": "llama", "mistral": "llama", "qwen2": "qwen2"}
"""transformers model_type → GGUF architecture. Mistral is a Llama to llama.cpp."""

LAYER_TENSORS = {
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
}

# how text is split before BPE, as tokenizer.json writes it, and the name llama.cpp gives that split
_LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
           r"\s*[\r\n]+|\s+(?!\S)|\s+")
_QWEN2 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
          r"\s*[\r\n]+|\s+(?!\S)|\s+")


def pre_tokenizer_name(tokenizer_json: dict[str, Any]) -> str:
    """llama.cpp's name for this tokenizer's pre-tokenizer ('llama-bpe', 'qwen2', 'smollm', 'gpt-2')."""
    pre = tokenizer_json.get("pre_tokenizer") or {}
    parts = pre.get("pretokenizers", [pre]) if pre.get("type") == "Sequence" else [pre]
    kinds = [p.get("type") for p in parts]
    split = next((p.get("pattern", {}).get("Regex") for p in parts if p.get("type") == "Split"), None)
    if split == _LLAMA3:
        return "llama-bpe"
    if split == _QWEN2:
        return "qwen2"
    if kinds == ["Digits", "ByteLevel"] and parts[0].get("individual_digits") and parts[1].get("use_regex", True):
        return "smollm"  # one token per digit, then GPT-2's split
    if kinds == ["ByteLevel"] and parts[0].get("use_regex", True):
        return "gpt-2"
    raise StudioError("GGUF export cannot name this tokenizer's way of splitting text for llama.cpp "
                      f"(pre-tokenizer {kinds or 'none'}); export the merged folder instead.")


def permute_rotary(w: Any, heads: int) -> Any:
    """Reorder q/k rows from transformers' rotate-half layout to llama.cpp's interleaved one."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def gguf_tensor_name(name: str) -> str | None:
    """The GGUF name of a transformers weight; None for one llama.cpp does not keep (rotary caches)."""
    if name == "model.embed_tokens.weight":
        return "token_embd.weight"
    if name == "model.norm.weight":
        return "output_norm.weight"
    if name == "lm_head.weight":
        return "output.weight"
    found = re.fullmatch(r"model\.layers\.(\d+)\.(.+)\.(weight|bias)", name)
    if found and found.group(2) in LAYER_TENSORS:
        return f"blk.{found.group(1)}.{LAYER_TENSORS[found.group(2)]}.{found.group(3)}"
    if name.endswith("rotary_emb.inv_freq"):
        return None
    raise StudioError(f"GGUF export does not know where the weight {name} goes.")


def _vocabulary(tokenizer: Any, rows: int) -> tuple[dict[str, Any], list[str], list[int], list[str]]:
    """The tokenizer as GGUF lists it, padded to the embedding's `rows` (Qwen2 has spare rows)."""
    import gguf

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise StudioError("GGUF export needs a fast (tokenizer.json) tokenizer.")
    data = json.loads(backend.to_str())
    model = data.get("model", {})
    if model.get("type") != "BPE" or model.get("byte_fallback"):
        raise StudioError("GGUF export handles byte-level BPE tokenizers (Llama 3, Qwen2, SmolLM, the tiny model); "
                          "this one is not: export the merged folder instead.")
    vocab = dict(model["vocab"])
    for added in data.get("added_tokens", []):
        vocab[added["content"]] = added["id"]
    size = max(max(vocab.values()) + 1, rows)
    tokens = [f"[PAD{i}]" for i in range(size)]
    types = [int(gguf.TokenType.UNUSED)] * size
    for text, i in vocab.items():
        tokens[i], types[i] = text, int(gguf.TokenType.NORMAL)
    for added in data.get("added_tokens", []):
        types[added["id"]] = int(gguf.TokenType.CONTROL if added.get("special") else gguf.TokenType.USER_DEFINED)
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    return data, tokens, types, merges


def write_gguf(model: Any, tokenizer: Any, out: Path, quant: str = "f16", name: str = "") -> Path:
    """Write `model` (a merged transformers causal LM) and its tokenizer to the GGUF file `out`."""
    try:
        import gguf
    except ImportError:
        raise StudioError("GGUF export needs the gguf package: pip install gguf") from None
    import numpy as np

    if quant not in QUANTS:
        raise StudioError(f"GGUF quantisation must be one of {', '.join(QUANTS)} (got {quant!r}).")
    cfg = model.config
    arch = ARCHITECTURES.get(cfg.model_type)
    if arch is None:
        raise StudioError(f"GGUF export handles {', '.join(sorted(ARCHITECTURES))} models; this one is "
                          f"{cfg.model_type}: export the merged folder instead.")
    rope_kind = (getattr(cfg, "rope_parameters", None) or getattr(cfg, "rope_scaling", None) or {}).get("rope_type")
    if rope_kind not in (None, "default"):
        raise StudioError(f"GGUF export writes plain rotary positions; this model scales them ({rope_kind}), which "
                          "it does not write yet: export the merged folder instead.")
    rows = model.get_input_embeddings().weight.shape[0]
    data, tokens, types, merges = _vocabulary(tokenizer, rows)
    pre = pre_tokenizer_name(data)
    heads, kv_heads = cfg.num_attention_heads, getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    rope = (getattr(cfg, "rope_parameters", None) or {}).get("rope_theta") or getattr(cfg, "rope_theta", 10000.0)

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(out), arch)
    writer.add_name(name or out.stem)
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_rope_dimension_count(head_dim)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_key_length(head_dim)
    writer.add_value_length(head_dim)
    writer.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    writer.add_rope_freq_base(float(rope))
    writer.add_vocab_size(len(tokens))
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if quant == "f16" else gguf.LlamaFileType.MOSTLY_Q8_0)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)

    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    for key, add in (("bos_token_id", writer.add_bos_token_id), ("eos_token_id", writer.add_eos_token_id),
                     ("unk_token_id", writer.add_unk_token_id), ("pad_token_id", writer.add_pad_token_id)):
        value = getattr(tokenizer, key, None)
        if isinstance(value, int):
            add(value)
    writer.add_add_bos_token(False)  # the chat template writes the BOS token itself
    writer.add_add_eos_token(False)
    if getattr(tokenizer, "chat_template", None):
        writer.add_chat_template(tokenizer.chat_template)

    state = {k: v for k, v in model.state_dict().items()}
    if getattr(cfg, "tie_word_embeddings", False):
        state.pop("lm_head.weight", None)  # no output.weight tells readers the embeddings are shared
    for key, tensor in state.items():
        target = gguf_tensor_name(key)
        if target is None:
            continue
        array = tensor.detach().float().cpu().numpy()
        if arch == "llama" and key.endswith(("self_attn.q_proj.weight", "self_attn.q_proj.bias")):
            array = permute_rotary(array, heads)
        elif arch == "llama" and key.endswith(("self_attn.k_proj.weight", "self_attn.k_proj.bias")):
            array = permute_rotary(array, kv_heads)
        if array.ndim == 1:
            writer.add_tensor(target, array.astype(np.float32))
        elif quant == "q8_0" and array.shape[-1] % 32 == 0:
            packed = gguf.quants.quantize(array, gguf.GGMLQuantizationType.Q8_0)
            writer.add_tensor(target, packed, raw_shape=packed.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        else:
            writer.add_tensor(target, array.astype(np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out
