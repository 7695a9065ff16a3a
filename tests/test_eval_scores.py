"""Evaluation beyond exact match: ROUGE-L and BLEU on worked values, the judge's prompt and grades, and
a real run evaluated at each checkpoint from the CLI, kept with the run and written into its model card."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
from helpers import PYTHON, ROOT, subprocess_env

from studio.chat.scores import bleu, judge_messages, mean_grade, parse_grade, rouge_l
from studio.errors import StudioError
from studio.workspace import Workspace

EVAL = ROOT / "assets" / "data" / "support_eval.jsonl"


def test_rouge_l_and_bleu_on_worked_values():
    # LCS of "a b c" and "a c" is 2 words: precision 2/3, recall 1, F = 0.8
    assert rouge_l(["a b c"], ["a c"]) == pytest.approx(0.8)
    assert rouge_l(["x y"], ["a c"]) == 0.0
    assert rouge_l(["Your parcel ships today.", "No."], ["Your parcel ships today.", "Yes."]) == pytest.approx(0.5)
    assert rouge_l(["Ваш заказ отправлен"], ["Ваш заказ отправлен сегодня"]) == pytest.approx(6 / 7)  # any script
    same = "Dear customer, thank you for writing to Pebble & Pine."
    assert bleu([same], [same]) == pytest.approx(100.0)
    assert bleu(["completely different words here now"], [same]) < 5.0
    assert 0.0 < bleu([same.replace("Dear", "Hello")], [same]) < 100.0


@pytest.mark.parametrize("reply, grade", [("4", 4), ("Grade: 4/5", 4), ("5.", 5), (" 2 - partly right", 2),
                                          ("Grade (1-5): 4", 4), ("3 out of 5", 3), ("4.5", None), ("10", None),
                                          ("0", None), ("", None), ("great", None)])
def test_a_grade_is_read_only_when_it_stands_alone(reply, grade):
    assert parse_grade(reply) == grade


def test_the_judge_reads_the_rubric_question_reference_and_answer():
    messages = judge_messages("5: perfect", "Where is it?", "On its way.", "No idea.")
    text = messages[-1]["content"]
    assert messages[0]["role"] == "system" and "1 to 5" in messages[0]["content"]
    assert all(part in text for part in ("5: perfect", "Where is it?", "On its way.", "No idea."))
    assert mean_grade([4, None, 2]) == 3.0 and mean_grade([None]) is None


def test_checkpoint_names_are_the_only_at_targets_the_web_accepts(tmp_path):
    from studio.access import readable_model

    ws = Workspace.open(tmp_path / "ws")
    (ws.runs / "20261127-101500-sft").mkdir()
    assert readable_model(ws, "20261127-101500-sft@checkpoint-2") == "20261127-101500-sft@checkpoint-2"
    for bad in ("20261127-101500-sft@../../etc", "elsewhere@checkpoint-1", "20261127-999999-sft@checkpoint-1"):
        with pytest.raises(StudioError, match="not a checkpoint"):
            readable_model(ws, bad)


@pytest.mark.slow
def test_a_run_scored_at_each_checkpoint_from_the_cli(tmp_path):
    from studio.chat.evaluate import evaluations
    from studio.chat.export import model_card
    from studio.config import load_config
    from studio.paths import PRESETS
    from studio.train.worker import run_training

    ws = Workspace.open(tmp_path / "ws")
    run_dir = ws.new_run_dir("sft")
    run_training(load_config(PRESETS / "tiny-sft-lora.yaml", ["train.max_steps=4", "train.save_steps=2",
                                                              "data.eval=null"]), run_dir)
    done = subprocess.run([PYTHON, "-m", "studio", "eval", run_dir.name, "--data", str(EVAL), "--limit", "4",
                           "--checkpoints", "--judge", "tiny", "--json", "--answers", "--workspace", str(ws.root)],
                          capture_output=True, text=True, cwd=ROOT, env=subprocess_env(), timeout=600)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert [c["model"] for c in out["checkpoints"]] == [f"{run_dir.name}@checkpoint-2", f"{run_dir.name}@checkpoint-4"]
    last = out["checkpoints"][-1]  # the last checkpoint holds the final weights: the same scores
    assert (last["loss"], last["rouge_l"], last["bleu"]) == pytest.approx((out["loss"], out["rouge_l"], out["bleu"]))
    assert out["checkpoints"][0]["loss"] != pytest.approx(out["loss"])
    assert "final_answer" not in out  # support replies mark no final answer to check
    for result in [out, *out["checkpoints"]]:
        assert 0.0 <= result["rouge_l"] <= 1.0 and 0.0 <= result["bleu"] <= 100.0 and result["judged_by"] == "tiny"
        assert result["judge"] is None or 1.0 <= result["judge"] <= 5.0
        assert all(a.get("grade", "") in ("", "1", "2", "3", "4", "5") for a in result["answers"])
    kept = evaluations(run_dir)
    assert [e.get("checkpoint") for e in kept] == ["checkpoint-2", "checkpoint-4", None]
    card = model_card(run_dir, "merged")
    assert "## Held-out evaluation (4 rows of support_eval.jsonl)" in card and "| ROUGE-L |" in card
    text = subprocess.run([PYTHON, "-m", "studio", "eval", run_dir.name, "--data", str(EVAL), "--limit", "2",
                           "--judge", "tiny", "--workspace", str(ws.root)], capture_output=True, text=True, cwd=ROOT,
                          env=subprocess_env(), timeout=600)
    judge_line = [line for line in text.stdout.splitlines() if line.startswith("judge ")]
    assert len(judge_line) == 1, text.stdout  # the judge is always reported, a grade or none
    assert judge_line[0] == "judge none: tiny wrote no readable grade (1-5) for any answer" or \
        re.fullmatch(r"judge [1-5]\.\d\d \(by tiny\)", judge_line[0]), judge_line


def test_a_checkpoint_that_does_not_exist_is_one_sentence(tmp_path):
    from studio.chat.engine import load_for_chat
    from studio.config import RunConfig, save_config

    ws = Workspace.open(tmp_path / "ws")
    run_dir = ws.runs / "20261127-101500-sft"
    run_dir.mkdir()
    save_config(RunConfig().validate(), run_dir / "config.yaml")
    with pytest.raises(StudioError, match="has no checkpoint-7"):
        load_for_chat(f"{run_dir.name}@checkpoint-7", ws)
    with pytest.raises(StudioError, match="not a run of this workspace"):
        load_for_chat("tiny@checkpoint-7", ws)
    from studio.train.status import RunState, update_status

    for state, error, why in (
            (RunState.FAILED, None, r"\(it failed: its log says why\)"),
            (RunState.FAILED, "Out of memory on the GPU.", r"\(it failed: Out of memory on the GPU\)"),
            (RunState.STOPPED, None, r"\(it was stopped before it saved a checkpoint: start it again\)"),
            (RunState.RUNNING, None, "yet")):
        (run_dir / "status.json").unlink(missing_ok=True)  # a final state is not overwritten by another
        update_status(run_dir, state=state, error=error)
        with pytest.raises(StudioError, match=f"Run {run_dir.name} has no finished adapter or model ?{why}"):
            load_for_chat(run_dir.name, ws)
    (run_dir / "checkpoints" / "checkpoint-3").mkdir(parents=True)
    (run_dir / "status.json").unlink()
    update_status(run_dir, state=RunState.STOPPED)
    with pytest.raises(StudioError, match=f"\\(it was stopped: resume it to finish, or pick one of its checkpoints, "
                                          f"e.g. {run_dir.name}@checkpoint-3\\)"):
        load_for_chat(run_dir.name, ws)


def test_evaluating_on_pairs_says_evaluation_needs_conversations():
    from studio.chat.evaluate import eval_rows
    from studio.data.readers import DataError

    with pytest.raises(DataError, match="support_prefs.jsonl holds preference .* data, but evaluation needs "
                                        "instruction or chat data"):
        eval_rows(str(ROOT / "assets" / "data" / "support_prefs.jsonl"), 4)
