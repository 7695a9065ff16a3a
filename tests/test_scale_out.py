"""Several processes: the shipped accelerate configs, the strategy checks before launch, the memory
estimate per GPU, and QLoRA weights stored so that they can be sharded."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.config import RunConfig
from studio.errors import StudioError
from studio.methods.common import quantization_config
from studio.models.memory import TrainingSetup
from studio.paths import PRESETS
from studio.train import runner


def config(**train):
    raw = {"model": {"name": "tiny"}, "data": {"train": "assets/data/support_sft.jsonl"}, "train": train}
    return RunConfig.from_dict(raw).validate()


@pytest.mark.parametrize("name, kind", [("ddp", "MULTI_GPU"), ("fsdp", "FSDP"), ("zero2", "DEEPSPEED"),
                                        ("zero3", "DEEPSPEED"), ("multi-node", "FSDP")])
def test_shipped_accelerate_configs_read_as_accelerate_reads_them(name, kind):
    from accelerate.commands.config.config_args import load_config_from_file

    loaded = load_config_from_file(str(PRESETS / "accelerate" / f"{name}.yaml"))
    assert str(loaded.distributed_type.value) == kind
    assert loaded.mixed_precision == "no"  # the run's own precision setting decides
    if kind == "DEEPSPEED":
        assert loaded.deepspeed_config["zero_stage"] == int(name[-1])
    if kind == "FSDP":
        assert loaded.fsdp_config["fsdp_sharding_strategy"] == "FULL_SHARD"


def test_each_strategy_launches_with_its_file():
    assert runner.launch_config(config(num_processes=2)) is None  # plain DDP: accelerate's flags suffice
    assert runner.launch_config(config(num_processes=1)) is None
    fsdp = runner.launch_config(config(num_processes=2, strategy="fsdp"))
    assert Path(fsdp) == PRESETS / "accelerate" / "fsdp.yaml"
    own = runner.launch_config(config(num_processes=4, strategy="zero3", accelerate_config="/etc/mine.yaml"))
    assert own == "/etc/mine.yaml"
    cmd = runner.worker_command(Path("c.yaml"), Path("run"), type("W", (), {"root": Path("ws")})(),
                                num_processes=2, accelerate_config=fsdp)
    assert cmd[cmd.index("--config_file") + 1] == fsdp and cmd[cmd.index("--num_processes") + 1] == "2"


def test_sharding_needs_several_processes():
    with pytest.raises(ValueError, match="train.strategy fsdp shards the model across processes"):
        config(strategy="fsdp")


def test_strategies_that_cannot_run_here_are_refused_before_launch(monkeypatch):
    with pytest.raises(StudioError, match="fsdp shards across GPUs"):
        runner.check_strategy(config(num_processes=2, strategy="fsdp"), gpus=0)
    runner.check_strategy(config(num_processes=2, strategy="fsdp"), gpus=2)
    monkeypatch.setattr("studio.train.speed.installed", lambda module: module != "deepspeed")
    with pytest.raises(StudioError, match="pip install deepspeed"):
        runner.check_strategy(config(num_processes=2, strategy="zero3"), gpus=2)
    monkeypatch.setattr("studio.train.speed.installed", lambda module: True)
    with pytest.raises(StudioError, match="needs NVIDIA GPUs"):
        runner.check_strategy(config(num_processes=2, strategy="zero2"), gpus=0)
    runner.check_strategy(config(num_processes=2, strategy="zero2"), gpus=2)


def test_preflight_on_this_machine_refuses_fsdp_without_gpus(monkeypatch):
    monkeypatch.setattr(runner, "device_count", lambda: (2, "CPU cores and no GPU"))
    monkeypatch.setattr("studio.models.memory.detect_gpu", lambda: None)
    with pytest.raises(StudioError, match="choose ddp"):
        runner.preflight(config(num_processes=2, strategy="fsdp"))


@pytest.mark.parametrize("strategy, split", [("ddp", ()), ("zero2", ("gradients", "optimizer")),
                                             ("fsdp", ("weights", "gradients", "optimizer")),
                                             ("zero3", ("weights", "gradients", "optimizer"))])
def test_the_estimate_is_per_gpu_for_each_strategy(strategy, split):
    from studio.config_form import config_from_form
    from studio.models.estimate import estimate_run

    cfg = config_from_form({}, {"model.name": "assets/model-configs/llama-2-7b", "method.name": "full"})
    one = estimate_run(cfg, TrainingSetup(), gpu=None).memory
    four = estimate_run(cfg, TrainingSetup(processes=4, strategy=strategy), gpu=None).memory
    for part in ("weights", "gradients", "optimizer"):
        assert getattr(four, part) == (getattr(one, part) // 4 if part in split else getattr(one, part))
    assert four.activations == one.activations


def test_bad_strategy_in_the_estimate_is_one_sentence():
    with pytest.raises(ValueError, match="strategy must be one of"):
        TrainingSetup(strategy="zero9").check()


def test_qlora_weights_are_stored_as_bf16_bytes_when_sharded():
    import torch

    raw = {"model": {"name": "tiny"}, "method": {"name": "qlora"}, "data": {"train": "assets/data/support_sft.jsonl"}}
    alone = quantization_config(RunConfig.from_dict(raw).validate())
    sharded = quantization_config(RunConfig.from_dict({**raw, "train": {"num_processes": 2, "strategy": "fsdp"}}))
    assert alone.bnb_4bit_quant_storage == torch.uint8
    assert sharded.bnb_4bit_quant_storage == torch.bfloat16


def test_an_accelerate_config_of_ones_own_that_needs_gpus_is_refused_on_a_machine_without(tmp_path):
    shipped = PRESETS / "accelerate" / "multi-node.yaml"  # the documented two-machine file, as shipped
    with pytest.raises(StudioError, match="multi-node.yaml runs on GPUs .use_cpu is not true in it., and this "
                                          "machine has none"):
        runner.check_strategy(config(num_processes=16, accelerate_config=str(shipped)), gpus=0)
    runner.check_strategy(config(num_processes=16, accelerate_config=str(shipped)), gpus=8)
    on_cpu = tmp_path / "cpu.yaml"
    on_cpu.write_text("distributed_type: MULTI_CPU\nuse_cpu: true\nnum_machines: 2\n")
    runner.check_strategy(config(num_processes=4, accelerate_config=str(on_cpu)), gpus=0)
    for bad, said in ((tmp_path / "none.yaml", "cannot be read"), (on_cpu.with_name("list.yaml"), "is not an")):
        if bad.name == "list.yaml":
            bad.write_text("- a\n- b\n")
        with pytest.raises(StudioError, match=said):
            runner.check_strategy(config(num_processes=4, accelerate_config=str(bad)), gpus=0)
