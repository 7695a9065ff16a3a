"""The memory estimate: published 7B figures, activation bytes against what autograd really keeps, GPU detection.

Published figures (LLaMA-Factory's hardware table, the QLoRA paper) are for a 7B model at a short sequence
with gradient checkpointing on, as those setups train; the assumptions here are batch 1, 512 tokens,
gradient checkpointing, AdamW, LoRA r=8 on q_proj and v_proj.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoConfig, AutoModelForCausalLM

from studio.models.counting import count_trainable_params, model_shapes
from studio.models.memory import (
    GIB,
    GpuInfo,
    MemoryEstimate,
    TrainingSetup,
    activation_bytes,
    detect_gpu,
    estimate_memory,
    fit_verdict,
)

PUBLISHED_SETUP = dict(batch_size=1, seq_len=512, gradient_checkpointing=True)


def gib(method: str, precision: str = "bf16", model: str = "llama-2-7b", bits: int = 4, **setup) -> float:
    shapes = model_shapes(model)
    count = count_trainable_params(shapes, method, 8, ["q_proj", "v_proj"])
    setup = TrainingSetup(precision=precision, **{**PUBLISHED_SETUP, **setup})
    return estimate_memory(shapes, count, method, setup, bits=bits).total / GIB


@pytest.mark.parametrize("method, precision, bits, low, high", [
    ("full", "mixed", 4, 100, 140),  # published ~120 GB: fp32 weights + gradients + AdamW, 16 bytes a weight
    ("full", "bf16", 4, 45, 75),  # published ~60 GB: everything 16-bit, 8 bytes a weight
    ("lora", "bf16", 4, 12, 20),  # published ~16 GB
    ("qlora", "bf16", 8, 7, 12),  # published ~10 GB
    ("qlora", "bf16", 4, 4, 8),  # published ~6 GB
])
def test_7b_estimates_match_published_figures(method, precision, bits, low, high):
    assert low <= gib(method, precision, bits=bits) <= high


def test_4bit_weights_cost_what_the_block_format_says():
    shapes = model_shapes("llama-2-7b")
    count = count_trainable_params(shapes, "full")
    rest = shapes.base - shapes.quantisable
    for double_quant, bits_per_weight in ((False, 4.5), (True, 4 + 8 / 64 + 32 / (64 * 256))):
        lora = count_trainable_params(shapes, "qlora", 8, ["q_proj"])
        est = estimate_memory(shapes, lora, "qlora", double_quant=double_quant)
        adapters = 4 * (lora.total - lora.base)
        assert est.weights - adapters - 2 * rest == pytest.approx(shapes.quantisable * bits_per_weight / 8, abs=1)
    assert estimate_memory(shapes, count, "full", TrainingSetup(precision="fp32")).weights == 4 * shapes.base


def test_memory_moves_the_right_way():
    assert gib("lora", batch_size=8) > gib("lora", batch_size=1)
    assert gib("lora", seq_len=4096, gradient_checkpointing=False) > gib("lora", seq_len=4096)
    assert gib("full", stage="dpo") > gib("full")  # a frozen reference copy
    assert gib("lora", stage="dpo") < gib("full", stage="dpo")
    assert gib("lora", stage="rlhf") > gib("lora") + 12  # a reward model the size of the policy
    assert gib("full", model="llama-3.1-70b") > 8 * gib("full")


def _saved_bytes(model: torch.nn.Module, seq: int, padded: bool) -> int:
    """Bytes of the tensors autograd keeps for backward in one training forward pass, weights excluded, run
    as the trainers run it: under 16-bit autocast for a 16-bit model, with a padding mask when `padded`."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    ids = torch.randint(0, 100, (1, seq))
    mask = torch.ones(1, seq, dtype=torch.long)
    if padded:
        mask[0, :4] = 0  # left padding: the model gets a real mask
    half = next(model.parameters()).dtype == torch.bfloat16 or any(
        p.dtype == torch.bfloat16 for p in model.parameters())
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), \
            torch.autocast("cpu", dtype=torch.bfloat16, enabled=half):
        model(input_ids=ids, attention_mask=mask if padded else None, labels=ids)
    return sum(seen.values())


def _saved_bytes_per_layer(config_dir, lora: LoraConfig | None, dtype: torch.dtype, seq: int, padded: bool) -> float:
    """Bytes autograd keeps per token per decoder layer: the difference between 3 layers and 1, halved."""
    totals = []
    for layers in (1, 3):
        raw = json.loads((config_dir / "config.json").read_text())
        raw["num_hidden_layers"] = layers
        (config_dir / "config.json").write_text(json.dumps(raw))
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(config_dir), dtype=dtype,
                                                 attn_implementation="sdpa")
        if lora is not None:
            model = get_peft_model(model, lora)
        model.train()
        totals.append(_saved_bytes(model, seq, padded))
    return (totals[1] - totals[0]) / 2 / seq


def _native_dropout(monkeypatch) -> None:
    """Dropout as it runs on a GPU (one fused kernel keeping a 1-byte mask); the CPU's own path keeps a
    4-byte noise tensor instead, which no training run on a GPU pays."""
    import torch.nn.functional as F

    plain = F.dropout

    def dropout(input, p=0.5, training=True, inplace=False):
        if training and 0 < p < 1:
            return torch.native_dropout(input, p, True)[0]
        return plain(input, p, training, inplace)

    monkeypatch.setattr(F, "dropout", dropout)


@pytest.mark.parametrize("dtype, lora, padded", [
    (torch.bfloat16, None, False), (torch.float32, None, False),
    (torch.bfloat16, LoraConfig(r=8, target_modules=["q_proj", "v_proj"], lora_dropout=0.0), False),
    (torch.bfloat16, LoraConfig(r=8, target_modules=["q_proj", "v_proj"], lora_dropout=0.1), False),
    (torch.bfloat16, LoraConfig(r=4, target_modules="all-linear", lora_dropout=0.0), False),
    (torch.bfloat16, LoraConfig(r=4, target_modules="all-linear", lora_dropout=0.05), True),
], ids=["full-bf16", "full-fp32", "lora", "lora-dropout", "lora-all-linear", "lora-padded"])
def test_activation_formula_matches_what_autograd_keeps(tmp_path, monkeypatch, dtype, lora, padded):
    _native_dropout(monkeypatch)
    seq = 64
    config = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 176, "num_attention_heads": 4,
              "num_key_value_heads": 2, "vocab_size": 100, "num_hidden_layers": 1}
    (tmp_path / "config.json").write_text(json.dumps(config))
    measured = _saved_bytes_per_layer(tmp_path, lora, dtype, seq, padded)
    d = 2 if dtype == torch.bfloat16 else 4
    per_layer = {}
    for layers in (1, 3):
        config["num_hidden_layers"] = layers
        folder = tmp_path / f"l{layers}"
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps(config))
        shapes = model_shapes(str(folder))
        if lora is None:
            count, method, rank, dropout = count_trainable_params(shapes, "full"), "full", 8, 0.0
        else:
            targets = ["all-linear"] if lora.target_modules == "all-linear" else sorted(lora.target_modules)
            count = count_trainable_params(shapes, "lora", lora.r, targets)
            method, rank, dropout = "lora", lora.r, lora.lora_dropout
        setup = TrainingSetup(batch_size=1, seq_len=seq, padded=padded, stage="reward")  # a one-output head
        per_layer[layers] = activation_bytes(shapes, count, setup, d, None if method == "full" else (rank, dropout))
    estimated = (per_layer[3] - per_layer[1]) / 2 / seq / 2  # reward data are pairs: two rows a token
    if lora is not None and lora.target_modules != "all-linear":
        # adapters on some layers only: autograd keeps one small tensor more than the formula counts (2.4%)
        assert abs(estimated - measured) <= 0.03 * measured
    else:
        assert estimated == measured


def test_detect_gpu_is_quick_and_leaves_cuda_alone():
    detect_gpu.cache_clear()
    started = time.perf_counter()
    gpu = detect_gpu()
    assert time.perf_counter() - started < 5
    if shutil.which("nvidia-smi") is None:
        assert gpu is None
    else:
        assert isinstance(gpu, GpuInfo) and gpu.memory_bytes > 0 and gpu.name
    if "torch" in sys.modules:
        assert not torch.cuda.is_initialized()


@pytest.mark.parametrize("output, code, expected", [
    ("NVIDIA H100 80GB HBM3, 81559\nNVIDIA H100 80GB HBM3, 81559\n", 0, GpuInfo("NVIDIA H100 80GB HBM3",
                                                                             81559 * 1024**2, 2)),
    ("Tesla T4, 15360\n", 0, GpuInfo("Tesla T4", 15360 * 1024**2, 1)),
    ("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n", 9, None),
    ("Tesla T4, [N/A]\n", 0, None),
])
def test_detect_gpu_reads_nvidia_smi(tmp_path, monkeypatch, output, code, expected):
    """A stand-in nvidia-smi on PATH prints what the real one prints on such machines (or fails)."""
    tool = tmp_path / "nvidia-smi"
    tool.write_text(f"#!/bin/sh\nprintf '%s' '{output}'\nexit {code}\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    detect_gpu.cache_clear()
    try:
        assert detect_gpu() == expected
    finally:
        detect_gpu.cache_clear()


def test_fit_verdict_says_what_to_try():
    est = MemoryEstimate(weights=20 * GIB, gradients=0, optimizer=0, activations=0, overhead=0)
    assert fit_verdict(est, 80.0, "H100", "lora") == (True, "Fits: about 20.0 of 80.0 GiB on H100.")
    fits, sentence = fit_verdict(est, 16.0, "T4", "lora")
    assert fits is False and sentence.endswith("try QLoRA or a smaller batch.")
    assert fit_verdict(est, None, "", "full")[0] is None


@pytest.mark.parametrize("setup, message", [
    (TrainingSetup(batch_size=0), "batch size must be a whole number of at least 1"),
    (TrainingSetup(seq_len=0), "sequence length"),
    (TrainingSetup(precision="int4"), "precision must be one of"),
])
def test_bad_setup_is_one_sentence(setup, message):
    with pytest.raises(ValueError, match=message):
        setup.check()
