"""Parameter counts from layer shapes equal PEFT's own count, for every shipped config and a grid of choices.

PEFT's reference numbers come from real PEFT models built on the meta device (shapes, no weights), so the
comparison covers full-size configs in seconds; the rank / target grid runs on two-layer copies of each
config, which exercise the same layer shapes.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    BitsAndBytesConfig,
)

from studio.errors import StudioError
from studio.models import counting
from studio.models.counting import count_trainable_params, model_shapes
from studio.models.registry import PRESETS, find_preset, model_choices
from studio.paths import TINY_MODEL

# Parameter counts published on each model's hub page (safetensors metadata).
PUBLISHED = {
    "llama-2-7b": 6_738_415_616, "llama-3.1-8b": 8_030_261_248, "llama-3.1-70b": 70_553_706_496,
    "mistral-7b": 7_241_732_096, "qwen2.5-0.5b": 494_032_768, "qwen2.5-1.5b": 1_543_714_304,
    "qwen2.5-7b": 7_615_616_512, "smollm2-135m": 134_515_008, "smollm2-360m": 361_821_120,
    "smollm2-1.7b": 1_711_376_384, "gemma-2-2b": 2_614_341_888, "phi-3-mini": 3_821_079_552,
}


def peft_counts(config_dir: Path, r: int, targets, dora: bool = False, bias: str = "none",
                reward: bool = False) -> tuple[int, int]:
    """(trainable, total) from PEFT itself, on a meta-device model built from the same config."""
    config = AutoConfig.from_pretrained(config_dir)
    with torch.device("meta"):
        if reward:
            config.num_labels = 1
            model = AutoModelForSequenceClassification.from_config(config)
        else:
            model = AutoModelForCausalLM.from_config(config)
        lora = LoraConfig(r=r, target_modules=targets, use_dora=dora, bias=bias,
                          task_type="SEQ_CLS" if reward else "CAUSAL_LM")
        return get_peft_model(model, lora).get_nb_trainable_parameters()


def two_layer_copy(preset_dir: Path, tmp: Path) -> Path:
    raw = json.loads((preset_dir / "config.json").read_text())
    raw["num_hidden_layers"] = 2
    raw.pop("max_window_layers", None)
    folder = tmp / preset_dir.name
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(raw))
    return folder


def test_llama_2_7b_rank_8_on_q_and_v_is_exact():
    count = count_trainable_params("meta-llama/Llama-2-7b-hf", "lora", 8, ["q_proj", "v_proj"])
    assert count.trainable == 4_194_304
    assert count.base == 6_738_415_616
    assert count.total == 6_738_415_616 + 4_194_304  # PEFT's "all params" include the adapters
    assert f"{count.percent:.2f}" == "0.06"


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.key)
def test_shipped_configs_have_their_published_size(preset):
    shapes = model_shapes(preset.key)
    assert shapes.base == PUBLISHED[preset.key]
    assert shapes.model_type == preset.family
    assert count_trainable_params(preset.hub_id, "full").trainable == PUBLISHED[preset.key]


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.key)
def test_full_size_counts_equal_peft(preset):
    ours = count_trainable_params(preset.key, "lora", 16, ["all-linear"], dora=True)
    assert (ours.trainable, ours.total) == peft_counts(preset.config_dir, 16, "all-linear", dora=True)


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.key)
def test_rank_and_target_grid_equals_peft(preset, tmp_path):
    folder = two_layer_copy(preset.config_dir, tmp_path)
    shapes = model_shapes(str(folder))
    names = shapes.target_names
    attention = shapes.attention_targets
    mlp = [n for n in names if n not in attention]
    pair = [n for n in ("q_proj", "v_proj") if n in names] or attention[:1]
    for targets in (pair, attention, mlp, ["all-linear"]):
        for r, dora in ((1, False), (16, True), (256, False)):
            ours = count_trainable_params(shapes, "qlora" if r == 1 else "lora", r, targets, dora=dora)
            peft_targets = "all-linear" if targets == ["all-linear"] else targets
            assert (ours.trainable, ours.total) == peft_counts(folder, r, peft_targets, dora), (targets, r, dora)


@pytest.mark.parametrize("key", ["llama-2-7b", "qwen2.5-0.5b", "gemma-2-2b"])
def test_reward_model_head_counts_like_peft(key):
    preset = find_preset(key)
    for targets in (["q_proj", "v_proj"], "all-linear"):
        ours = count_trainable_params(key, "lora", 8, [targets] if isinstance(targets, str) else targets,
                                      stage="reward")
        assert (ours.trainable, ours.total) == peft_counts(preset.config_dir, 8, targets, reward=True)
    full = count_trainable_params(key, "full", stage="reward")
    assert full.trainable == full.total == model_shapes(key, stage="reward").base


def test_reward_model_swaps_the_vocabulary_head_for_one_output():
    assert model_shapes("llama-2-7b", stage="reward").base == 6_738_415_616 - 32_000 * 4096 + 4096
    # tied embeddings: the vocabulary matrix stays (as the input embedding) and the score head is added
    assert model_shapes("qwen2.5-0.5b", stage="reward").base == 494_032_768 + 896


@pytest.mark.parametrize("bias", ["all", "lora_only"])
def test_bias_modes_count_like_peft(bias):
    preset = find_preset("qwen2.5-0.5b")  # q, k and v carry biases
    ours = count_trainable_params(preset.key, "lora", 4, ["q_proj", "o_proj"], bias=bias)
    assert (ours.trainable, ours.total) == peft_counts(preset.config_dir, 4, ["q_proj", "o_proj"], bias=bias)


def test_dotted_and_full_names_match_like_peft():
    preset = find_preset("smollm2-135m")
    targets = ["self_attn.q_proj", "model.layers.0.mlp.down_proj"]
    ours = count_trainable_params(preset.key, "lora", 8, targets)
    assert (ours.trainable, ours.total) == peft_counts(preset.config_dir, 8, targets)
    assert ours.adapted_layers == 30 + 1


def test_qlora_counts_equal_peft_on_a_real_quantised_model(tmp_path):
    """bitsandbytes packs 4-bit weights two to a byte; PEFT's count unpacks them, so QLoRA == LoRA."""
    raw = json.loads((find_preset("qwen2.5-0.5b").config_dir / "config.json").read_text())
    raw.update(num_hidden_layers=2, vocab_size=512, hidden_size=128, intermediate_size=256,
               num_attention_heads=4, num_key_value_heads=2, bos_token_id=0, eos_token_id=0)
    raw.pop("max_window_layers")
    config = AutoConfig.for_model(raw.pop("model_type"), **raw)
    AutoModelForCausalLM.from_config(config).save_pretrained(tmp_path)
    targets = ["q_proj", "v_proj", "down_proj"]
    ours = count_trainable_params(str(tmp_path), "qlora", 8, targets)
    for quant in (dict(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True),
                  dict(load_in_8bit=True)):
        try:
            model = AutoModelForCausalLM.from_pretrained(
                tmp_path, quantization_config=BitsAndBytesConfig(**quant), dtype=torch.bfloat16)
        except (ImportError, RuntimeError, ValueError) as err:
            pytest.skip(f"bitsandbytes cannot quantise on this machine: {err}")
        peft_model = get_peft_model(model, LoraConfig(r=8, target_modules=targets))
        assert (ours.trainable, ours.total) == peft_model.get_nb_trainable_parameters()


@pytest.mark.skipif(not (TINY_MODEL / "config.json").exists(), reason="built-in model not built yet")
def test_tiny_model_counts_equal_peft_on_its_real_weights():
    ours = count_trainable_params("tiny", "lora", 4, ["all-linear"])
    model = AutoModelForCausalLM.from_pretrained(TINY_MODEL)
    peft_model = get_peft_model(model, LoraConfig(r=4, target_modules="all-linear"))
    assert (ours.trainable, ours.total) == peft_model.get_nb_trainable_parameters()


def test_target_names_list_what_the_architecture_has():
    assert model_shapes("phi-3-mini").target_names == ["o_proj", "qkv_proj", "gate_up_proj", "down_proj"]
    assert model_shapes("phi-3-mini").attention_targets == ["o_proj", "qkv_proj"]
    llama = model_shapes("llama-3.1-8b")
    assert llama.target_names == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    assert llama.output_layer == "lm_head" and "lm_head" not in llama.target_names


def test_unknown_target_names_the_layers_that_exist():
    with pytest.raises(StudioError) as err:
        count_trainable_params("meta-llama/Llama-2-7b-hf", "lora", 8, ["q_proj", "foo_proj"])
    assert str(err.value) == ("Model Llama-2-7B has no layer named 'foo_proj'; it has q_proj, k_proj, v_proj, "
                              "o_proj, gate_proj, up_proj, down_proj.")


@pytest.mark.parametrize("kwargs, message", [
    ({"rank": 0}, "rank must be a whole number of at least 1"),
    ({"rank": -3}, "rank must be a whole number of at least 1"),
    ({"targets": []}, "Pick at least one target module"),
    ({"targets": ["all-linear", "q_proj"]}, "give it alone"),
    ({"method": "prefix"}, "method must be one of"),
    ({"bias": "some"}, "bias must be one of"),
])
def test_bad_choices_are_one_sentence(kwargs, message):
    args = {"model": "smollm2-135m", "method": "lora", "rank": 8, "targets": ["q_proj"], **kwargs}
    with pytest.raises(ValueError, match=message):
        count_trainable_params(**args)


def test_unknown_hub_model_offline_is_one_sentence(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(StudioError, match="not in the local cache and the hub cannot be reached"):
        model_shapes("example-org/not-a-cached-model")
    with pytest.raises(StudioError, match="neither a folder on this machine nor a hub id"):
        model_shapes("not a model!")


def test_hub_ids_of_presets_and_their_variants_resolve_offline():
    assert find_preset("META-LLAMA/Llama-2-7b-chat-hf").key == "llama-2-7b"
    assert find_preset("Qwen/Qwen2.5-7B-Instruct").key == "qwen2.5-7b"
    assert find_preset("someone/else") is None
    assert model_choices()[0][1] == "tiny"
    assert model_shapes("Qwen/Qwen2.5-7B-Instruct") is model_shapes("qwen2.5-7b")


def test_local_folder_is_read_again_after_it_changes(tmp_path):
    folder = two_layer_copy(find_preset("smollm2-135m").config_dir, tmp_path)
    first = model_shapes(str(folder)).base
    raw = json.loads((folder / "config.json").read_text())
    raw["num_hidden_layers"] = 3
    (folder / "config.json").write_text(json.dumps(raw))
    assert model_shapes(str(folder)).base > first


def test_counting_a_70b_model_after_the_first_build_is_fast():
    shapes = model_shapes("llama-3.1-70b")
    started = time.perf_counter()
    for r in range(1, 101):
        count_trainable_params(shapes, "lora", r, ["all-linear"], dora=r % 2 == 0)
    assert (time.perf_counter() - started) / 100 < 0.02
    counting.trainable_by_rank(shapes, ["q_proj"], [1, 2, 4])


def _built_and_worked_out(folder: Path, head: str, label: str):
    import dataclasses

    config = AutoConfig.from_pretrained(folder)
    with torch.device("meta"):
        model = counting._skeleton(config, head, label)
    built = dataclasses.replace(counting._read_shapes(model, config, head, label, 0.0), build_seconds=0.0)
    return built, counting._from_formula((folder / "config.json").read_text(), head, label)


FAMILY = [p.key for p in PRESETS if json.loads((p.config_dir / "config.json").read_text())["model_type"]
          in ("llama", "mistral", "qwen2", "gemma2", "phi3")]


@pytest.mark.parametrize("head", ["lm", "score"])
@pytest.mark.parametrize("key", FAMILY)
def test_the_llama_family_worked_out_from_the_config_equals_the_built_model(key, head):
    built, worked_out = _built_and_worked_out(find_preset(key).config_dir, head, key)
    assert worked_out == built


@pytest.mark.parametrize("biases", [{"attention_bias": True}, {"mlp_bias": True}, {"tie_word_embeddings": False}])
def test_llama_biases_and_untied_heads_are_worked_out_too(tmp_path, biases):
    folder = two_layer_copy(find_preset("smollm2-135m").config_dir, tmp_path)
    raw = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**raw, **biases}))
    built, worked_out = _built_and_worked_out(folder, "lm", "copy")
    assert worked_out == built and worked_out.bias_params == built.bias_params


def test_gemma_2_with_attention_biases_is_worked_out_too(tmp_path):
    folder = two_layer_copy(find_preset("gemma-2-2b").config_dir, tmp_path)
    raw = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**raw, "attention_bias": True}))
    built, worked_out = _built_and_worked_out(folder, "lm", "copy")
    assert worked_out == built and built.bias_params > 0


def test_other_kinds_are_left_to_the_built_model():
    gpt2 = {"model_type": "gpt2", "n_embd": 64, "n_layer": 2, "n_head": 2, "vocab_size": 100}
    assert counting._from_formula(json.dumps(gpt2), "lm", "g") is None
    phi3 = json.loads((find_preset("phi-3-mini").config_dir / "config.json").read_text())
    assert counting._from_formula(json.dumps({**phi3, "attention_bias": True}), "lm", "p") is None
    assert counting._from_formula("{not json", "lm", "x") is None
