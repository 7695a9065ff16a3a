"""Template preview and token lengths with the built-in model's tokenizer."""

from __future__ import annotations

import copy
import os

from studio.data.preview import template_preview
from studio.data.readers import read_rows
from studio.data.validate import build_report
from studio.models.loading import load_tokenizer

DATA = os.path.join(os.path.dirname(__file__), "assets", "data")
RECORD = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"},
                       {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Bye"},
                       {"role": "assistant", "content": "Goodbye & <take care>"}]}


def test_assistant_turns_are_trained_with_a_marking_template():
    tok = load_tokenizer("tiny")
    pv = template_preview(RECORD, tok)
    trained = "".join(t for t, m in pv.tokens if m)
    assert "Hello!" in trained and "Goodbye & <take care>" in trained
    assert "Hi there" not in trained and "Be brief." not in trained
    assert pv.total == len(pv.tokens) and 0 < pv.trained < pv.total
    assert "&lt;" in pv.html() and "<take" not in pv.html()  # escaped, not rendered as a tag


def test_without_generation_marks_only_the_final_answer_trains():
    tok = copy.deepcopy(load_tokenizer("tiny"))
    tok.chat_template = tok.chat_template.replace("{% generation %}", "").replace("{% endgeneration %}", "")
    pv = template_preview(RECORD, tok)
    trained = "".join(t for t, m in pv.tokens if m)
    assert "Goodbye" in trained and "Hello!" not in trained
    assert "final answer" in pv.rule


def test_preference_rows_preview_the_chosen_answer_and_text_rows_train_everything():
    tok = load_tokenizer("tiny")
    pref = {"prompt": [{"role": "user", "content": "Pick"}], "chosen": [{"role": "assistant", "content": "Yes"}],
            "rejected": [{"role": "assistant", "content": "No"}]}
    assert "Yes" in "".join(t for t, m in template_preview(pref, tok).tokens if m)
    assert "against the rejected one, «No»," in template_preview(pref, tok).rule  # both sides can be checked
    hh = {"prompt": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "earlier"},
                     {"role": "user", "content": "b"}],
          "chosen": [{"role": "assistant", "content": "final"}], "rejected": [{"role": "assistant", "content": "no"}]}
    trained = "".join(t for t, m in template_preview(hh, tok).tokens if m)
    assert "final" in trained and "earlier" not in trained  # earlier turns of a pair are context only
    text = template_preview({"text": "plain words here"}, tok)
    assert text.trained == text.total > 0


def test_rows_longer_than_max_length_are_flagged():
    tok = load_tokenizer("tiny")
    report = build_report(read_rows(os.path.join(DATA, "dolly.jsonl")), tokenizer=tok, max_length=20)
    long_rows = [p for p in report.problem_rows() if "longer than the max length 20" in p["problem"]]
    assert long_rows and long_rows[0]["severity"] == "warning"
    assert len(report.token_lengths) == 2 and max(report.token_lengths) > 20
    assert len(report.usable) == 2  # too long is a warning: the row is truncated, not dropped


def test_hub_dataset_offline_is_one_sentence(tmp_path, monkeypatch):
    import pytest

    from studio.data.hub import read_hub
    from studio.data.readers import DataError

    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(DataError, match="Hub dataset 'someone/nothing-here' could not be loaded") as info:
        read_hub("someone/nothing-here")
    assert "\n" not in str(info.value)


def test_a_hub_id_with_a_dot_is_a_hub_id_not_a_missing_file(tmp_path, monkeypatch):
    """'teknium/OpenHermes-2.5' ends in '.5', which is no data file's suffix: the hub is asked for it (offline
    here), in runs, in the web app and in the Data tab's hub box, where it used to be 'no such file'."""
    import pytest

    from studio import access
    from studio.data.load import read_source
    from studio.data.readers import DataError
    from studio.workspace import Workspace

    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(DataError, match="Hub dataset 'teknium/OpenHermes-2.5' could not be loaded"):
        read_source("teknium/OpenHermes-2.5")
    ws = Workspace.open(tmp_path / "ws")
    assert access.readable_data(ws, "teknium/OpenHermes-2.5") == "teknium/OpenHermes-2.5"
    with pytest.raises(DataError, match="missing.jsonl: no such file"):
        read_source("missing.jsonl")


def test_sft_data_without_template_marks_trains_on_the_final_answer():
    import datasets

    from studio.methods.sft import prepare_sft_dataset

    ds = datasets.Dataset.from_list([RECORD])
    same, assistant_only = prepare_sft_dataset(ds, template_marks_assistant=True)
    assert assistant_only and same.column_names == ["messages"]
    split, assistant_only = prepare_sft_dataset(ds, template_marks_assistant=False)
    assert not assistant_only and split.column_names == ["prompt", "completion"]
    assert split[0]["completion"] == [{"role": "assistant", "content": "Goodbye & <take care>"}]
    assert split[0]["prompt"][-1] == {"role": "user", "content": "Bye"}


def test_large_files_flag_every_long_row_and_chart_a_sample():
    from studio.data.readers import ReadResult
    from studio.data.validate import SAMPLE

    tok = load_tokenizer("tiny")
    rows = [{"prompt": f"question {i}", "completion": "short answer"} for i in range(SAMPLE + 500)]
    long_idx = {7, 1234, SAMPLE + 499}
    for i in long_idx:
        rows[i]["completion"] = "refund " * 300
    report = build_report(ReadResult(rows, "big.jsonl", "jsonl"), tokenizer=tok, max_length=128)
    flagged = {p["row"] - 1 for p in report.problem_rows() if "longer than the max length" in p["problem"]}
    assert flagged == long_idx
    assert len(report.token_lengths) == SAMPLE
    assert any("random sample" in n for n in report.notes)


def test_a_turn_marked_weight_0_is_shown_as_context():
    tok = load_tokenizer("tiny")
    record = copy.deepcopy(RECORD)
    record["messages"][2]["weight"] = 0
    pv = template_preview(record, tok)
    trained = "".join(t for t, m in pv.tokens if m)
    assert "Hello!" not in trained and "Goodbye & <take care>" in trained and "weight 0" in pv.rule
    report = build_report(read_rows(os.path.join(DATA, "openai_weights.jsonl")))
    assert not report.issues and len(report.usable) == 2
    assert "1 conversation marks assistant turns with weight 0: those turns are read as context but not learnt" in \
        " ".join(report.notes)


def test_weight_0_spans_are_matched_to_turns_or_not_at_all():
    from studio.data.turns import mask_without_weight_0

    msgs = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b", "weight": 0},
            {"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}]
    assert mask_without_weight_0([0, 1, 1, 0, 0, 1, 1], msgs) == [0, 0, 0, 0, 0, 1, 1]
    assert mask_without_weight_0([0, 1, 1, 1, 1, 1, 1], msgs) is None  # one span for two turns: cannot tell
    assert mask_without_weight_0([1, 0, 1, 0, 1], msgs) is None


def test_a_conversation_whose_every_answer_has_weight_0_is_a_problem_row(tmp_path):
    import json

    path = tmp_path / "w.jsonl"
    rows = [{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo", "weight": 0}]},
            {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = build_report(read_rows(path))
    assert len(report.usable) == 1 and report.problem_rows()[0]["where"] == "line 1"
    assert report.problem_rows()[0]["problem"] == "every assistant turn in 'messages' has weight 0, so nothing in it " \
        "is learnt"
    pair = tmp_path / "p.jsonl"  # pairs ignore weights: a weight on the chosen answer is no reason to drop it
    pair.write_text(json.dumps({"prompt": [{"role": "user", "content": "q"}], "chosen": [
        {"role": "assistant", "content": "a", "weight": 0}], "rejected": [{"role": "assistant", "content": "b"}]}))
    assert len(build_report(read_rows(pair)).usable) == 1
