"""What a run costs before it starts: exact parameter counts plus a GPU-memory estimate, for one RunConfig.

This is the one entry point the Method tab and `studio count` share, so both say the same thing:

    python -m studio count --model meta-llama/Llama-2-7b-hf --method lora --rank 8 --targets q_proj,v_proj
    python -m studio count --model tiny --method qlora --json
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from studio.config import RunConfig
from studio.models.counting import ModelShapes, ParamCount, count_trainable_params, model_shapes
from studio.models.memory import (
    GIB,
    GpuInfo,
    MemoryEstimate,
    TrainingSetup,
    detect_gpu,
    estimate_memory,
    fit_verdict,
)


@dataclass(frozen=True)
class RunEstimate:
    cfg: RunConfig
    setup: TrainingSetup
    shapes: ModelShapes
    count: ParamCount
    memory: MemoryEstimate
    gpu_name: str
    gpu_gib: float | None
    fits: bool | None
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        """Plain data for `--json`: the contract keys first, the details after."""
        c, m = self.count, self.cfg.method
        out: dict[str, Any] = {
            "trainable": c.trainable,
            "total": c.total,
            "percent": round(c.percent, 4),
            "memory_gb": round(self.memory.total / GIB, 2),
            "base": c.base,
            "model": self.cfg.model.name,
            "model_type": self.shapes.model_type,
            "method": m.name,
            "stage": m.stage,
        }
        if m.name != "full":
            lo = self.cfg.lora
            out["lora"] = {"r": lo.r, "alpha": lo.alpha, "dropout": lo.dropout, "targets": list(lo.targets),
                           "dora": lo.dora, "rslora": lo.rslora, "adapted_layers": c.adapted_layers}
        if m.name == "qlora":
            q = self.cfg.quant
            out["quant"] = {"bits": q.bits, "quant_type": q.quant_type, "double_quant": q.double_quant}
        out["memory"] = self.memory.as_gib()
        out["memory_unit"] = "GiB"
        out["assumptions"] = {"batch_size": self.setup.batch_size, "seq_len": self.setup.seq_len,
                              "precision": self.setup.precision,
                              "gradient_checkpointing": self.setup.gradient_checkpointing,
                              "processes": self.setup.processes, "strategy": self.setup.strategy,
                              "optimizer": "AdamW"}
        out["gpu"] = None if self.gpu_gib is None else {"name": self.gpu_name, "memory_gib": round(self.gpu_gib, 2)}
        out["fits"] = self.fits
        out["verdict"] = self.verdict
        return out


def estimate_run(cfg: RunConfig, setup: TrainingSetup | None = None, gpu: GpuInfo | None | str = "detect",
                 gpu_gib: float | None = None, gpu_name: str = "") -> RunEstimate:
    """Validate the choices, count parameters and estimate memory against a GPU.

    `gpu="detect"` compares with this machine's GPU; pass a GpuInfo, or None with `gpu_gib` and
    `gpu_name` to compare with another card.
    """
    cfg.validate()
    m, lo, q = cfg.method, cfg.lora, cfg.quant
    setup = dataclasses.replace(setup or TrainingSetup(), stage=m.stage).check()
    shapes = model_shapes(cfg.model.name, cfg.model.revision, m.stage)
    count = count_trainable_params(shapes, m.name, lo.r, lo.targets, dora=lo.dora)
    memory = estimate_memory(shapes, count, m.name, setup, rank=lo.r, dropout=lo.dropout, bits=q.bits,
                             double_quant=q.double_quant, compute_dtype=q.compute_dtype)
    if gpu == "detect":
        gpu = detect_gpu()
    if isinstance(gpu, GpuInfo):
        gpu_gib, gpu_name = gpu.memory_gib, gpu.name
    fits, verdict = fit_verdict(memory, gpu_gib, gpu_name or "the chosen GPU", m.name)
    return RunEstimate(cfg, setup, shapes, count, memory, gpu_name, gpu_gib, fits, verdict)


def whole_number(what: str, value: Any) -> int:
    """`value` as an int, or a ValueError naming `what` (UI number boxes send floats such as 8.0)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a whole number (got {value!r}).") from None
    if not number.is_integer():
        raise ValueError(f"{what} must be a whole number (got {value!r}).")
    return int(number)


def format_estimate(est: RunEstimate) -> str:
    """The text `studio count` prints without --json."""
    c, mem, s = est.count, est.memory.as_gib(), est.setup
    lines = [f"model      {est.shapes.label} ({est.shapes.model_type}, {c.base:,} parameters)",
             f"method     {est.cfg.method.name} · stage {est.cfg.method.stage}"]
    if est.cfg.method.name != "full":
        lo = est.cfg.lora
        lines.append(f"adapters   r={lo.r} alpha={lo.alpha:g} on {', '.join(lo.targets)} "
                     f"({c.adapted_layers} layers){' · DoRA' if lo.dora else ''}{' · rsLoRA' if lo.rslora else ''}")
    lines += [f"trainable  {c.trainable:,} of {c.total:,} ({c.percent:.4f}%)",
              f"memory     {mem['total']:.2f} GiB = weights {mem['weights']:.2f} + gradients {mem['gradients']:.2f} "
              f"+ optimizer {mem['optimizer']:.2f} + activations {mem['activations']:.2f} "
              f"+ overhead {mem['overhead']:.2f}",
              f"assuming   batch {s.batch_size} × {s.seq_len} tokens, {s.precision}, AdamW, gradient "
              f"checkpointing {'on' if s.gradient_checkpointing else 'off'}"
              + (f", per GPU of {s.processes} ({s.strategy})" if s.processes > 1 else ""),
              est.verdict]
    return "\n".join(lines)
