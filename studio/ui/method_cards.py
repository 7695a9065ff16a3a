"""The cards the Method tab shows beside each method: what it does, what it costs, how hard it is to get
right, and when to pick it. Plain Markdown, so the Guide tab can reuse them. Stage cards live with the
stage declarations in studio.stages."""

from __future__ import annotations

METHOD_CARDS = {
    "full": """#### Full fine-tuning
**What it does.** Every weight of the model is updated. Nothing is added; the result is a new copy of
the whole model.

**Cost.** The most memory by far: each weight needs itself, its gradient and two AdamW moments — about
8 bytes per parameter in pure 16-bit, 16 with fp32 master weights — before any activations. A 7B
model wants one or more 80 GB GPUs. Checkpoints are as large as the model.

**Complexity.** Few knobs, but easy to overdo: a learning rate that suits LoRA will wreck a fully
trained model, and small datasets are memorised quickly (the model also forgets more of what it knew).

**When.** Plenty of data (tens of thousands of examples or more), a deep change such as a new
language or domain, and hardware to match. Otherwise start with LoRA.""",
    "lora": """#### LoRA (low-rank adapters)
**What it does.** The model's weights stay frozen. Beside each chosen linear layer sits a pair of thin
matrices, `r × in` and `out × r`, whose product is added to the layer's output; only these learn —
usually well under 1% of the parameters. `alpha / r` scales their contribution.

**Cost.** The frozen base in 16-bit (2 bytes per parameter) plus a small optimizer state: a 7B model
trains in about 16 GB. Each step still runs the whole model forwards and backwards, so time per step
is close to full fine-tuning; the saved adapter is megabytes, not gigabytes.

**Complexity.** Three choices matter: rank (capacity), alpha (strength) and which layers get adapters.
Adapting all linear layers at a small rank usually beats a large rank on attention alone.

**When.** The default for most jobs — a format, a tone, a narrow task — with hundreds to a few thousand
examples. DoRA often adds a little quality for a little time; rsLoRA keeps high ranks learning.""",
    "qlora": """#### QLoRA (LoRA on a quantised base)
**What it does.** LoRA, but the frozen base is stored in 4-bit (NF4 or FP4) or 8-bit and expanded to
16-bit one matrix at a time during each forward and backward pass. The adapters train in full
precision, so quality usually stays close to plain LoRA.

**Cost.** About half a byte per base parameter in 4-bit: a 7B model trains in about 6 GB and a 70B
model fits one 48 GB GPU. Expanding the weights makes each step slower than LoRA (often 20–40%).
Needs a CUDA GPU (bitsandbytes).

**Complexity.** The same knobs as LoRA plus the quantisation type; NF4 with double quantisation is the
safe default. Merging the adapter back into a 4-bit model needs care (the studio merges into 16-bit).

**When.** The model does not fit your GPU in 16-bit, or you want a bigger model on the same card.""",
}
