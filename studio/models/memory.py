"""GPU memory a training run needs, estimated from layer shapes, and the GPU this machine has.

The estimate adds five parts, in bytes (docs/memory.md walks through them with a 7B example):

    weights      full / lora: base * bytes(dtype)                  (fp32 or mixed: 4, bf16 / fp16: 2)
                 qlora 4-bit: quantisable * (4 + c) / 8 + rest * 2  c = 0.5 bits of fp32 absmax per 64-weight
                                                                    block, or 0.127 with double quantisation
                 qlora 8-bit: quantisable * 1 + 4 per output row + rest * 2
                 + adapters * 4                                     PEFT keeps adapter weights in fp32
                 + a frozen reference copy (DPO, RLHF with full fine-tuning) and a 16-bit reward model
                   the size of the policy (RLHF)
    gradients    trainable * bytes(trainable dtype)                  one gradient per trainable weight
    optimizer    trainable * 2 * bytes(trainable dtype)              AdamW's two moments; with mixed precision
                                                                    the fp32 weights are the master copy. This
                                                                    is the fused kernel transformers' Trainer
                                                                    uses; the foreach kernel holds one more
                                                                    copy of the trainable weights per step
    activations  tokens * (layers * per_layer + adapters + logits)  tokens = batch * seq (* 2 for the chosen
                                                                    and rejected halves of DPO / reward pairs)
                 full:  per_layer = 2 * (4h + 2dh) + d * (2q + 2kv) + 4 * d * i + 8 + 4 * heads
                     two RMSNorms (an fp32 copy of the input, the normalised value, the output), rotated q
                     and k, v and the attention output (fused attention keeps no seq x seq scores), and the
                     MLP's gate, up, activation and their product; 8 + 4 * heads are each norm's fp32
                     1 / rms and attention's fp32 log-sum-exp
                 lora:  per_layer = 2 * 4h + d * (2q + 2kv) + 3 * d * i + 8 + 4 * heads
                     frozen layers keep no inputs of their own, so the norms keep only the fp32 input and the
                     MLP product goes; instead each adapted layer keeps its input as autocast hands it to the
                     adapter (d bytes, plus dropout's 1-byte mask) and its rank-r output:
                     adapters = sum over adapted layers of (d + 1 with dropout) * in + d * r
                     With Liger: 2 * d * h + d * (2q + 2kv) + 2 * d * i + 8 + 4 * heads
                 padded batches add d * (2q - 2kv) + d * seq per layer: with a padding mask sdpa keeps k and v
                     repeated to every head, and the mask itself
                 d = bytes of the compute dtype, h hidden size, i intermediate size, q = heads * head_dim,
                 kv = kv_heads * head_dim; gradient checkpointing keeps d * h per layer plus one layer
                 being recomputed
                 head: SFT, DPO, KTO and RLHF through TRL never hold the logits: TRL computes
                     log-probabilities in tiles, keeping 4h + 4 + d * h + 18 per token, and one tile of
                     4096 x 32768 x d bytes plus tokens * h * (4 + d) for the head's backward, once per step;
                     the studio's PPO loop holds them: (d + 4 + 4) * vocab per token (a reward model's
                     head has one output, so this part vanishes)
    overhead     1 GiB (CUDA context, cuBLAS workspaces) + 5% of the rest for allocator fragmentation
    sharding     over N processes, fsdp and zero3 keep 1/N of weights, gradients and optimizer state on each
                 GPU, zero2 1/N of gradients and optimizer state, ddp a whole copy; activations are per GPU

The activation formulas are the tensors autograd saves for a Llama block, counted with
torch.autograd.graph.saved_tensors_hooks (tests/test_memory.py checks them to the byte). On an H100 the
estimate (less its overhead part) came within 0.94-1.05x of the measured peak allocation for full and
LoRA training steps of 0.4B-7B models (bench/memory_check.py, figures in docs/benchmarks.md).
For a 7B model at batch 1, 512 tokens and gradient checkpointing it gives 107 GiB for full
mixed-precision AdamW, 54 GiB for pure 16-bit AdamW, 14.5 GiB for 16-bit LoRA, 8.2 GiB for 8-bit and
5.1 GiB for 4-bit QLoRA, in line with the commonly published ~120 / 60 / 16 / 10 / 6 GB. Through TRL's
SFTTrainer on an H200 (Qwen2.5-0.5B shape, LoRA r16 on every linear layer, batch 8 x 512 and 8 x 2048)
the estimate without its overhead came within 2% of the measured peak allocation (bench/gpu_speed.py).

    python -m studio count --model meta-llama/Llama-2-7b-hf --method qlora --json
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from dataclasses import dataclass

from studio.models.counting import ModelShapes, ParamCount
from studio.stages import stage

GIB = 1024**3
SHARDED = {"ddp": (), "zero2": ("gradients", "optimizer"), "fsdp": ("weights", "gradients", "optimizer"),
           "zero3": ("weights", "gradients", "optimizer")}
"""What each multi-process strategy splits across the processes (each process holds 1/N of those parts)."""
FUSED_HEAD_STAGES = ("sft", "dpo", "kto", "rlhf")
"""Stages whose TRL trainer computes log-probabilities in tiles, never holding the whole logits."""
HEAD_TILE = (4096, 32768)
"""Tokens x vocabulary entries of one tile of that fused head (TRL's chunked_logprob)."""
PRECISIONS = ("bf16", "fp16", "fp32", "mixed")
"""bf16 / fp16: weights, gradients and AdamW state all 16-bit (how the studio trains with bf16/fp16);
fp32: everything 32-bit; mixed: fp32 weights with 16-bit compute (automatic mixed precision)."""
CONTEXT_BYTES = 1 * GIB
FRAGMENTATION = 0.05
BLOCK = 64  # bitsandbytes 4-bit block size
REFERENCE_GPUS: dict[str, float] = {
    "80 GB (H100, A100 80GB)": 80.0,
    "48 GB (L40S, A6000)": 48.0,
    "40 GB (A100 40GB)": 40.0,
    "24 GB (RTX 4090, 3090, A10)": 24.0,
    "16 GB (T4, RTX 4080)": 16.0,
    "12 GB (RTX 3060, 4070)": 12.0,
    "8 GB (RTX 3070, 4060)": 8.0,
}
"""Nominal sizes in GiB, for comparing against a GPU other than this machine's."""


@dataclass(frozen=True)
class TrainingSetup:
    """The settings besides method and model that decide memory."""

    batch_size: int = 1
    seq_len: int = 512
    precision: str = "bf16"
    gradient_checkpointing: bool = False
    stage: str = "sft"
    padded: bool = True
    """Batches padded to their longest row (random or by-length batching): sdpa then gets a mask and keeps
    k and v for every head; False for padding-free batches."""
    liger: bool = False
    """Liger's RMSNorm and SwiGLU kernels keep less per layer (LoRA)."""
    processes: int = 1
    """Processes (GPUs) the run is spread over; the estimate is per GPU."""
    strategy: str = "ddp"
    """ddp: nothing sharded; zero2: gradients and optimizer state split; fsdp, zero3: weights too."""

    def check(self) -> TrainingSetup:
        stage(self.stage)
        if self.strategy not in SHARDED:
            raise ValueError(f"strategy must be one of {', '.join(SHARDED)} (got {self.strategy!r}).")
        if not isinstance(self.processes, int) or self.processes < 1:
            raise ValueError(f"The number of processes must be a whole number of at least 1 (got {self.processes!r}).")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)} (got {self.precision!r}).")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"The batch size must be a whole number of at least 1 (got {self.batch_size!r}).")
        if not isinstance(self.seq_len, int) or self.seq_len < 1:
            raise ValueError(f"The sequence length must be a whole number of at least 1 (got {self.seq_len!r}).")
        return self


@dataclass(frozen=True)
class MemoryEstimate:
    weights: int
    gradients: int
    optimizer: int
    activations: int
    overhead: int

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer + self.activations + self.overhead

    def as_gib(self) -> dict[str, float]:
        parts = ("weights", "gradients", "optimizer", "activations", "overhead", "total")
        return {part: round(getattr(self, part) / GIB, 2) for part in parts}


@dataclass(frozen=True)
class GpuInfo:
    name: str
    memory_bytes: int
    count: int = 1

    @property
    def memory_gib(self) -> float:
        return self.memory_bytes / GIB


def estimate_memory(shapes: ModelShapes, count: ParamCount, method: str, setup: TrainingSetup | None = None, *,
                    rank: int = 8, dropout: float = 0.0, bits: int = 4, double_quant: bool = True,
                    compute_dtype: str = "bfloat16") -> MemoryEstimate:
    """Peak GPU memory of one training step, by part (the formula is in the module docstring)."""
    setup = (setup or TrainingSetup()).check()
    full = method == "full"
    if method == "qlora":
        act_bytes = 4 if compute_dtype == "float32" else 2
    else:
        act_bytes = 4 if setup.precision == "fp32" else 2
    base_bytes = 4 if setup.precision in ("fp32", "mixed") else 2
    adapters = count.total - count.base  # zero for full fine-tuning

    if method == "qlora":
        rest = shapes.base - shapes.quantisable
        if bits == 8:
            rows = sum(lin.out_features for lin in shapes.linears if lin.name != shapes.output_layer)
            weights = shapes.quantisable + 4 * rows + 2 * rest
        else:
            constants = (8 / BLOCK + 32 / (BLOCK * 256)) if double_quant else 32 / BLOCK
            weights = int(shapes.quantisable * (4 + constants) / 8) + 2 * rest
    else:
        weights = base_bytes * shapes.base
    weights += 4 * adapters
    traits = stage(setup.stage)
    if traits.reference_copy and full:
        weights += 2 * shapes.base  # the frozen reference; LoRA gets it free by switching the adapter off
    if traits.reward_model:
        weights += 2 * shapes.base  # a 16-bit reward model assumed the size of the policy

    grad_bytes = base_bytes if full else 4
    gradients = grad_bytes * count.trainable
    optimizer = 2 * grad_bytes * count.trainable

    shards = setup.processes
    split = SHARDED[setup.strategy]
    weights = weights // shards if "weights" in split else weights
    gradients = gradients // shards if "gradients" in split else gradients
    optimizer = optimizer // shards if "optimizer" in split else optimizer

    activations = activation_bytes(shapes, count, setup, act_bytes, None if full else (rank, dropout))
    subtotal = weights + gradients + optimizer + activations
    overhead = CONTEXT_BYTES + int(FRAGMENTATION * subtotal)
    return MemoryEstimate(weights, gradients, optimizer, activations, overhead)


def activation_bytes(shapes: ModelShapes, count: ParamCount, setup: TrainingSetup, d: int,
                     lora: tuple[int, float] | None) -> int:
    """Bytes kept for the backward pass; `lora` is (rank, dropout), None for full fine-tuning."""
    h, i = shapes.hidden_size, shapes.intermediate_size
    q, kv = shapes.num_heads * shapes.head_dim, shapes.num_kv_heads * shapes.head_dim
    layers = max(shapes.num_layers, 1)
    small = 2 * 4 + 4 * shapes.num_heads  # each norm's fp32 1/rms, and attention's fp32 log-sum-exp per head
    if lora is None:
        per_layer = 2 * (4 * h + 2 * d * h) + d * (2 * q + 2 * kv) + 4 * d * i + small
        adapters = 0
    else:
        rank, dropout = lora
        if setup.liger:  # its RMSNorm keeps the 16-bit input, its SwiGLU recomputes the activation
            per_layer = 2 * d * h + d * (2 * q + 2 * kv) + 2 * d * i + small
        else:
            per_layer = 2 * 4 * h + d * (2 * q + 2 * kv) + 3 * d * i + small
        adapters = (d + (1 if dropout > 0 else 0)) * count.adapted_in_features + d * rank * count.adapted_layers
    if setup.padded:  # a padding mask sends sdpa down a path that repeats k, v to every head and keeps the mask
        per_layer += d * (2 * q - 2 * kv) + d * setup.seq_len
    traits = stage(setup.stage)
    pairs = 2 if traits.paired else 1
    tokens = setup.batch_size * setup.seq_len * pairs
    if setup.gradient_checkpointing:
        kept = layers * d * h + per_layer + adapters // layers
    else:
        kept = layers * per_layer + adapters
    head = 0
    if shapes.head == "lm" and setup.stage in FUSED_HEAD_STAGES:
        head = 4 * h + 4 + d * h + 18  # the final norm's input and the head's 16-bit input; no logits kept
        head_peak = min(tokens, HEAD_TILE[0]) * HEAD_TILE[1] * d + tokens * h * (4 + d)
    elif shapes.head == "lm":
        head, head_peak = (d + 4 + 4) * shapes.vocab_size, 0
    else:
        head_peak = 0
    kv_cache = 2 * layers * kv * d if traits.generates else 0  # generation before each step
    return tokens * (kept + head + kv_cache) + head_peak


def nvidia_smi(query: str) -> str | None:
    """nvidia-smi's CSV answer (no header, no units) to --query-gpu=`query`, one line per GPU; None without
    the tool or when it fails."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        return subprocess.run([exe, f"--query-gpu={query}", "--format=csv,noheader,nounits"],
                              capture_output=True, text=True, timeout=5, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None


@functools.lru_cache(maxsize=1)
def detect_gpu() -> GpuInfo | None:
    """This machine's first GPU (name, memory), or None; cached, since it cannot change while running.

    CUDA is never initialised here: asking torch would create a CUDA context in the UI process, and a
    process with a CUDA context cannot safely fork training workers later. nvidia-smi reads the same
    facts from the driver in a separate process.
    """
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        props = torch.cuda.get_device_properties(0)
        return GpuInfo(props.name, int(props.total_memory), torch.cuda.device_count())
    out = nvidia_smi("name,memory.total")
    if out is None:
        return None
    rows = [line.rsplit(",", 1) for line in out.strip().splitlines() if "," in line]
    try:
        gpus = [(name.strip(), int(float(mib)) * 1024**2) for name, mib in rows]
    except ValueError:
        return None
    return GpuInfo(gpus[0][0], gpus[0][1], len(gpus)) if gpus else None


def fit_verdict(estimate: MemoryEstimate, gpu_gib: float | None, gpu_name: str, method: str) -> tuple[bool | None, str]:
    """(fits, one sentence) for an estimate against a GPU; fits is None when there is no GPU to compare."""
    need = estimate.total / GIB
    if gpu_gib is None:
        return None, f"Needs about {need:.1f} GiB of GPU memory; no GPU was detected on this machine."
    if need <= gpu_gib:
        return True, f"Fits: about {need:.1f} of {gpu_gib:.1f} GiB on {gpu_name}."
    advice = {"full": "try LoRA or QLoRA, or a smaller batch",
              "lora": "try QLoRA or a smaller batch",
              "qlora": "try a smaller batch, shorter sequences or gradient checkpointing"}[method]
    return False, f"Does not fit: about {need:.1f} GiB needed, {gpu_gib:.1f} GiB on {gpu_name} — {advice}."
