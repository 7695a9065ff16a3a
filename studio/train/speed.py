"""The `speed:` section and `train.gradient_checkpointing`, resolved for the machine a run starts on.

    chosen = resolve(cfg, "bf16")          # Chosen(attention="sdpa", batching="by_length", ...)
    args |= chosen.training_arguments()    # the transformers / TRL keyword arguments
    kwargs |= chosen.model_arguments()     # from_pretrained's keyword arguments

`auto` means, on a GPU: FlashAttention 2 where the flash-attn package is installed (else sdpa), rows laid
end to end without padding with it (else batched by length), Liger's kernels where liger-kernel is
installed, fused AdamW, two data-loading workers, and gradient checkpointing only when the memory
estimate says the run would not fit without it. On the CPU: sdpa, random padded batches, fused AdamW,
no workers, no checkpointing (the precision, fp32 there, is chosen in methods/common.py).
Batching and Liger apply to SFT; the other stages batch as their trainers do.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from dataclasses import dataclass
from typing import Any

from studio.config import RunConfig
from studio.errors import StudioError

PADDED_STAGES = ("sft", "reward", "dpo", "kto")
"""The stages whose TRL trainers pad batches to a multiple (speed.pad_to_multiple)."""
FITS_SHARE = 0.92
"""Gradient checkpointing turns on when the estimate exceeds this share of the GPU's memory."""

def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@dataclass(frozen=True)
class Chosen:
    attention: str
    batching: str
    liger: bool
    fused_optimizer: bool
    workers: int
    threads: int
    gradient_checkpointing: bool
    why_checkpointing: str = ""
    pad_to_multiple: int = 0
    attention_default: bool = False
    """sdpa picked by auto: left to transformers, which falls back to eager for models without sdpa."""

    def training_arguments(self, stage: str = "sft") -> dict[str, Any]:
        """Keyword arguments for the stage's TRL config (a TrainingArguments subclass)."""
        from transformers import TrainingArguments

        out: dict[str, Any] = {
            "gradient_checkpointing": self.gradient_checkpointing,
            "optim": "adamw_torch_fused" if self.fused_optimizer else "adamw_torch",
            "dataloader_num_workers": self.workers,
            "use_liger_kernel": self.liger,
        }
        if self.gradient_checkpointing:
            out["gradient_checkpointing_kwargs"] = {"use_reentrant": False}
        if self.batching == "by_length":
            fields = {f.name for f in dataclasses.fields(TrainingArguments)}
            if "train_sampling_strategy" in fields:
                out["train_sampling_strategy"] = "group_by_length"
            else:  # transformers before the sampling strategies had a switch
                out["group_by_length"] = True
        if stage == "sft" and self.batching == "padding_free":
            out |= {"packing": True, "packing_strategy": "bfd"}
        if self.pad_to_multiple and stage in PADDED_STAGES:
            out["pad_to_multiple_of"] = self.pad_to_multiple
        return out

    def model_arguments(self) -> dict[str, Any]:
        return {} if self.attention_default else {"attn_implementation": self.attention}

    def settings(self) -> dict[str, Any]:
        """The values to write back into the run's config (speed section and checkpointing)."""
        on = {True: "on", False: "off"}
        return {"speed.attention": self.attention, "speed.batching": self.batching,
                "speed.liger": on[self.liger], "speed.fused_optimizer": on[self.fused_optimizer],
                "speed.workers": self.workers, "speed.threads": self.threads,
                "speed.pad_to_multiple": self.pad_to_multiple,
                "train.gradient_checkpointing": on[self.gradient_checkpointing]}


_CACHE: dict[tuple[Any, ...], Chosen] = {}


def resolve(cfg: RunConfig, precision: str, cuda: bool | None = None) -> Chosen:
    """The settings this run uses here; a choice that cannot work here is refused in one sentence."""
    if cuda is None:
        import torch

        cuda = torch.cuda.is_available()
    key = (repr(cfg.speed), repr(cfg.train), repr(cfg.method), cfg.model.name, cfg.data.max_length, precision, cuda)
    if key in _CACHE:
        return _CACHE[key]
    s = cfg.speed
    attention, batching, liger = _kernels(cfg, precision, cuda)
    fused = s.fused_optimizer != "off"  # one kernel for all weights, on GPUs and (torch 2.4 and later) CPUs
    workers = s.workers if s.workers >= 0 else (2 if cuda else 0)
    checkpointing, why = _checkpointing(cfg, precision, cuda, batching != "padding_free", liger)
    chosen = Chosen(attention, batching, liger, fused, workers, s.threads, checkpointing, why,
                    pad_to_multiple=s.pad_to_multiple, attention_default=s.attention == "auto" and attention == "sdpa")
    _CACHE[key] = chosen
    return chosen


def refuse(cfg: RunConfig, cuda: bool) -> None:
    """The refusals of resolve() alone, without the memory estimate: the checks before a run folder exists
    (the precision only steers the automatic attention pick, never a refusal)."""
    _kernels(cfg, "bf16" if cuda else "fp32", cuda)


def _kernels(cfg: RunConfig, precision: str, cuda: bool) -> tuple[str, str, bool]:
    """The attention kernel, the batching and Liger for this run, after refusing what cannot work here."""
    s, stage = cfg.speed, cfg.method.stage
    attention = s.attention
    if attention == "auto":
        attention = ("flash_attention_2" if cuda and precision in ("bf16", "fp16") and installed("flash_attn")
                     else "sdpa")
    if attention == "flash_attention_2" and not (cuda and installed("flash_attn")):
        raise StudioError("speed.attention is flash_attention_2, which needs a GPU and the flash-attn package "
                          "(pip install flash-attn): install it, or set speed.attention to auto or sdpa.")
    batching = s.batching
    if batching == "auto":
        batching = "padded"
        if stage == "sft" and cuda:
            batching = "padding_free" if attention == "flash_attention_2" else "by_length"
    if batching != "padded" and stage != "sft":
        raise StudioError(f"speed.batching {batching} applies to SFT; the {stage} stage batches its pairs "
                          "itself: set speed.batching to auto or padded.")
    liger = s.liger == "on" or (s.liger == "auto" and cuda and stage == "sft" and installed("liger_kernel"))
    if liger and not installed("liger_kernel"):
        raise StudioError("speed.liger is on, but the liger-kernel package is not installed: pip install "
                          "liger-kernel, or set speed.liger to auto.")
    if liger and stage != "sft":
        raise StudioError(f"speed.liger applies to SFT in this version, not {stage}: set it to auto or off.")
    if s.pad_to_multiple and stage not in PADDED_STAGES:
        raise StudioError(f"speed.pad_to_multiple applies to {', '.join(PADDED_STAGES)}, not {stage}, whose "
                          "trainer pads as it generates: set it to 0.")
    if s.pad_to_multiple > cfg.data.max_length:
        raise StudioError(f"speed.pad_to_multiple ({s.pad_to_multiple}) is more than data.max_length "
                          f"({cfg.data.max_length}), so every batch would be padded past its longest possible row: "
                          "use a smaller multiple, such as 64.")
    return attention, batching, liger


def _checkpointing(cfg: RunConfig, precision: str, cuda: bool, padded: bool, liger: bool) -> tuple[bool, str]:
    asked = cfg.train.gradient_checkpointing
    if asked != "auto":
        return asked == "on", f"set to {asked}"
    if not cuda:
        return False, "off on the CPU (memory is rarely the limit there)"
    from studio.models.estimate import estimate_run
    from studio.models.memory import TrainingSetup, detect_gpu

    gpu = detect_gpu()
    if gpu is None:
        return False, "off: the GPU's memory could not be read"
    multiple = cfg.speed.pad_to_multiple  # a batch padded up to a multiple may pass max_length
    longest = -(-cfg.data.max_length // multiple) * multiple if multiple else cfg.data.max_length
    setup = TrainingSetup(batch_size=cfg.train.batch_size, seq_len=longest,
                          precision=precision if precision in ("bf16", "fp16", "fp32") else "bf16",
                          gradient_checkpointing=False, stage=cfg.method.stage,
                          processes=cfg.train.num_processes, strategy=cfg.train.strategy, padded=padded,
                          liger=liger)
    try:
        need = estimate_run(cfg, setup, gpu=gpu).memory.total
    except (StudioError, ValueError, OSError) as err:
        return False, f"off: the memory estimate failed ({str(err)[:120]})"
    share = need / gpu.memory_bytes
    verdict = "on" if share > FITS_SHARE else "off"
    return share > FITS_SHARE, f"{verdict}: the estimate without it is {share:.0%} of the GPU's memory"


def record(cfg: RunConfig, chosen: Chosen) -> RunConfig:
    """A copy of `cfg` whose speed section and checkpointing say what the run used."""
    out = dataclasses.replace(cfg, speed=dataclasses.replace(cfg.speed), train=dataclasses.replace(cfg.train))
    for path, value in chosen.settings().items():
        section, key = path.split(".")
        setattr(getattr(out, section), key, value)
    return out


def apply_threads(chosen: Chosen) -> None:
    if chosen.threads > 0:
        import torch

        torch.set_num_threads(chosen.threads)
