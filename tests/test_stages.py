"""Each stage is declared once in studio.stages, and every part of the studio reads that declaration."""

from __future__ import annotations

import inspect
import subprocess

import pytest
from helpers import PYTHON, ROOT, subprocess_env

from studio.chat.export import export_folder
from studio.cli import build_parser
from studio.config import RunConfig, load_config
from studio.config_form import config_with
from studio.data.formats import SPECS
from studio.errors import StudioError
from studio.models.counting import model_shapes
from studio.models.estimate import estimate_run
from studio.models.memory import TrainingSetup
from studio.paths import PRESETS
from studio.stages import STAGES, available_stages, stage
from studio.train import runner
from studio.train.runs import finished_runs
from studio.train.status import RunState, update_status
from studio.workspace import Workspace


@pytest.mark.parametrize("declared", available_stages(), ids=lambda s: s.name)
def test_every_available_stage_has_a_trainer_a_preset_and_data_it_reads(declared):
    module = declared.trainer_module()
    assert inspect.signature(module.build_trainer).parameters.keys() == {"cfg", "run_dir", "callbacks"}
    presets = [load_config(p) for p in PRESETS.glob("tiny-*.yaml")]
    assert any(c.method.stage == declared.name for c in presets), f"no tiny preset for {declared.name}"
    assert declared.data_kinds and set(declared.data_kinds) <= {spec.kind for spec in SPECS.values()}
    assert declared.card.startswith(f"**{declared.label}")


def test_a_declared_stage_without_a_module_cannot_start(tmp_path, monkeypatch):
    from studio.stages import Stage

    later = Stage(name="sft", label="Later", card="**Later** — declared, not built yet.", data_kinds=("sft",))
    monkeypatch.setitem(STAGES, "sft", later)  # every shipped stage trains; pretend one does not yet
    cfg = RunConfig.from_dict({"method": {"stage": "sft"}}).validate()  # it can be estimated ...
    with pytest.raises(StudioError, match="The Later stage cannot train yet"):
        runner.start_run(Workspace.open(tmp_path), cfg)  # ... but not started, and no run folder is left
    assert not list((tmp_path / "runs").iterdir())
    assert all(s.available for s in STAGES.values() if s is not later)


def test_the_cli_offers_the_declared_stages():
    count = next(a for a in build_parser()._subparsers._group_actions[0].choices["count"]._actions
                 if a.dest == "stage")
    assert list(count.choices) == list(STAGES)


def test_traits_drive_counting_and_memory():
    assert model_shapes("tiny", stage="reward").head == "score" and model_shapes("tiny", stage="sft").head == "lm"

    def memory(stage_name, method="full"):
        cfg = config_with({}, {"model.name": "meta-llama/Llama-2-7b-hf", "method.name": method,
                               "method.stage": stage_name})
        return estimate_run(cfg, TrainingSetup(), gpu=None).memory

    sft, dpo, rlhf = memory("sft"), memory("dpo"), memory("rlhf")
    base = model_shapes("meta-llama/Llama-2-7b-hf").base
    assert dpo.weights - sft.weights == 2 * base  # a frozen 16-bit reference copy
    assert rlhf.weights - sft.weights == 4 * base  # the reference and a reward model
    assert memory("dpo", "lora").weights == memory("sft", "lora").weights  # LoRA switches the adapter off
    assert dpo.activations > sft.activations  # chosen and rejected halves


@pytest.mark.parametrize("raw, sentence", [
    ({"method": {"stage": "sft"}, "dpo": {"beta": 0.2}}, "The dpo section applies to the dpo stage only, not sft"),
    ({"method": {"stage": "dpo"}, "rl": {"kl_coef": 0.1}}, "The rl section applies to the rlhf and ppo stages"),
    ({"method": {"name": "lora"}, "quant": {"bits": 4}}, "The quant section applies to QLoRA only"),
])
def test_a_section_that_does_not_apply_is_refused(raw, sentence):
    with pytest.raises(ValueError, match=sentence):
        RunConfig.from_dict(raw)


def test_lora_settings_under_full_fine_tuning_are_kept_aside():
    cfg = RunConfig.from_dict({"method": {"name": "full"}, "lora": {"r": 4}}).validate()
    assert "lora" not in cfg.to_dict()


def test_the_form_and_the_cli_convert_values_the_same_way(tmp_path):
    with pytest.raises(ValueError, match=r"train.batch_size must be a whole number \(got 2.5\)"):
        config_with({}, {"train.batch_size": 2.5})
    assert config_with({}, {"train.batch_size": 4.0, "data.eval": "  "}).train.batch_size == 4
    out = subprocess.run([PYTHON, "-m", "studio", "train", str(PRESETS / "tiny-sft-lora.yaml"), "--workspace",
                          str(tmp_path), "--set", "train.batch_size=2.5"], capture_output=True, text=True,
                         cwd=ROOT, env=subprocess_env(), timeout=120)
    assert out.returncode == 1 and "train.batch_size must be a whole number (got 2.5)" in out.stderr


def test_runs_of_stages_that_do_not_write_answers_are_not_offered_for_chat(tmp_path):
    ws = Workspace.open(tmp_path)
    for name in ("sft", "reward", "dpo"):
        run_dir = ws.new_run_dir(name)
        (run_dir / "config.yaml").write_text(f"method: {{stage: {name}}}\n")
        update_status(run_dir, state=RunState.COMPLETED, stage=name)
    chat = {r.rsplit("-", 1)[-1] for r in finished_runs(ws, chat_models=True)}
    assert chat == {s for s in ("sft", "reward", "dpo") if stage(s).chat} == {"sft", "dpo"}
    assert len(finished_runs(ws)) == 3


@pytest.mark.parametrize("name", ["../outside", "a/b", ".hidden", "..", "x\\y"])
def test_export_folder_names_stay_inside_exports(tmp_path, name):
    ws = Workspace.open(tmp_path)
    with pytest.raises(StudioError, match="plain name inside exports/"):
        export_folder(ws, "run-1", name, merged=True)


def test_export_folder_defaults_to_the_run_and_kind(tmp_path):
    ws = Workspace.open(tmp_path)
    assert export_folder(ws, "run-1", "", merged=True) == ws.exports / "run-1-merged"
    assert export_folder(ws, "run-1", " mine ", merged=False) == ws.exports / "mine"
    with pytest.raises(StudioError, match="The folder name is 300 bytes long; use at most 200"):
        export_folder(ws, "run-1", "x" * 300, merged=True)  # the file system's limit is 255: one sentence before it


def test_product_rules_live_outside_the_ui():
    """Core never imports gradio; the tabs hold no copy of the stage list or the sides rule."""
    for path in (ROOT / "studio").rglob("*.py"):
        source = path.read_text()
        if "ui" not in path.relative_to(ROOT / "studio").parts:
            assert "import gradio" not in source and "from gradio" not in source, path
        else:
            assert '"rlhf"' not in source and "'rlhf'" not in source and "flipped" not in source, path


def test_a_run_may_not_ask_for_more_processes_than_the_machine_has(tmp_path):
    most, what = runner.device_count()
    cfg = load_config(PRESETS / "tiny-sft-lora.yaml", [f"train.num_processes={most + 1}"])
    with pytest.raises(StudioError, match=f"this machine has {most} {what}: use at most {most}"):
        runner.start_run(Workspace.open(tmp_path), cfg)
    assert not list((tmp_path / "runs").iterdir())
