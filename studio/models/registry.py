"""Well-known models whose architecture configs ship with the studio, so that parameter counts and memory
estimates work offline, before anything is downloaded.

Each preset is one folder under assets/model-configs/<key>/ holding the model's published config.json
(no weights, no tokenizer). A hub id of a preset, or of one of its same-architecture variants (chat and
instruct releases), resolves to that folder instead of the network.

    from studio.models.registry import find_preset
    find_preset("meta-llama/Llama-2-7b-hf").config_dir     # assets/model-configs/llama-2-7b
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from studio.paths import ASSETS

MODEL_CONFIGS = ASSETS / "model-configs"
TINY = "tiny"


@dataclass(frozen=True)
class ModelPreset:
    key: str
    """Folder name under assets/model-configs/ and a short name the CLI accepts."""
    label: str
    """Name shown in the model picker."""
    hub_id: str
    """The hub repository the config comes from; training downloads weights from here."""
    family: str
    """Architecture family (transformers model_type)."""
    notes: str
    """One line on what the model is good for, shown under the picker."""
    aliases: tuple[str, ...] = ()
    """Other hub ids with exactly the same layer shapes (chat / instruct releases)."""

    @property
    def config_dir(self) -> Path:
        return MODEL_CONFIGS / self.key


PRESETS: tuple[ModelPreset, ...] = (
    ModelPreset("smollm2-135m", "SmolLM2-135M", "HuggingFaceTB/SmolLM2-135M", "llama",
                "Smallest real model here; trains on a laptop GPU or slowly on CPU.",
                ("HuggingFaceTB/SmolLM2-135M-Instruct",)),
    ModelPreset("smollm2-360m", "SmolLM2-360M", "HuggingFaceTB/SmolLM2-360M", "llama",
                "Small and quick; a good first real model on any GPU.",
                ("HuggingFaceTB/SmolLM2-360M-Instruct",)),
    ModelPreset("smollm2-1.7b", "SmolLM2-1.7B", "HuggingFaceTB/SmolLM2-1.7B", "llama",
                "Capable small model; full fine-tuning fits a 40 GB GPU.",
                ("HuggingFaceTB/SmolLM2-1.7B-Instruct",)),
    ModelPreset("qwen2.5-0.5b", "Qwen2.5-0.5B", "Qwen/Qwen2.5-0.5B", "qwen2",
                "Tiny multilingual model with a large vocabulary; tied embeddings.",
                ("Qwen/Qwen2.5-0.5B-Instruct",)),
    ModelPreset("qwen2.5-1.5b", "Qwen2.5-1.5B", "Qwen/Qwen2.5-1.5B", "qwen2",
                "Strong for its size; LoRA fits a 16 GB GPU.",
                ("Qwen/Qwen2.5-1.5B-Instruct",)),
    ModelPreset("qwen2.5-7b", "Qwen2.5-7B", "Qwen/Qwen2.5-7B", "qwen2",
                "7B class, good at code and maths; QLoRA fits a 12 GB GPU.",
                ("Qwen/Qwen2.5-7B-Instruct",)),
    ModelPreset("gemma-2-2b", "Gemma-2-2B", "google/gemma-2-2b", "gemma2",
                "Gated on the hub; 256k vocabulary, so embeddings are a third of its weights.",
                ("google/gemma-2-2b-it",)),
    ModelPreset("phi-3-mini", "Phi-3-mini (4k)", "microsoft/Phi-3-mini-4k-instruct", "phi3",
                "3.8B with fused qkv_proj and gate_up_proj layers.", ()),
    ModelPreset("mistral-7b", "Mistral-7B (v0.1)", "mistralai/Mistral-7B-v0.1", "mistral",
                "7B with grouped-query attention and a 4k sliding window.",
                ("mistralai/Mistral-7B-Instruct-v0.1",)),
    ModelPreset("llama-2-7b", "Llama-2-7B", "meta-llama/Llama-2-7b-hf", "llama",
                "Gated on the hub; the reference 7B model most published memory figures use.",
                ("meta-llama/Llama-2-7b-chat-hf",)),
    ModelPreset("llama-3.1-8b", "Llama-3.1-8B", "meta-llama/Llama-3.1-8B", "llama",
                "Gated on the hub; 128k vocabulary and grouped-query attention.",
                ("meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Meta-Llama-3.1-8B",
                 "meta-llama/Meta-Llama-3.1-8B-Instruct")),
    ModelPreset("llama-3.1-70b", "Llama-3.1-70B", "meta-llama/Llama-3.1-70B", "llama",
                "Gated on the hub; 70B class: QLoRA needs a 48 GB GPU, full fine-tuning a cluster.",
                ("meta-llama/Llama-3.1-70B-Instruct", "meta-llama/Meta-Llama-3.1-70B",
                 "meta-llama/Meta-Llama-3.1-70B-Instruct")),
)


def find_preset(name: str) -> ModelPreset | None:
    """The shipped preset for a short key, a hub id or an alias (case-insensitive), else None."""
    wanted = (name or "").strip().lower()
    for preset in PRESETS:
        if wanted in (preset.key, preset.hub_id.lower(), *(a.lower() for a in preset.aliases)):
            return preset
    return None


def model_choices() -> list[tuple[str, str]]:
    """(label, value) pairs for a model picker: the built-in model first, then presets by size."""
    return [("tiny — built-in demo model (works offline)", TINY)] + [
        (f"{p.label} — {p.hub_id}", p.hub_id) for p in PRESETS
    ]
