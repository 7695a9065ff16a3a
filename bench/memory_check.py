"""Measured GPU memory of real training steps against the studio's estimate (needs a CUDA GPU).

    python bench/memory_check.py [--quick]

Each case builds a model from a shipped config with random weights (no download), runs three AdamW
steps the way the trainers do (bf16 weights, or fp32 weights under bf16 autocast for "mixed"; PEFT
adapters for LoRA), and compares the peak with `estimate_memory`:

    allocated  torch.cuda.max_memory_allocated()   vs the estimate without its overhead part
    used       max_memory_reserved() + CUDA context vs the whole estimate

and prints the ratio measured / estimated for each. QLoRA is left out: it needs bitsandbytes on the GPU
machine, and its weights part is exact by construction (block sizes are fixed by the format).
"""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# model, method, precision, batch, seq, gradient checkpointing, LoRA targets
CASES = [
    ("smollm2-360m", "full", "bf16", 4, 512, False, None),
    ("smollm2-1.7b", "full", "mixed", 2, 1024, True, None),
    ("qwen2.5-1.5b", "lora", "bf16", 4, 1024, False, ["all-linear"]),
    ("llama-2-7b", "lora", "bf16", 1, 512, True, ["q_proj", "v_proj"]),
    ("llama-2-7b", "lora", "bf16", 2, 2048, False, ["q_proj", "v_proj"]),
    ("llama-2-7b", "full", "bf16", 1, 512, True, None),
]
GIB = 1024**3


def run_case(case: tuple, context: int, foreach: bool = False) -> str:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    from studio.models.counting import count_trainable_params, model_shapes
    from studio.models.memory import TrainingSetup, estimate_memory
    from studio.models.registry import find_preset

    key, method, precision, batch, seq, checkpointing, targets = case
    shapes = model_shapes(key)
    count = count_trainable_params(shapes, method, 16, targets or ["q_proj"])
    setup = TrainingSetup(batch_size=batch, seq_len=seq, precision=precision, gradient_checkpointing=checkpointing)
    est = estimate_memory(shapes, count, method, setup, rank=16, dropout=0.0)

    config = AutoConfig.from_pretrained(find_preset(key).config_dir)
    config.use_cache = False
    dtype = torch.float32 if precision == "mixed" else torch.bfloat16
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype, attn_implementation="sdpa")
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if method != "full":
        model = get_peft_model(model, LoraConfig(r=16, lora_dropout=0.0, target_modules=(
            "all-linear" if targets == ["all-linear"] else targets)))
    model.train()
    # fused, as transformers' Trainer picks by default on torch >= 2.8; the foreach kernel (plain
    # torch.optim.AdamW's default) holds one more copy of the trainable weights during each step
    kernel = {"foreach": True} if foreach else {"fused": True}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5, **kernel)
    ids = torch.randint(0, config.vocab_size, (batch, seq), device="cuda")
    torch.cuda.reset_peak_memory_stats()
    for _ in range(3):
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=precision == "mixed"):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    allocated, reserved = torch.cuda.max_memory_allocated(), torch.cuda.max_memory_reserved()
    del model, optimizer, loss, ids
    gc.collect()
    torch.cuda.empty_cache()
    core = est.total - est.overhead
    used = reserved + context
    label = f"{key} {method} {precision} b{batch}x{seq}{' gc' if checkpointing else ''}{' foreach' * foreach}"
    return (f"{label:42s} allocated {allocated / GIB:6.2f} / est {core / GIB:6.2f} GiB = {allocated / core:.2f}   "
            f"used {used / GIB:6.2f} / est {est.total / GIB:6.2f} GiB = {used / est.total:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the small models")
    parser.add_argument("--foreach", action="store_true", help="also run full fine-tuning with foreach AdamW")
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("memory_check needs a CUDA GPU; nothing measured.")
        return
    from studio.models.memory import detect_gpu

    gpu = detect_gpu()
    print(f"detect_gpu: {gpu} (CUDA initialised by it: {torch.cuda.is_initialized()})")
    torch.cuda.init()
    free, total = torch.cuda.mem_get_info()
    context = total - free  # the CUDA context and whatever else holds memory before the first tensor
    print(f"GPU {gpu.name if gpu else '?'} ({gpu.memory_gib if gpu else total / GIB:.1f} GiB) "
          f"· torch {torch.__version__} · context {context / GIB:.2f} GiB")
    for case in CASES:
        if args.quick and case[0].startswith("llama"):
            continue
        for foreach in (False, True) if args.foreach and case[1] == "full" else (False,):
            try:
                print(run_case(case, context, foreach), flush=True)
            except torch.OutOfMemoryError:
                print(f"{case}: out of memory", flush=True)
                gc.collect()
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
