"""The `speed:` section of a run config: how a run is made fast on the machine it runs on. Every
setting is `auto` by default, resolved when the run starts (studio/train/speed.py) and written back
into the run's config.yaml, so a run folder says what it really used.

    speed:
      attention: auto        # sdpa, eager, flash_attention_2
      batching: auto         # padding_free, by_length, padded
      liger: auto            # on, off
      fused_optimizer: auto  # on, off
      workers: -1            # data-loading processes; -1 picks
      threads: 0             # CPU threads for torch; 0 picks
      pad_to_multiple: 0     # pad each batch to a multiple of this many tokens; 0: to its longest row
"""

from __future__ import annotations

from dataclasses import dataclass

ATTENTIONS = ("auto", "sdpa", "eager", "flash_attention_2")
BATCHINGS = ("auto", "padding_free", "by_length", "padded")
SWITCHES = ("auto", "on", "off")


@dataclass
class SpeedSettings:
    attention: str = "auto"
    """Attention kernel: auto takes FlashAttention 2 on a GPU where the flash-attn package is installed,
    else PyTorch's scaled-dot-product attention (sdpa)."""
    batching: str = "auto"
    """How rows of different lengths share a batch: padding_free (SFT; rows laid end to end, needs
    FlashAttention), by_length (rows of similar length batched together, less padding), padded (random
    batches padded to their longest row). auto: padding_free with FlashAttention, else by_length on a GPU
    and padded on the CPU."""
    liger: str = "auto"
    """Liger's fused kernels (RMSNorm, SwiGLU, RoPE); auto: on a GPU where liger-kernel is installed."""
    fused_optimizer: str = "auto"
    """PyTorch's fused AdamW (one kernel for all parameters); auto: on (GPUs and CPUs)."""
    workers: int = -1
    """Processes preparing batches beside training; -1: 2 on a GPU, 0 on the CPU."""
    threads: int = 0
    """CPU threads torch may use; 0 leaves torch's choice (one per physical core)."""
    pad_to_multiple: int = 0
    """Pad each batch to a multiple of this many tokens (SFT, reward, DPO, KTO): fewer distinct batch
    shapes for kernels compiled per shape, at the cost of the extra padding; 0 pads to the batch's
    longest row."""

    def check(self) -> None:
        for key, allowed in (("attention", ATTENTIONS), ("batching", BATCHINGS), ("liger", SWITCHES),
                             ("fused_optimizer", SWITCHES)):
            value = getattr(self, key)
            if value not in allowed:
                raise ValueError(f"speed.{key} must be one of {', '.join(allowed)} (got {value!r}).")
        if not -1 <= self.workers <= 64:
            raise ValueError(f"speed.workers must be between -1 (pick) and 64 (got {self.workers}).")
        if not 0 <= self.threads <= 1024:
            raise ValueError(f"speed.threads must be between 0 (pick) and 1024 (got {self.threads}).")
        if not 0 <= self.pad_to_multiple <= 4096:
            raise ValueError("speed.pad_to_multiple must be between 0 (pad to the longest row) and 4096 "
                             f"(got {self.pad_to_multiple}).")
