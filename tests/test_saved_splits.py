"""A dataset saved with an eval share keeps its halves apart: runs evaluate on its eval split, never on
the rows they train on, and evaluation in Chat or the CLI reads saved datasets by name."""

from __future__ import annotations

import json
import subprocess

import pytest
from helpers import PYTHON, ROOT, subprocess_env

from studio.config import load_config
from studio.data.load import eval_source, load_records, resolve_source
from studio.data.store import save_dataset
from studio.errors import StudioError
from studio.paths import PRESETS
from studio.train.runner import resolve_inputs
from studio.workspace import Workspace


def rows(n, tag):
    return [{"messages": [{"role": "user", "content": f"{tag} question {i}"},
                          {"role": "assistant", "content": f"{tag} answer {i}"}]} for i in range(n)]


@pytest.fixture
def ws(tmp_path):
    ws = Workspace.open(tmp_path / "ws")
    save_dataset(ws, "split", rows(20, "s"), "sft", eval_fraction=0.2)
    save_dataset(ws, "whole", rows(6, "w"), "sft")
    return ws


def questions(path):
    return {r["messages"][0]["content"] for r in load_records(path, ("sft",))[0]}


def test_a_run_on_a_dataset_saved_with_an_eval_share_evaluates_on_that_share(ws):
    cfg = resolve_inputs(load_config(PRESETS / "tiny-sft-lora.yaml", ["data.train=split", "data.eval="]), ws)
    assert cfg.data.train.endswith("split/v1/train.jsonl") and cfg.data.eval.endswith("split/v1/eval.jsonl")
    train, held = questions(cfg.data.train), questions(cfg.data.eval)
    assert len(train) == 16 and len(held) == 4 and not train & held

    # picking the same dataset as eval data means its eval split, not its train split
    cfg = resolve_inputs(load_config(PRESETS / "tiny-sft-lora.yaml", ["data.train=split", "data.eval=split"]), ws)
    assert cfg.data.eval.endswith("split/v1/eval.jsonl")
    # another saved dataset without a split is used whole
    cfg = resolve_inputs(load_config(PRESETS / "tiny-sft-lora.yaml", ["data.train=split", "data.eval=whole"]), ws)
    assert questions(cfg.data.eval) == {f"w question {i}" for i in range(6)}
    # a dataset without a split cannot be its own eval data
    with pytest.raises(StudioError, match="The saved dataset whole has no eval split"):
        resolve_inputs(load_config(PRESETS / "tiny-sft-lora.yaml", ["data.train=whole", "data.eval=whole"]), ws)
    cfg = resolve_inputs(load_config(PRESETS / "tiny-sft-lora.yaml", ["data.train=whole", "data.eval="]), ws)
    assert cfg.data.eval is None  # nothing to take: the run's own eval_fraction decides
    assert resolve_source("split:eval", ws) == cfg_eval_path(ws)


def cfg_eval_path(ws):
    return str(ws.datasets / "split" / "v1" / "eval.jsonl")


def test_evaluation_reads_a_saved_dataset_by_name(ws):
    from studio.chat.evaluate import eval_rows

    folder = str(ws.datasets / "split" / "v1")
    assert eval_source("split", ws) == (folder, "eval")  # its held-out share unless a split is named
    assert eval_source("split:train", ws) == eval_source("split", ws, "train") == (folder, "train")
    assert eval_source("whole", ws) == (str(ws.datasets / "whole" / "v1"), "train")  # no eval share: the rows it has
    read = [eval_source("split", ws, s) for s in ("eval", "train", "train[:5]")]
    assert [len(eval_rows(path, split=split)) for path, split in read] == [4, 16, 5]
    with pytest.raises(StudioError, match="'split:eval' names the split eval, and the split train was asked"):
        eval_source("split:eval", ws, "train")
    # the version's folder given as a path is scored as its name is: on its eval split
    out = subprocess.run([PYTHON, "-m", "studio", "eval", "tiny", "--data", folder, "--workspace", str(ws.root),
                          "--json"], capture_output=True, text=True, cwd=ROOT, env=subprocess_env(), timeout=180)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["rows"] == 4 and got["data"] == folder and got["split"] == "eval"  # the result says what it scored


def test_results_say_which_split_of_a_folder_was_scored(ws, tmp_path):
    from studio.chat.evaluate import scored_split

    folder = str(ws.datasets / "split" / "v1")
    assert scored_split(folder, "eval") == "eval" and scored_split(folder, None) == "train"
    assert scored_split(folder, "test", "main") == "main/test"  # a hub clone's subset and split
    assert scored_split(str(ws.datasets / "split" / "v1" / "eval.jsonl"), "train") == ""  # a file has no splits
    assert scored_split("openai/gsm8k", "test", "main") == "main/test"  # a hub id


def test_an_evaluation_is_kept_with_the_run_and_shown_readably(tmp_path):
    from studio.chat.evaluate import EvalResult, evaluations, save_result
    from studio.config import RunConfig, save_config
    from studio.train.runs import run_summary
    from studio.ui.evaluate_panel import answers_frame, scores_frame

    ws = Workspace.open(tmp_path / "ws")
    run_dir = ws.runs / "20261127-101500-sft"
    run_dir.mkdir()
    save_config(RunConfig().validate(), run_dir / "config.yaml")
    answers = [{"prompt": "Where is my parcel? " * 20, "reference": "On its way.", "answer": "On its way."},
               {"prompt": "Refund?", "reference": "Sent.", "answer": "No idea."}]
    result = EvalResult(run_dir.name, 2, 0.5, 7.679259236653646, 2161.5467, answers)
    assert save_result(ws, result, "split", "eval") == run_dir / "evaluations.jsonl"
    assert save_result(ws, EvalResult("tiny", 2, 0.0, 9.0, 8103.0), "split") is None  # not a run: nothing kept
    assert evaluations(run_dir)[-1]["exact_match"] == 0.5 and evaluations(run_dir)[-1]["data"] == "split"
    assert evaluations(run_dir)[-1]["split"] == "eval"
    assert run_summary(run_dir)["exact match"] == "50.0% of 2"
    scores = scores_frame([result], {run_dir.name}, "split · eval")
    assert scores.iloc[0].to_dict() == {"model": run_dir.name, "rows": 2, "data": "split · eval",
                                        "exact match": "50.0%", "final answer": "",
                                        "ROUGE-L": "0.000",
                                        "BLEU": "0.0", "judge (1-5)": "", "loss": "7.679", "perplexity": "2161.55",
                                        "saved": "with the run"}
    warned = scores_frame([result], data="split · eval", seen={run_dir.name: 2})
    assert warned.iloc[0]["data"] == "split · eval · ⚠️ 2 of 2 rows trained on"
    unkept = scores_frame([result], {run_dir.name: "not kept: Read-only file system"})  # the figures still show
    assert unkept.iloc[0]["saved"] == "not kept: Read-only file system" and unkept.iloc[0]["loss"] == "7.679"
    wide = answers_frame([result])
    assert list(wide.columns) == ["reference", run_dir.name, "prompt"]
    from studio.ui.evaluate_panel import answers_update

    assert answers_update(wide)["column_widths"] == ["44%", "44%", "12%"]  # each answer in sight, side by side
    assert list(wide[run_dir.name]) == ["On its way.", "✗ No idea."] and len(wide["prompt"][0]) == 120
    maths = [{"prompt": "2+2?", "reference": "Add them: \\boxed{4}", "answer": "It is 4.", "final": "4", "right": "yes"},
             {"prompt": "3+3?", "reference": "Add them: \\boxed{6}", "answer": "7", "final": "6", "right": "no"}]
    checked = EvalResult("tiny", 2, 0.0, 9.0, 8103.0, maths, final_answer=0.5)
    assert scores_frame([checked]).iloc[0]["final answer"] == "50.0%"
    wide = answers_frame([checked])  # the final answer checked, and ✗ where the answer's final answer is another
    assert list(wide.columns) == ["reference", "final answer", "tiny", "prompt"]
    assert list(wide["final answer"]) == ["4", "6"] and list(wide["tiny"]) == ["It is 4.", "✗ 7"]
