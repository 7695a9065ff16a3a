"""The speed section: what `auto` picks on a CPU and on a GPU, what is refused, and that a real run
trains with the picks and writes them into its config.yaml."""

from __future__ import annotations

import json

import pytest

from studio.config import RunConfig, load_config
from studio.errors import StudioError
from studio.paths import PRESETS
from studio.train import speed
from studio.train.worker import run_training
from studio.workspace import Workspace


def config(**sections):
    raw = {"model": {"name": "tiny"}, "data": {"train": "assets/data/support_sft.jsonl"}, **sections}
    return RunConfig.from_dict(raw).validate()


def test_auto_on_the_cpu_keeps_the_plain_path():
    chosen = speed.resolve(config(), "fp32", cuda=False)
    assert (chosen.attention, chosen.batching, chosen.liger, chosen.fused_optimizer) == ("sdpa", "padded", False, True)
    assert chosen.workers == 0 and chosen.gradient_checkpointing is False
    assert chosen.model_arguments() == {}  # transformers' own default (sdpa, or eager where unsupported)
    args = chosen.training_arguments("sft")
    assert args["optim"] == "adamw_torch_fused" and args["gradient_checkpointing"] is False
    off = speed.resolve(config(speed={"fused_optimizer": "off"}), "fp32", cuda=False)
    assert off.training_arguments("sft")["optim"] == "adamw_torch"
    assert "packing" not in args and "train_sampling_strategy" not in args


def test_auto_on_a_gpu_batches_by_length_and_fuses_adamw():
    chosen = speed.resolve(config(), "bf16", cuda=True)
    expected_attention = "flash_attention_2" if speed.installed("flash_attn") else "sdpa"
    assert chosen.attention == expected_attention
    assert chosen.batching == ("padding_free" if expected_attention == "flash_attention_2" else "by_length")
    assert chosen.fused_optimizer and chosen.workers == 2
    assert chosen.liger == speed.installed("liger_kernel")
    args = chosen.training_arguments("sft")
    assert args["optim"] == "adamw_torch_fused"
    assert args.get("train_sampling_strategy") == "group_by_length" or args.get("group_by_length") is True


def test_batching_and_liger_stay_with_sft():
    dpo = {"method": {"name": "lora", "stage": "dpo"}, "data": {"train": "assets/data/support_prefs.jsonl"}}
    assert speed.resolve(config(**dpo), "bf16", cuda=True).batching == "padded"
    with pytest.raises(StudioError, match="speed.batching by_length applies to SFT"):
        speed.resolve(config(**dpo, speed={"batching": "by_length"}), "bf16", cuda=True)


@pytest.mark.parametrize("section, needs", [({"attention": "flash_attention_2"}, "flash-attn"),
                                            ({"liger": "on"}, "liger-kernel")])
def test_a_kernel_that_is_not_installed_is_refused_by_name(section, needs, monkeypatch):
    monkeypatch.setattr(speed, "installed", lambda module: False)
    with pytest.raises(StudioError, match=needs):
        speed.resolve(config(speed=section), "bf16", cuda=True)


def test_switches_read_yaml_booleans_and_refuse_nonsense(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("model: {name: tiny}\ndata: {train: assets/data/support_sft.jsonl}\n"
                    "train: {gradient_checkpointing: true}\nspeed: {liger: off, fused_optimizer: yes}\n")
    cfg = load_config(path)
    assert (cfg.train.gradient_checkpointing, cfg.speed.liger, cfg.speed.fused_optimizer) == ("on", "off", "on")
    assert speed.resolve(cfg, "fp32", cuda=False).gradient_checkpointing is True
    for key, value, said in (("speed.batching", "packed", "speed.batching must be one of"),
                             ("speed.workers", "-2", "speed.workers must be between"),
                             ("speed.pad_to_multiple", "-8", "speed.pad_to_multiple must be between"),
                             ("train.gradient_checkpointing", "sometimes", "train.gradient_checkpointing must be")):
        with pytest.raises(ValueError, match=said):
            load_config(path, [f"{key}={value}"])


@pytest.mark.slow
@pytest.mark.parametrize("batching", ["by_length", "padding_free"])
def test_a_run_trains_with_its_batching_and_records_the_picks(tmp_path, batching, capsys):
    from transformers.trainer_pt_utils import LengthGroupedSampler

    from studio.methods import sft

    ws = Workspace.open(tmp_path / "ws")
    cfg = load_config(PRESETS / "tiny-sft-lora.yaml", ["train.max_steps=2", "train.logging_steps=1",
                                                       "train.batch_size=4", f"speed.batching={batching}",
                                                       "speed.fused_optimizer=on", "data.eval=null",
                                                       "train.precision=auto"])
    run_dir = ws.new_run_dir("speed")
    trainer = sft.build_trainer(cfg, run_dir, [])
    if batching == "by_length":
        assert isinstance(trainer._get_train_sampler(), LengthGroupedSampler)
    else:  # rows packed end to end: one row of the batch holds several examples, no padding
        batch = next(iter(trainer.get_train_dataloader()))
        assert batch["input_ids"].shape[0] == 1 and (batch["position_ids"] == 0).sum() > 1
    del trainer
    capsys.readouterr()
    run_training(cfg, run_dir)
    said = capsys.readouterr().out
    assert f"speed: precision fp32, attention sdpa, batching {batching}" in said
    # padding-free asked for on a CPU is said to be slower there (measured: about half the tokens/s of padded)
    assert ("about half as fast as padded ones on a CPU" in said) == (batching == "padding_free")
    recorded = load_config(run_dir / "config.yaml")
    assert recorded.speed.batching == batching and recorded.speed.fused_optimizer == "on"
    assert recorded.speed.attention == "sdpa" and recorded.train.gradient_checkpointing == "off"
    assert cfg.train.precision == "auto" and recorded.train.precision == "fp32"  # as this CPU machine resolved it
    losses = [json.loads(x)["loss"] for x in (run_dir / "metrics.jsonl").read_text().splitlines()
              if "loss" in json.loads(x)]
    assert len(losses) == 2 and all(loss > 0 for loss in losses)


@pytest.mark.parametrize("stage, data", [("sft", "support_sft.jsonl"), ("dpo", "support_prefs.jsonl")])
def test_batches_padded_to_a_multiple(tmp_path, stage, data):
    from studio.stages import stage as declared

    cfg = load_config(PRESETS / "tiny-sft-lora.yaml", [f"method.stage={stage}", f"data.train=assets/data/{data}",
                                                       "data.eval=null", "train.batch_size=4"])
    build = declared(stage).trainer_module().build_trainer
    plain = next(iter(build(cfg, tmp_path / "plain", []).get_train_dataloader()))
    cfg.speed.pad_to_multiple = 48
    padded = next(iter(build(cfg, tmp_path / "padded", []).get_train_dataloader()))
    plain, padded = plain["input_ids"].shape[1], padded["input_ids"].shape[1]  # DPO: chosen and rejected rows
    assert plain % 48 != 0  # the batch's longest row decides without the setting
    assert padded % 48 == 0 and 0 < padded - plain < 48
    assert speed.record(cfg, speed.resolve(cfg, "fp32", cuda=False)).speed.pad_to_multiple == 48


@pytest.mark.parametrize("preset, setting, said", [
    ("tiny-grpo.yaml", "speed.pad_to_multiple=64", "speed.pad_to_multiple applies to sft, reward, dpo, kto, not rlhf"),
    ("tiny-dpo.yaml", "speed.batching=by_length", "speed.batching by_length applies to SFT"),
    ("tiny-sft-lora.yaml", "speed.attention=flash_attention_2", "needs a GPU and the flash-attn package"),
    ("tiny-sft-lora.yaml", "speed.pad_to_multiple=256", r"speed.pad_to_multiple \(256\) is more than data.max_length \(192\)")])
def test_a_speed_choice_that_cannot_work_is_refused_before_a_run_folder_exists(tmp_path, preset, setting, said):
    from studio.train.runner import start_run

    ws = Workspace.open(tmp_path / "ws")
    with pytest.raises(StudioError, match=said):
        start_run(ws, load_config(PRESETS / preset, [setting]))
    assert not any((ws.root / "runs").iterdir())


@pytest.mark.parametrize("env, torch_first, processes, spin", [
    ({}, False, 1, "default"),  # a lone training process: the OpenMP runtime's own waiting
    ({}, False, 2, "1000"),  # several on one machine: the short spin, or they spin against each other
    ({}, True, 1, "1000"),  # torch loaded after the studio, with the short spin: too late to change it
    ({"GOMP_SPINCOUNT": "7"}, False, 1, "7"),  # the user's value stays
])
def test_the_openmp_spin_of_a_training_process(env, torch_first, processes, spin):
    import os
    import subprocess
    import sys

    code = "\n".join(["import os, studio", "import torch" if torch_first else "",
                      f"print(studio.spin_for_training({processes}), os.environ.get('GOMP_SPINCOUNT', 'default'),"
                      " studio.child_environment().get('GOMP_SPINCOUNT', 'unset'))"])
    clean = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "KMP_BLOCKTIME")}
    out = subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[:2] == [spin, spin]
    assert out[2] == env.get("GOMP_SPINCOUNT", "unset")  # a child chooses its own unless the user set one


def test_the_checkpointing_estimate_counts_the_padding_up_to_a_multiple(monkeypatch):
    from studio.models import memory

    monkeypatch.setattr(memory, "detect_gpu", lambda: memory.GpuInfo("a card of 64 MiB", 64 * 2**20, 1))
    shares = {}
    for multiple in (0, 128):  # max_length 200: batches up to 200 tokens, or up to 256
        cfg = config(data={"train": "assets/data/support_sft.jsonl", "max_length": 200},
                     speed={"pad_to_multiple": multiple, "liger": "off"})
        why = speed.resolve(cfg, "bf16", cuda=True).why_checkpointing
        shares[multiple] = int(why.rsplit("is ", 1)[1].split("%")[0])
    assert 0 < shares[0] < shares[128]


def _quantised_copy_of_tiny(folder):
    """The tiny model's files with a bitsandbytes quantization_config in config.json, as a model saved
    quantised (an "-bnb-4bit" upload, say) carries."""
    import shutil

    from studio.paths import TINY_MODEL

    shutil.copytree(TINY_MODEL, folder)
    settings = json.loads((folder / "config.json").read_text())
    settings["quantization_config"] = {"quant_method": "bitsandbytes", "load_in_4bit": True}
    (folder / "config.json").write_text(json.dumps(settings))
    return str(folder)


@pytest.mark.parametrize("case, left_out", [("lora", True), ("full", True), ("qlora", False),
                                            ("saved quantised", False), ("scored by a reward model", False),
                                            ("scored by rules", True), ("a hub id", False)])
def test_a_run_that_cannot_need_bitsandbytes_starts_without_it(case, left_out, tmp_path):
    """PEFT imports bitsandbytes whenever it is installed (over a second of each run's start on a small
    CPU); a run that cannot need it leaves it out and still builds its adapters with PEFT."""
    import subprocess
    import sys

    raw = {"model": {"name": "tiny"}, "method": {"name": "lora"}}
    if case in ("full", "qlora"):
        raw["method"]["name"] = case
    elif case == "saved quantised":
        raw["model"]["name"] = _quantised_copy_of_tiny(tmp_path / "tiny-bnb-4bit")
    elif case.startswith("scored by"):
        raw["method"]["stage"] = "rlhf"
        raw["rl"] = {"rewards": ["overlap", "model"] if case.endswith("model") else ["overlap", "length"]}
    elif case == "a hub id":
        raw["model"]["name"] = "someone/a-model-saved-in-4-bit"
    code = "\n".join([
        "import sys",
        "from studio.config import RunConfig",
        "from studio.train.worker import leave_out_bitsandbytes",
        f"cfg = RunConfig.from_dict({raw!r})",
        "print(leave_out_bitsandbytes(cfg))",
        f"if {case == 'lora'}:",
        "    import peft, transformers",
        "    from studio.models.loading import resolve_model",
        "    model = transformers.AutoModelForCausalLM.from_pretrained(resolve_model('tiny'))",
        "    model = peft.get_peft_model(model, peft.LoraConfig(r=4, target_modules=['q_proj', 'v_proj']))",
        "    print(sum(p.numel() for p in model.parameters() if p.requires_grad) > 0)",
        "print(sys.modules.get('bitsandbytes', 'absent') is not None)",
    ])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == str(left_out)
    assert out[-1] == str(not left_out)  # otherwise nothing is left out: it loads when the model needs it
    if case == "lora":  # PEFT built the adapters without it
        assert len(out) == 3 and out[1] == "True"


@pytest.mark.parametrize("case, left_out", [("a LoRA run", True), ("the built-in model", True),
                                            ("a run on a base saved quantised", False), ("a hub id", False),
                                            ("a run whose config cannot be read", False),
                                            ("a LoRA run beside a hub id", False)])
def test_loading_for_chat_in_a_process_of_its_own_leaves_out_bitsandbytes_only_when_nothing_needs_it(
        case, left_out, house_sft_run, tmp_path):
    """Evaluation, export, serving and pair making load models for chat in a process of their own: with
    nothing saved quantised among what they load, they start without bitsandbytes, and a LoRA run's
    adapter still merges through PEFT and answers."""
    import subprocess
    import sys

    import yaml
    from helpers import copy_run

    ws = Workspace.open(tmp_path / "ws")
    run = copy_run(house_sft_run, ws).name
    targets = {"a LoRA run": [run], "the built-in model": ["tiny"], "a run on a base saved quantised": [run],
               "a hub id": ["someone/a-model-saved-in-4-bit"], "a run whose config cannot be read": [run],
               "a LoRA run beside a hub id": [run, "someone/a-model"]}[case]
    config_file = ws.runs / run / "config.yaml"
    if case == "a run on a base saved quantised":
        raw = yaml.safe_load(config_file.read_text())
        raw["model"]["name"] = _quantised_copy_of_tiny(tmp_path / "tiny-bnb-4bit")
        config_file.write_text(yaml.safe_dump(raw))
    elif case == "a run whose config cannot be read":
        config_file.write_text("model: [unclosed\n")
    code = "\n".join([
        "import sys",
        "from studio.chat.engine import leave_out_bitsandbytes, load_for_chat",
        "from studio.workspace import Workspace",
        f"ws = Workspace.open({str(ws.root)!r})",
        f"print(leave_out_bitsandbytes({targets!r}, ws))",
        f"if {case == 'a LoRA run'}:",
        f"    loaded = load_for_chat({run!r}, ws)",
        "    print(type(loaded.model).__name__, 'peft' in sys.modules)",
        "print(sys.modules.get('bitsandbytes', 'absent') is not None)",
    ])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == str(left_out)
    assert out[-1] == str(not left_out)
    if case == "a LoRA run":  # PEFT merged the adapter into a plain model without it
        assert out[1:3] == ["LlamaForCausalLM", "True"], out
