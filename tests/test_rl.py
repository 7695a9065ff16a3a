"""RLHF on the tiny model, trained for real: GRPO with a rule reward and PPO with the demo reward model raise
the mean reward on held-out prompts over the SFT policy they start from, with the KL kept bounded; PPO goes
on from a checkpoint. Short runs show the direction; bench/rl_policy.py records the full figures."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from helpers import ROOT

from studio.chat.engine import load_for_chat
from studio.config import load_config
from studio.data.load import load_records
from studio.methods import rl_common
from studio.methods.answers import answer_matches
from studio.paths import PRESETS
from studio.train.runner import resolve_inputs
from studio.train.worker import run_training
from studio.workspace import Workspace

pytestmark = pytest.mark.slow
QUICK = ["train.save_steps=1000", "data.eval_fraction=0"]


@pytest.fixture(scope="module")
def start(tmp_path_factory):
    """A workspace with a short SFT run (room left to improve) and a reward model on the demo pairs."""
    ws = Workspace.open(tmp_path_factory.mktemp("rl") / "ws")
    sft = ws.new_run_dir("sft")
    run_training(load_config(PRESETS / "tiny-sft-lora.yaml", ["train.max_steps=30", *QUICK]), sft)
    reward = ws.new_run_dir("reward")
    run_training(load_config(PRESETS / "tiny-reward.yaml", ["train.max_steps=40", *QUICK]), reward)
    records, _ = load_records(str(ROOT / "assets" / "data" / "support_eval.jsonl"), ("sft",))
    return ws, sft, reward, rl_common.prompt_rows(records)[:32]


def held_out(ws, run, rows, funcs):
    loaded = load_for_chat(run, ws)
    return rl_common.mean_reward(loaded.model, loaded.tokenizer, rows, funcs, max_new_tokens=48)["total"]


def train_rl(ws, preset, overrides):
    cfg = resolve_inputs(load_config(PRESETS / preset, [*QUICK, *overrides]), ws)
    run_dir = ws.new_run_dir(preset.removesuffix(".yaml"))
    run_training(cfg, run_dir)
    logs = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return run_dir, [r for r in logs if "kl" in r]


def test_grpo_with_a_rule_reward_raises_the_held_out_reward(start):
    ws, sft, _, rows = start
    funcs = rl_common.reward_functions(load_config(PRESETS / "tiny-grpo.yaml"))
    before = held_out(ws, sft.name, rows, funcs)
    run_dir, logs = train_rl(ws, "tiny-grpo.yaml", [f"model.parent_run={sft.name}", "train.max_steps=24",
                                                    "train.logging_steps=4"])
    after = held_out(ws, run_dir.name, rows, funcs)
    assert after > before, (before, after)
    assert max(r["kl"] for r in logs) < 2.0 and {"reward", "entropy", "rewards/overlap/mean"} <= set(logs[-1])
    samples = rl_common.read_samples(run_dir)
    assert samples and {"step", "prompt", "answer", "rewards"} <= set(samples[0])
    assert set(samples[0]["rewards"]) == {"overlap"}


def test_ppo_with_the_reward_model_raises_the_held_out_reward_and_resumes(start):
    ws, sft, reward, rows = start
    run_dir, logs = train_rl(ws, "tiny-ppo.yaml", [f"model.parent_run={sft.name}", "train.max_steps=24",
                                                   "train.logging_steps=4", "train.save_steps=12"])
    used = load_config(run_dir / "config.yaml")
    assert used.rl.reward_model == str(reward)  # 'latest' is written down as the run it took
    funcs = rl_common.reward_functions(used)
    before, after = held_out(ws, sft.name, rows, funcs), held_out(ws, run_dir.name, rows, funcs)
    assert after > before, (before, after)
    assert max(r["kl"] for r in logs) < 2.0
    assert {"value_loss", "policy_loss", "clipfrac", "entropy", "kl_coef", "rewards/model/mean"} <= set(logs[-1])

    # from the step-12 checkpoint, a resumed trainer goes on at step 13 with its optimiser and KL coefficient
    from studio.methods.ppo import build_trainer

    trainer = build_trainer(used, run_dir, [])
    trainer.max_steps = trainer.state.max_steps = 13
    trainer.train(resume_from_checkpoint=str(run_dir / "checkpoints" / "checkpoint-12"))
    assert trainer.state.global_step == 13 and trainer.state.log_history[-1]["step"] == 13
    assert trainer.optimizer.state_dict()["state"]  # the saved moments came back


def test_a_reward_written_in_code_scores_the_answers_the_policy_wrote(tmp_path):
    ws = Workspace.open(tmp_path / "ws")
    code = tmp_path / "reward.py"  # from the command line a file holds the code; a config or the page holds it as text
    code.write_text("def reward(prompt, completion, **row):\n    return len(completion) + (1000 if row['reference'] else 0)\n")
    cfg = resolve_inputs(load_config(PRESETS / "tiny-rlhf.yaml", [
        *QUICK, "rl.rewards=code,length", f"rl.reward_code={code}", "rl.max_chars=20", "train.max_steps=2",
        "train.logging_steps=1", "data.train=assets/data/support_eval.jsonl"]), ws)
    run_dir = ws.new_run_dir("rloo-code")
    run_training(cfg, run_dir)
    samples = rl_common.read_samples(run_dir)
    assert samples and all(s["rewards"]["code"] == len(s["answer"]) + 1000 for s in samples)  # chat data: a reference
    assert all(s["rewards"]["length"] == -min(1.0, max(0, len(s["answer"]) - 20) / 20) for s in samples)
    logs = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert any("rewards/code/mean" in r for r in logs) and (run_dir / "adapter" / "adapter_config.json").exists()


def test_grpo_on_maths_checks_each_answer_against_the_rows_own_answer_column(tmp_path):
    """MATH-500's shape: the policy learns from the problem, final_answer compares with the `answer` column
    (not the worked solution), and each sample in the run's log shows the reference it was checked against."""
    ws = Workspace.open(tmp_path / "ws")
    data = ROOT / "tests" / "assets" / "data" / "math500.jsonl"
    answers = {json.loads(line)["problem"]: json.loads(line)["answer"] for line in data.read_text().splitlines()}
    code = tmp_path / "reward.py"
    code.write_text("def reward(prompt, completion, **row):\n    return len(row['reference'])\n")
    cfg = resolve_inputs(load_config(PRESETS / "tiny-grpo.yaml", [
        *QUICK, "rl.rewards=final_answer,code", f"rl.reward_code={code}", "train.max_steps=2",
        "train.logging_steps=1", f"data.train={data}"]), ws)
    run_dir = ws.new_run_dir("grpo-maths")
    run_training(cfg, run_dir)
    samples = rl_common.read_samples(run_dir)
    assert samples and all(s["reference"] == answers[s["prompt"]] for s in samples)
    assert all(s["rewards"]["code"] == len(answers[s["prompt"]]) for s in samples)
    assert all(s["rewards"]["final_answer"] == answer_matches(s["answer"], s["reference"]) for s in samples)
    logs = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert any("rewards/final_answer/mean" in r for r in logs)


def test_samples_are_answers_to_training_prompts_not_to_eval_prompts(tmp_path):
    """GSM8K as a clone of its hub repository: subset main, trained on its train split, evaluated on its test split;
    the samples under the curves are answers to training prompts only."""
    ws = Workspace.open(tmp_path / "ws")
    data = ROOT / "tests" / "assets" / "data" / "gsm8k_hub"
    cfg = resolve_inputs(load_config(PRESETS / "tiny-grpo.yaml", [
        "train.save_steps=1000", "rl.rewards=final_answer", "train.max_steps=2", "train.logging_steps=1",
        "train.eval_steps=1", f"data.train={data}", "data.subset=main", "data.eval_split=test",
        "data.eval_fraction=0"]), ws)
    assert cfg.data.eval == cfg.data.train  # the test split of the same dataset
    run_dir = ws.new_run_dir("grpo-eval")
    run_training(cfg, run_dir)
    logs = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert any(k.startswith("eval_") for r in logs for k in r)  # the held-out prompts were answered and scored
    training = set(pq.read_table(data / "main" / "train-00000-of-00001.parquet").column("question").to_pylist())
    samples = rl_common.read_samples(run_dir)
    assert samples and all(s["prompt"] in training for s in samples), [s["prompt"] for s in samples]
