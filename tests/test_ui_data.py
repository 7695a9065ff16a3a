"""The Data tab's own helpers: hand-written examples, row deletion, analysis of the rows in hand."""

from __future__ import annotations

import pandas as pd
import pytest

from studio.ui.tabs.data import AUTO, add_example, analyse, delete_rows, parse_row_numbers, table_source


def test_parse_row_numbers():
    assert parse_row_numbers("2, 5-7", 10) == [1, 4, 5, 6]
    with pytest.raises(ValueError, match="outside 1-3"):
        parse_row_numbers("4", 3)
    with pytest.raises(ValueError, match="'x' is not a row number"):
        parse_row_numbers("x", 3)


def test_add_check_and_delete_examples():
    frame = pd.DataFrame(columns=["system", "prompt", "response"])
    frame, *_ , msg = add_example(frame, "instructions", "", "What is 2+2?", "4")
    frame, *_ , msg = add_example(frame, "instructions", "Be brief.", "Capital of Peru?", "Lima")
    frame, *_ , msg = add_example(frame, "instructions", "", "No answer", "")
    assert len(frame) == 3 and msg == "Added example 3."
    report, text = analyse(table_source(frame, "instructions"), "prompt_completion",
                           {"system": "system", "prompt": "prompt", "completion": "response"}, "", 512)
    assert len(report.usable) == 2
    assert report.records[1]["messages"][0] == {"role": "system", "content": "Be brief."}
    assert report.problem_rows()[0]["where"] == "row 3"
    frame, msg = delete_rows(frame, "3")
    assert len(frame) == 2 and msg == "Deleted 1 row."
    frame2, msg = delete_rows(frame, "9")
    assert len(frame2) == 2 and "outside" in msg
    for length, said in (("many", "whole number"), (None, "whole number"), (-5, "between 16 and"),
                         (float("inf"), "whole number"), (10**30, "between 16 and")):
        report, text = analyse(table_source(frame, "instructions"), "prompt_completion", {}, "", length)
        assert report is None and said in text, (length, text)


def test_analyse_without_rows_asks_for_data():
    report, msg = analyse(None, AUTO, {}, "", 512)
    assert report is None and "Load a file" in msg


def test_message_trees_in_the_data_tab_show_threads_or_pairs_by_the_format_chosen():
    import copy
    import os

    from studio.data.readers import read_rows
    from studio.ui.tabs.data import _source_from

    src = copy.deepcopy(_source_from(read_rows(os.path.join(os.path.dirname(__file__), "assets", "data",
                                                            "oasst2_trees.jsonl"))))  # as the page keeps it
    threads, _ = analyse(src, AUTO, {}, "", 512)
    assert threads.format == "messages" and len(threads.usable) == 2
    assert "also give 3 preference pairs" in " ".join(threads.notes)
    pairs, _ = analyse(src, "preference_messages", {}, "", 512)
    assert pairs.kind == "preference" and len(pairs.usable) == 3


def test_choosing_pairs_for_trees_without_ranked_answers_says_so_on_the_page(tmp_path):
    import json

    from studio.data.readers import read_rows
    from studio.ui.tabs.data import _source_from

    path = tmp_path / "oasst.jsonl"
    path.write_text("".join(json.dumps(m) + "\n" for m in [
        {"message_id": "m1", "parent_id": None, "role": "prompter", "text": "Hello?"},
        {"message_id": "m2", "parent_id": "m1", "role": "assistant", "text": "Hi."}]))
    report, msg = analyse(_source_from(read_rows(path)), "preference_messages", {}, "", 512)
    assert report is None and msg == ("⚠️ oasst.jsonl: no question in these message trees has two answers of "
                                      "different rank, so they give no preference pairs.")


def test_an_in_house_vote_export_maps_to_two_answers_and_a_verdict(tmp_path):
    """Columns no format knows: the user picks the verdict format and names the answers; the verdict's
    numbers follow the answer columns' own numbers."""
    from studio.data.readers import read_rows
    from studio.ui.tabs.data import _source_from

    path = tmp_path / "votes.csv"
    path.write_text("question,answer1,answer2,better\nWhere is my order?,It ships today.,No idea.,1\n"
                    "Can I pay by card?,Yes.,Yes we accept cards.,2\nRefund?,Sure.,No.,3\n")
    src = _source_from(read_rows(path))
    unknown, _ = analyse(src, AUTO, {}, "", 512)
    assert unknown.format is None
    report, msg = analyse(src, "verdict", {"answer_a": "answer1", "answer_b": "answer2"}, "", 512)
    assert report.mapping == {"prompt": "question", "answer_a": "answer1", "answer_b": "answer2", "verdict": "better"}
    assert [r["chosen"][0]["content"] for r in report.usable] == ["It ships today.", "Yes we accept cards."]
    assert "2 usable" in msg and "1 verdict names no answer" in msg


def test_every_field_of_every_format_has_a_mapping_box():
    from studio.data.formats import SPECS
    from studio.ui.tabs.data import FIELDS

    assert {name for spec in SPECS.values() for name in spec.fields} == set(FIELDS)
