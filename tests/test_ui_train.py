"""The Train tab's form logic, without a browser: the eval data follows the training data picked."""

from __future__ import annotations

import pytest

from studio.data.store import save_dataset
from studio.ui.context import AppContext
from studio.ui.tabs.train import demo_choices, eval_for
from studio.workspace import Workspace

PAIR = {"prompt": [{"role": "user", "content": "Q{}?"}], "chosen": [{"role": "assistant", "content": "Yes."}],
        "rejected": [{"role": "assistant", "content": "No."}]}


@pytest.fixture()
def ctx(tmp_path):
    ws = Workspace.open(tmp_path / "ws")
    rows = [{k: [dict(m, content=m["content"].format(n)) for m in v] for k, v in PAIR.items()} for n in range(10)]
    save_dataset(ws, "arena", rows, "preference", eval_fraction=0.2)
    save_dataset(ws, "ranked", rows, "preference")
    return AppContext(workspace=ws)


def value(update):
    return update.get("value", "unchanged")


def test_a_dataset_with_an_eval_split_brings_it(ctx):
    assert value(eval_for(ctx, "arena", "assets/data/support_eval.jsonl")) == "arena:eval"


def test_another_datasets_eval_split_is_cleared_when_the_new_data_has_none(ctx):
    assert value(eval_for(ctx, "ranked", "arena:eval")) is None
    assert value(eval_for(ctx, "ranked", "deleted-since:eval")) is None


def test_the_demo_eval_file_is_cleared_beside_data_of_ones_own_and_kept_beside_demo_data(ctx):
    demo_eval = next(d for d in demo_choices() if d.endswith("support_eval.jsonl"))
    assert value(eval_for(ctx, "ranked", demo_eval)) is None
    assert value(eval_for(ctx, "/data/mine.jsonl", demo_eval)) is None
    assert value(eval_for(ctx, "assets/data/support_sft.jsonl", demo_eval)) == "unchanged"
    assert value(eval_for(ctx, "./assets/data/support_sft.jsonl", demo_eval)) == "unchanged"


def test_an_eval_file_the_user_chose_stays(ctx):
    assert value(eval_for(ctx, "ranked", "/data/my_eval.jsonl")) == "unchanged"


def test_the_samples_table_puts_what_was_scored_first_and_the_prompt_last(tmp_path):
    import json as _json

    from studio.ui.rewards_panel import samples_frame

    rows = [{"step": 2, "prompt": "What is 2+2? " * 30, "answer": "It is 4.", "rewards": {"final_answer": 1.0},
             "reference": "4"},
            {"step": 4, "prompt": "What is 3+3?", "answer": "7", "rewards": {"final_answer": 0.0}}]
    (tmp_path / "samples.jsonl").write_text("".join(_json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    frame = samples_frame(tmp_path)
    assert list(frame.columns) == ["step", "rewards", "answer", "reference", "prompt"]
    assert frame.iloc[0].to_dict() == {"step": 4, "rewards": "final_answer 0", "answer": "7", "reference": "",
                                       "prompt": "What is 3+3?"}  # newest first; no reference said: blank
    assert frame.iloc[1]["reference"] == "4"


def test_the_form_names_a_hub_subset_and_the_splits_to_train_and_evaluate_on():
    from studio.config_form import config_from_form
    from studio.ui.tabs.train import FORM_PATHS

    assert {"data.subset", "data.split", "data.eval_split"} <= set(FORM_PATHS)
    cfg = config_from_form({}, {"data.train": "gsm8k", "data.eval": "", "data.subset": " main ",
                                "data.split": "train[:100]", "data.eval_split": "test"})
    assert (cfg.data.subset, cfg.data.split, cfg.data.eval_split, cfg.data.eval) == ("main", "train[:100]", "test", None)
    cfg = config_from_form({}, {"data.train": "gsm8k", "data.subset": "", "data.eval_split": " "})
    assert cfg.data.subset is None and cfg.data.eval_split is None
    with pytest.raises(ValueError, match="data.split is empty"):
        config_from_form({}, {"data.train": "gsm8k", "data.split": ""})
