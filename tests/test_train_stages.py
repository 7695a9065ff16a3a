"""Every stage trains the built-in tiny model for real, for a few steps, and writes the run folder."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
from helpers import PYTHON, ROOT, subprocess_env

from studio.config import load_config
from studio.paths import PRESETS
from studio.train.worker import run_training
from studio.workspace import Workspace

pytestmark = pytest.mark.slow
FAST = ["train.max_steps=3", "train.logging_steps=1", "train.batch_size=4", "train.save_steps=2"]


def train(tmp_path, preset, extra=()):
    ws = Workspace.open(tmp_path / "ws")
    cfg = load_config(PRESETS / preset, [*FAST, *extra])
    run_dir = ws.new_run_dir(preset.removesuffix(".yaml"))
    out = run_training(cfg, run_dir)
    return run_dir, out


def metrics(run_dir):
    return [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_sft_lora_writes_the_run_folder(tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    run_dir, out = train(tmp_path, "tiny-sft-lora.yaml")
    assert out == run_dir / "adapter"
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "completed" and status["step"] == 3
    logged = metrics(run_dir)
    assert [r["step"] for r in logged if "loss" in r][:3] == [1, 2, 3]
    assert all("learning_rate" in r for r in logged if "loss" in r)
    assert load_config(run_dir / "config.yaml").train.max_steps == 3
    assert (run_dir / "checkpoints" / "checkpoint-2").is_dir()
    base = AutoModelForCausalLM.from_pretrained(ROOT / "assets" / "tiny-model")
    model = PeftModel.from_pretrained(base, str(out))
    assert any("lora_A" in n for n, _ in model.named_parameters())


def test_sft_full_saves_a_model(tmp_path):
    run_dir, out = train(tmp_path, "tiny-sft-full.yaml")
    assert out == run_dir / "model" and (out / "config.json").exists()


def test_qlora_trains_4bit_on_cpu(tmp_path):
    import bitsandbytes as bnb

    from studio.methods import sft

    cfg = load_config(PRESETS / "tiny-sft-qlora.yaml", FAST)
    trainer = sft.build_trainer(cfg, tmp_path / "run", [])
    four_bit = [m for m in trainer.model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert len(four_bit) >= 7  # every targeted projection of every layer sits on a 4-bit base
    before = trainer.model.state_dict()
    lora_key = next(k for k in before if "lora_B" in k)
    start = before[lora_key].clone()
    trainer.train()
    assert not trainer.model.state_dict()[lora_key].equal(start)  # the adapter learned something


def test_reward_model_logs_accuracy(tmp_path):
    run_dir, out = train(tmp_path, "tiny-reward.yaml")
    assert (out / "adapter_config.json").exists()
    keys = set().union(*metrics(run_dir))
    assert "loss" in keys and any("accuracy" in k for k in keys)


def test_dpo_logs_reward_margins_and_chains_from_sft(tmp_path):
    sft_dir, _ = train(tmp_path, "tiny-sft-lora.yaml")
    run_dir, out = train(tmp_path, "tiny-dpo.yaml", [f"model.parent_run={sft_dir}"])
    keys = set().union(*metrics(run_dir))
    assert any("margins" in k for k in keys) and any("accuracies" in k for k in keys)
    assert load_config(run_dir / "config.yaml").model.parent_run == str(sft_dir)
    assert (run_dir / "parent-merged" / "config.json").exists()


def test_kto_trains_on_pairs_and_on_rated_answers_with_both_labels_in_a_batch(tmp_path):
    sft_dir, _ = train(tmp_path, "tiny-sft-lora.yaml")
    run_dir, out = train(tmp_path, "tiny-kto.yaml", [f"model.parent_run={sft_dir}"])
    assert (out / "adapter_config.json").exists()
    logged = set().union(*(r for r in metrics(run_dir) if "loss" in r))
    # pairs are split and shuffled (seeded): the first three batches of 4 hold good and bad answers
    assert {"rewards/chosen", "rewards/rejected", "kl"} <= logged
    rated = tmp_path / "ratings.jsonl"
    rows = [{"prompt": [{"role": "user", "content": f"Where is order {n}?"}],
             "completion": [{"role": "assistant", "content": "It ships tomorrow." if n % 2 else "Dunno."}],
             "label": bool(n % 2)} for n in range(8)]
    rated.write_text("".join(json.dumps(r) + "\n" for r in rows))
    run_dir, _ = train(tmp_path, "tiny-kto.yaml", [f"data.train={rated}", "data.eval_fraction=0"])
    assert any("rewards/margins" in r for r in metrics(run_dir))


def test_kto_refuses_data_with_one_label_only(tmp_path):
    from studio.errors import StudioError

    rated = tmp_path / "all-good.jsonl"
    rated.write_text("".join(json.dumps({"prompt": f"Q{n}?", "completion": "A.", "label": True}) + "\n"
                             for n in range(6)))
    with pytest.raises(StudioError, match="only answers marked good; KTO needs some of each"):
        train(tmp_path, "tiny-kto.yaml", [f"data.train={rated}", "data.eval_fraction=0"])


def test_cli_train_prints_run_and_folder(tmp_path):
    out = subprocess.run([PYTHON, "-m", "studio", "train", str(PRESETS / "tiny-sft-lora.yaml"), "--workspace",
                          str(tmp_path), *[a for s in FAST for a in ("--set", s)]], capture_output=True, text=True,
                         cwd=ROOT, env=subprocess_env(), timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert lines[0].startswith("run ") and lines[1].startswith("folder ") and lines[-1].startswith("saved ")
    assert "3/3" in out.stderr  # the progress bar


def test_nan_learning_rate_fails_with_a_reason(tmp_path):
    from studio.errors import StudioError

    with pytest.raises(StudioError, match="became nan at step"):
        train(tmp_path, "tiny-sft-lora.yaml", ["train.learning_rate=1e30", "train.max_steps=4"])
    run_dir = next((tmp_path / "ws" / "runs").iterdir())
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "failed"
    assert "lower the learning rate" in status["error"]
    assert not (run_dir / "adapter").exists()  # a broken model is not saved as the result


def test_unusable_rows_left_out_of_training_are_counted_and_explained(tmp_path):
    data = tmp_path / "mixed.jsonl"
    good = [{"messages": [{"role": "user", "content": f"Where is order {n}?"},
                          {"role": "assistant", "content": "It ships tomorrow."}]} for n in range(8)]
    bad = [{"messages": [{"role": "user", "content": "Hello?"}, {"role": "assistant", "content": ""}]}] * 3
    data.write_text("".join(json.dumps(r) + "\n" for r in good + bad))
    out = subprocess.run([PYTHON, "-m", "studio", "train", str(PRESETS / "tiny-sft-lora.yaml"), "--workspace",
                          str(tmp_path / "ws"), "--quiet", "--set", f"data.train={data}", "--set", "train.max_steps=1"],
                         capture_output=True, text=True, cwd=ROOT, env=subprocess_env(), timeout=300)
    assert out.returncode == 0, out.stderr
    assert "note: mixed.jsonl: 3 of 11 rows left out" in out.stdout and "line 9" in out.stdout
    assert re.search(r"^done: 1/1 steps in .+, last training loss \d", out.stdout, re.M), out.stdout
    run_dir = next((tmp_path / "ws" / "runs").iterdir())
    note = json.loads((run_dir / "status.json").read_text())["data_note"]
    assert note.startswith("mixed.jsonl: 3 of 11 rows left out")


def test_a_reward_model_trains_on_the_ranked_answers_of_message_trees(tmp_path):
    """OpenAssistant's trees: SFT reads one thread a tree, a reward model the pairs their ranks give."""
    import os

    from studio.data.load import load_records

    trees = os.path.join(ROOT, "tests", "assets", "data", "oasst2_trees.jsonl")
    pairs, _ = load_records(trees, ("preference",))
    assert len(pairs) == 3 and {p["rejected"][0]["content"] for p in pairs} == {
        "It compiles.", "It cooks food.", "It is a kind of compiler."}
    run_dir, out = train(tmp_path, "tiny-reward.yaml", [f"data.train={trees}", f"data.eval={trees}"])
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "completed"
    assert status["data_note"].startswith("oasst2_trees.jsonl: 3 preference pairs from the ranked answers in 3 "
                                          "trees")  # what became of the file is said with the run
    assert "left out: trees in state aborted_low_grade: 1." in status["data_note"]
    assert status["data_note"].count("preference pairs") == 1  # the eval file is the same one: said once
    assert any("accuracy" in k for k in set().union(*metrics(run_dir)))


def test_dpo_trains_on_chatbot_arena_battles_with_the_ties_left_out(tmp_path):
    """Two answers and a verdict: the winner is chosen; ties teach nothing and are counted, not trained."""
    import os

    arena = os.path.join(ROOT, "tests", "assets", "data", "chatbot_arena.jsonl")
    run_dir, out = train(tmp_path, "tiny-dpo.yaml", [f"data.train={arena}", "train.eval_steps=0"])
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "completed"
    assert status["data_note"].startswith("chatbot_arena.jsonl: 2 of 4 rows left out"), status["data_note"]
    assert "tie" in status["data_note"]
    assert any("margins" in k for k in set().union(*metrics(run_dir)))
