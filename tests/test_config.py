"""RunConfig: YAML round trip, overrides, and the sentences users see for bad settings."""

from __future__ import annotations

import pytest
import yaml

from studio.config import RunConfig, apply_overrides, dump_config, load_config, save_config
from studio.paths import PRESETS


def test_defaults_validate_and_round_trip(tmp_path):
    cfg = RunConfig().validate()
    path = save_config(cfg, tmp_path / "c.yaml")
    again = load_config(path)
    assert again == cfg
    assert dump_config(again) == dump_config(cfg)


def test_round_trip_keeps_every_section_that_applies(tmp_path):
    cfg = RunConfig.from_dict({
        "name": "q",
        "model": {"name": "org/m", "revision": "main"},
        "method": {"name": "qlora", "stage": "dpo"},
        "lora": {"r": 64, "alpha": 128, "targets": ["q_proj", "k_proj"], "dora": True, "rslora": True},
        "quant": {"bits": 4, "quant_type": "fp4", "double_quant": False, "compute_dtype": "float16"},
        "train": {"learning_rate": 5e-5, "epochs": 2, "batch_size": 2, "grad_accum": 8},
        "dpo": {"beta": 0.3, "loss_type": "ipo"},
    }).validate()
    again = load_config(save_config(cfg, tmp_path / "c.yaml"))
    assert again == cfg
    assert again.quant.quant_type == "fp4" and again.lora.dora and again.dpo.loss_type == "ipo"


def test_sections_that_do_not_apply_are_not_written():
    full = RunConfig.from_dict({"method": {"name": "full"}}).to_dict()
    assert "lora" not in full and "quant" not in full and "dpo" not in full
    lora = RunConfig.from_dict({"method": {"name": "lora"}}).to_dict()
    assert "lora" in lora and "quant" not in lora


@pytest.mark.parametrize("raw, message", [
    ({"method": {"name": "full"}, "quant": {"bits": 4}},
     "QLoRA applies to LoRA only: choose method lora or qlora, not full"),
    ({"lora": {"r": 0}}, "rank must be between 1 and 1024"),
    ({"lora": {"r": 2048}}, "rank must be between 1 and 1024"),
    ({"lora": {"alpha": -1}}, "alpha must be positive"),
    ({"lora": {"dropout": 1.5}}, "dropout"),
    ({"lora": {"targets": []}}, "at least one target module"),
    ({"method": {"name": "qlora"}, "quant": {"bits": 3}}, "4 or 8 bits"),
    ({"method": {"name": "qlora"}, "quant": {"quant_type": "int4"}}, "quant.quant_type must be one of"),
    ({"method": {"name": "partial"}}, "method.name must be one of full, lora, qlora"),
    ({"method": {"stage": "pretrain"}}, "method.stage must be one of"),
    ({"train": {"learning_rate": 0}}, "learning rate must be a positive number"),
    ({"train": {"learning_rate": float("nan")}}, "learning rate must be a positive number"),
    ({"train": {"batch_size": 0}}, "train.batch_size must be between 1 and"),
    ({"train": {"epochs": 0}}, "set epochs above 0 or max_steps above 0"),
    ({"train": {"warmup_ratio": 1.0}}, "warmup_ratio"),
    ({"data": {"max_length": 4}}, "data.max_length must be between"),
    ({"method": {"stage": "dpo"}, "dpo": {"beta": 0}}, "DPO beta must be positive"),
    ({"method": {"stage": "rlhf"}, "rl": {"num_generations": 1}}, "at least 2"),
    ({"train": {"batch_size": 1.0e29}}, r"train.batch_size must be between 1 and 1048576"),
    ({"train": {"seed": -1}}, "train.seed must be between 0"),
    ({"train": {"max_grad_norm": float("nan")}}, "train.max_grad_norm must be a number of at least 0"),
    ({"train": {"weight_decay": -1}}, "train.weight_decay must be a number of at least 0"),
    ({"train": {"epochs": float("inf"), "max_steps": 5}}, "train.epochs must be between 0 and 100000"),
    ({"train": {"num_processes": 100000}}, "train.num_processes must be between 1 and 1024"),
    ({"data": {"format": "csv"}}, "data.format must be one of messages, sharegpt"),
    ({"data": {"format": "alpaca", "map": {"question": "q"}}}, "data.map names question, which the alpaca format"),
    ({"data": {"map": ["instruction", "q"]}}, "data.map must be a mapping of field: column"),
    ({"data": {"map": {"prompt": True}}}, "data.map must be a mapping of field: column"),
])
def test_bad_settings_raise_a_readable_sentence(raw, message):
    with pytest.raises(ValueError, match=message):
        RunConfig.from_dict(raw).validate()


def test_unknown_keys_are_named_with_a_suggestion():
    with pytest.raises(ValueError, match=r"Unknown setting 'train.learning_rte' \(did you mean 'learning_rate'"):
        RunConfig.from_dict({"train": {"learning_rte": 1e-4}})
    with pytest.raises(ValueError, match=r"Unknown section 'lroa' \(did you mean 'lora'"):
        RunConfig.from_dict({"lroa": {}})


def test_a_mistake_in_set_is_blamed_on_set_and_one_in_the_file_on_the_file(tmp_path):
    with pytest.raises(ValueError, match=r"^--set train.max_stepz=2: Unknown setting 'train.max_stepz'"):
        load_config(PRESETS / "tiny-sft-lora.yaml", ["train.max_stepz=2"])
    bad = tmp_path / "bad.yaml"
    bad.write_text((PRESETS / "tiny-sft-lora.yaml").read_text().replace("max_steps:", "max_stepz:"))
    with pytest.raises(ValueError, match=r"bad.yaml: Unknown setting 'train.max_stepz'"):
        load_config(bad, ["train.learning_rate=0.001"])
    worse = tmp_path / "worse.yaml"  # the file has a problem, but the one raised first comes from --set
    worse.write_text((PRESETS / "tiny-sft-lora.yaml").read_text().replace("max_steps: 150", "max_steps: -1"))
    with pytest.raises(ValueError, match=r"^--set model.name=: "):
        load_config(worse, ["model.name="])
    with pytest.raises(ValueError, match=r"^--set data.system=\[1,2\]: data.system must be text"):  # only the bad one
        load_config(PRESETS / "tiny-sft-lora.yaml", ["train.max_steps=2", "data.system=[1,2]", "name=x"])


def test_wrong_types_name_the_setting():
    with pytest.raises(ValueError, match=r"lora.r must be a whole number \(got 'eight'\)"):
        RunConfig.from_dict({"lora": {"r": "eight"}})
    with pytest.raises(ValueError, match="train.batch_size must be a whole number"):
        RunConfig.from_dict({"train": {"batch_size": 2.5}})
    with pytest.raises(ValueError, match="must be a mapping"):
        RunConfig.from_dict({"train": [1, 2]})
    # a float setting written as an integer is fine
    assert RunConfig.from_dict({"lora": {"alpha": 16}}).lora.alpha == 16.0


def test_overrides_parse_values_as_yaml(tmp_path):
    raw = apply_overrides({}, ["train.learning_rate=1e-3", "lora.targets=[q_proj, o_proj]",
                              "method.name=full", "train.gradient_checkpointing=true"])
    cfg = RunConfig.from_dict(raw).validate()
    assert cfg.train.learning_rate == 1e-3
    assert cfg.lora.targets == ["q_proj", "o_proj"]
    assert cfg.method.name == "full" and cfg.train.gradient_checkpointing == "on"
    with pytest.raises(ValueError, match="section.key=value"):
        apply_overrides({}, ["nonsense"])


def test_load_config_names_the_file_for_bad_yaml(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  learning_rate: [1,\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.yaml is not valid YAML at line"):
        load_config(bad)
    missing = tmp_path / "none.yaml"
    with pytest.raises(ValueError, match="does not exist"):
        load_config(missing)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match="not UTF-8"):
        load_config(latin)
    wrong = tmp_path / "list.yaml"
    wrong.write_text(yaml.safe_dump([1, 2]), encoding="utf-8")
    with pytest.raises(ValueError, match="mapping of sections"):
        load_config(wrong)


def test_a_key_given_twice_is_refused_with_its_line(tmp_path):
    path = tmp_path / "twice.yaml"
    path.write_text("train:\n  learning_rate: 1.0e-4\n  batch_size: 2\n  learning_rate: 5.0e-4\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"'learning_rate' is given twice \(line 4\)"):
        load_config(path)


@pytest.mark.parametrize("item", ["train=", "train={}", "train.batch_size.x=1", ".x=1"])
def test_set_changes_one_setting_never_a_whole_section(item):
    with pytest.raises(ValueError, match="--set sets one setting"):
        apply_overrides({"train": {"batch_size": 2}}, [item])


def test_set_can_name_one_field_of_the_column_map():
    raw = apply_overrides({"data": {"map": {"prompt": "ask"}}}, ["data.map.completion=reply"])
    assert RunConfig.from_dict(raw).validate().data.map == {"prompt": "ask", "completion": "reply"}


def test_a_setting_given_by_yaml_references_is_refused_before_it_is_written_out():
    """A few hundred characters of YAML references stand for a list of billions of items: refused in one
    sentence, where quoting it in the type error once took minutes and gigabytes."""
    import time

    bomb = "[&a0 [x,x,x,x,x,x,x,x,x,x]" + "".join(f",&a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]"
                                                    for i in range(1, 9)) + "]"
    started = time.monotonic()
    for key in ("train.max_steps", "data.system", "rl.rewards"):
        with pytest.raises(ValueError, match=r"YAML references \(\*name\) are not read in a setting's value"):
            load_config(PRESETS / "tiny-sft-lora.yaml", [f"{key}={bomb}"])
    assert time.monotonic() - started < 5  # refused, not expanded
    with pytest.raises(ValueError, match="the value is 60,000 characters long; a setting takes at most 50,000"):
        load_config(PRESETS / "tiny-sft-lora.yaml", ["data.system=" + "x" * 60_000])
    long_list = "[" + ",".join(["[1, 2]"] * 500) + "]"
    with pytest.raises(ValueError) as err:
        load_config(PRESETS / "tiny-sft-lora.yaml", [f"train.max_steps={long_list}"])
    assert "must be a whole number (got a list)" in str(err.value) and len(str(err.value)) < 300
    # text that only looks like a reference stays text
    assert load_config(PRESETS / "tiny-sft-lora.yaml", ["data.system=*Bold* answers & short ones"]).data.system == \
        "*Bold* answers & short ones"
