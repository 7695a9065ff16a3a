"""Format detection and normalisation into TRL's forms, on files in the shapes real datasets use."""

from __future__ import annotations

import json
import os

import pytest

from studio.data.detect import detect
from studio.data.formats import normalise
from studio.data.pairs import parse_hh
from studio.data.readers import read_rows
from studio.data.validate import build_report

DATA = os.path.join(os.path.dirname(__file__), "assets", "data")


def report(name, **kw):
    return build_report(read_rows(os.path.join(DATA, name)), **kw)


@pytest.mark.parametrize("name, fmt, usable", [
    ("alpaca.json", "alpaca", 4), ("sharegpt.jsonl", "sharegpt", 2), ("openai.jsonl", "messages", 2),
    ("dolly.jsonl", "dolly", 2), ("prompt_completion.csv", "prompt_completion", 3),
    ("qa.tsv", "prompt_completion", 2), ("corpus.txt", "text", 3), ("pref_strings.jsonl", "preference", 1),
    ("pref_messages.jsonl", "preference_messages", 2), ("hh.jsonl", "hh", 2),
    ("hh_rlhf_train.jsonl.gz", "hh", 2), ("kto_messages.json", "unpaired", 3), ("kto_unpaired.jsonl", "unpaired", 2),
    ("prompts.jsonl", "prompt_only", 3), ("prompts.csv", "prompt_only", 2), ("messages_as_text.csv", "messages", 2),
    ("glaive_toolcall.json", "sharegpt", 3), ("openai_tools.jsonl", "messages", 2),
])
def test_detects_and_normalises(name, fmt, usable):
    r = report(name)
    assert r.format == fmt
    assert len(r.usable) == usable


def test_alpaca_becomes_messages_with_system_history_and_input():
    r = report("alpaca.json")
    assert r.records[1]["messages"] == [{"role": "user", "content": "Translate to French.\n\nGood morning"},
                                        {"role": "assistant", "content": "Bonjour"}]
    roles = [m["role"] for m in r.records[2]["messages"]]
    assert roles == ["system", "user", "assistant", "user", "assistant"]
    assert r.records[2]["messages"][1]["content"] == "Hi"


def test_sharegpt_roles_are_mapped():
    r = report("sharegpt.jsonl")
    assert [m["role"] for m in r.records[0]["messages"]] == ["system", "user", "assistant"]


def test_content_parts_are_joined():
    assert report("openai.jsonl").records[1]["messages"][0]["content"] == "Hello there"


def test_dolly_puts_context_before_the_instruction():
    msg = report("dolly.jsonl").records[0]["messages"][0]["content"]
    assert msg.startswith("Virgin Australia commenced") and msg.endswith("start operating?")


def test_hh_transcripts_split_on_the_shared_prefix():
    rec = report("hh.jsonl").records[0]
    assert [m["role"] for m in rec["prompt"]] == ["user", "assistant", "user"]
    assert rec["chosen"] == [{"role": "assistant", "content": "They can hurt people, and I try to be helpful instead."}]
    assert rec["rejected"] == [{"role": "assistant", "content": "Whatever."}]


def test_preference_messages_drop_the_repeated_prompt():
    r = report("pref_messages.jsonl")
    assert r.records[0] == {"prompt": [{"role": "user", "content": "What is 2+2?"}],
                            "chosen": [{"role": "assistant", "content": "4"}],
                            "rejected": [{"role": "assistant", "content": "5"}]}
    assert r.records[1]["prompt"] == [{"role": "user", "content": "Hi"}]


def test_problems_name_row_and_field():
    rows = {p["where"]: p for p in report("openai.jsonl").problem_rows()}
    assert rows["line 3"]["field"] == "messages"
    assert rows["line 3"]["problem"] == "'messages' must be a list of turns, found text"
    assert "two user turns in a row" in rows["line 4"]["problem"]
    assert "no assistant turn" in rows["line 5"]["problem"]
    pref = {p["where"]: p for p in report("pref_strings.jsonl").problem_rows()}
    assert "identical" in pref["line 2"]["problem"]
    assert pref["line 3"]["problem"] == "'prompt' is missing or empty"
    dup = {p["where"]: p for p in report("alpaca.json").problem_rows()}
    assert dup["row 5"]["problem"] == "duplicate of row 2" and dup["row 5"]["severity"] == "warning"
    assert dup["row 4"]["problem"] == "'output' is missing or empty"
    assert report("alpaca.json").counts() == {"duplicate": 1, "missing or empty": 1}


def test_unknown_columns_can_be_mapped_by_hand():
    rows = [{"q": "2+2?", "a": "4"}, {"q": "3+3?", "a": "6"}]
    assert detect(rows).name is None
    records, issues = normalise(rows, "prompt_completion", {"prompt": "q", "completion": "a"})
    assert not issues and records[0]["messages"][1] == {"role": "assistant", "content": "4"}
    with pytest.raises(ValueError, match="needs a column for completion"):
        normalise(rows, "prompt_completion", {"prompt": "q"})
    with pytest.raises(ValueError, match="Unknown format"):
        normalise(rows, "csv-ish", {})


def test_wrong_detection_can_be_overridden():
    rows = [{"instruction": "Say hi", "output": "hi", "input": ""}]
    r = build_report(read_rows_from(rows), fmt="prompt_completion",
                     mapping={"prompt": "instruction", "completion": "output"})
    assert r.format == "prompt_completion" and len(r.usable) == 1


def read_rows_from(rows):
    from studio.data.readers import ReadResult

    return ReadResult(rows, "inline", "json")


def test_parse_hh_requires_turns():
    turns = parse_hh("\n\nHuman: a\n\nAssistant: b", "chosen")
    assert turns == [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]


def test_numbers_are_text_but_objects_are_not():
    records, issues = normalise([{"prompt": 12, "completion": 13}, {"prompt": {"x": 1}, "completion": "a"}],
                                "prompt_completion")
    assert records[0]["messages"][0]["content"] == "12"
    assert issues[0].index == 1 and "should be text, found an object" in issues[0].message


def test_llamafactory_ranking_files_are_preference_pairs():
    report = build_report(read_rows(os.path.join(DATA, "llamafactory_dpo.json")))
    assert report.format == "preference_messages" and report.kind == "preference"
    first, second = report.usable[:2]
    assert first["prompt"] == [{"role": "user", "content": "My parcel 4471 has not arrived. What now?"}]
    assert first["chosen"][0]["content"].startswith("Sorry about that") and first["rejected"][0]["role"] == "assistant"
    assert second["prompt"][0] == {"role": "system", "content": "You answer for an online shop."}
    assert [m["role"] for m in second["prompt"]] == ["system", "user", "assistant", "user"]
    assert len(report.usable) == 2 and "identical" in report.problem_rows()[0]["problem"]  # row 3 prefers nothing


def test_chosen_and_rejected_message_columns_are_read():
    report = build_report(read_rows(os.path.join(DATA, "chosen_messages.jsonl")))
    assert report.format == "preference_messages" and len(report.usable) == 2
    assert report.usable[0] == {"prompt": [{"role": "user", "content": "Is shipping free?"}],
                                "chosen": [{"role": "assistant", "content": "Above 50 euros, yes."}],
                                "rejected": [{"role": "assistant", "content": "No."}]}


def test_content_parts_keep_their_text_and_say_when_there_is_none():
    report = build_report(read_rows(os.path.join(DATA, "content_parts.jsonl")))
    assert report.format == "messages"
    first = report.records[0]["messages"]
    assert first[1]["content"] == "Order 77 is the blue jacket."  # a part's text under "value"
    problem = report.problem_rows()[0]
    assert problem["where"] == "line 2" and "holds only image_url parts" in problem["problem"]
    third = report.records[2]["messages"]
    assert third[0]["content"] == "Hi" and third[1]["content"] == "Hello!"


def test_one_conversation_saved_as_one_object_is_one_row():
    result = read_rows(os.path.join(DATA, "one_conversation.json"))
    assert len(result.rows) == 1
    report = build_report(result)
    assert report.format == "messages" and len(report.usable[0]["messages"]) == 5


def test_image_columns_left_out_are_said():
    report = build_report(read_rows(os.path.join(DATA, "llamafactory_mllm.jsonl")))
    assert report.format == "messages" and len(report.usable) == 2
    assert any("column 'images' holds images" in n for n in report.notes)
    assert not any("images" in n for n in build_report(read_rows(os.path.join(DATA, "openai.jsonl"))).notes)


def test_a_too_long_row_names_its_long_field(tmp_path):
    import json

    from studio.models.loading import load_tokenizer

    path = tmp_path / "alpaca.json"
    path.write_text(json.dumps([{"instruction": "Summarise.", "input": "word " * 800, "output": "Short."},
                                {"instruction": "Say hi.", "input": "", "output": "Hi"}]))
    report = build_report(read_rows(path), tokenizer=load_tokenizer("tiny"), max_length=64)
    long = [p for p in report.problem_rows() if "longer than the max length" in p["problem"]]
    assert [(p["where"], p["field"]) for p in long] == [("row 1", "input")]


def test_kto_files_keep_their_label_and_split_off_the_rated_answer():
    r = report("kto_messages.json")
    assert r.kind == "unpaired"
    assert r.records[1] == {"prompt": [{"role": "user", "content": "Can I return shoes after a month?"}],
                            "completion": [{"role": "assistant", "content": "No idea, ask someone else."}],
                            "label": False}
    assert [p["problem"] for p in r.problem_rows()] == ["'label' should be true or false, found 'maybe'"]
    trl = report("kto_unpaired.jsonl")
    assert [rec["label"] for rec in trl.records] == [True, False]


def test_a_label_column_next_to_plain_text_is_not_mistaken_for_ratings():
    rows = [{"text": "great film", "label": 1}, {"text": "dull", "label": 0}]
    assert detect(rows).name == "text"


def test_prompt_only_data_is_a_kind_of_its_own():
    r = report("prompts.jsonl")
    assert r.kind == "prompt"
    assert r.records[0]["prompt"][-1] == {"role": "user", "content": "Where is my order 12?"}
    assert "ends on an assistant turn" in r.problem_rows()[0]["problem"]
    conversations = [{"messages": [{"role": "user", "content": "Hi"}]},
                     {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Bye"}]}]
    assert detect(conversations).name == "prompt_only"
    assert report("prompts.csv").records[1] == {"prompt": [{"role": "user", "content":
                                                            "Do you sell gift cards, and for how much?"}]}


def test_a_messages_column_of_strings_is_an_error_not_plain_text():
    r = report("messages_strings.jsonl")
    assert r.format == "messages" and not r.usable
    assert r.problem_rows()[0]["problem"] == "'messages' must be a list of turns, found text"
    decoded = report("messages_as_text.csv")  # JSON text in a CSV cell is a list of turns
    assert decoded.records[0]["messages"][1] == {"role": "assistant", "content": "Hello!"}


def test_hh_rlhf_as_released_reads_from_gzip():
    r = report("hh_rlhf_train.jsonl.gz")
    assert [m["role"] for m in r.records[0]["prompt"]] == ["user", "assistant", "user"]
    assert r.records[0]["chosen"][0]["content"].startswith("I'm fairly sure they did not")
    assert r.counts() == {"chosen = rejected": 1}


def test_labels_written_as_1_and_0_in_a_csv_are_rated_answers(tmp_path):
    path = tmp_path / "kto.csv"
    path.write_text("prompt,completion,label\nWhere is my order?,It ships tomorrow.,1\nWhere is it?,Dunno.,0\n")
    r = build_report(read_rows(path))
    assert r.kind == "unpaired" and [rec["label"] for rec in r.records] == [True, False]


@pytest.mark.parametrize("row", [{"prompt": "q", "reply": "a"}, {"prompt": "q", "chosen": "a"},
                                 {"query": "q", "pos": ["a"], "neg": ["b"]}, {"prompt": "q", "generation": "a"}])
def test_a_prompt_beside_an_answer_column_is_not_prompt_only(row):
    assert detect([row]).name != "prompt_only"


def test_prompts_with_an_id_are_prompt_only():
    assert detect([{"id": 1, "prompt": "Tell me a joke"}]).name == "prompt_only"


def test_turns_given_as_json_text_in_a_rated_answer_are_decoded_and_text_stays_text(tmp_path):
    path = tmp_path / "kto.jsonl"
    turns_text = json.dumps([{"role": "assistant", "content": "yo"}])
    path.write_text(json.dumps({"prompt": json.dumps([{"role": "user", "content": "hi"}]), "completion": turns_text,
                                "label": True}) + "\n" +
                    json.dumps({"prompt": "hi", "completion": "[1] see the manual", "label": False}) + "\n")
    r = build_report(read_rows(path))
    assert r.records[0]["completion"] == [{"role": "assistant", "content": "yo"}]
    assert r.records[1]["completion"] == [{"role": "assistant", "content": "[1] see the manual"}]


def test_a_column_map_alone_says_which_format_a_file_is(tmp_path):
    path = tmp_path / "qa.jsonl"
    path.write_text(json.dumps({"q": "Where?", "a": "Here."}) + "\n")
    assert build_report(read_rows(path)).format is None
    r = build_report(read_rows(path), mapping={"prompt": "q", "completion": "a"})
    assert r.format == "prompt_completion" and r.records[0]["messages"][1]["content"] == "Here."


def test_prompt_only_detection_looks_across_the_whole_file():
    ask = {"messages": [{"role": "user", "content": "Hi"}]}
    answered = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
    assert detect([ask] * 300 + [answered] * 300).name == "messages"


def test_ultrafeedback_binarized_takes_its_prompt_column_and_splits_it_off_the_answers(tmp_path):
    """UltraFeedback's train_prefs: a prompt column, chosen/rejected as whole conversations and a messages
    column that repeats the chosen one; as JSONL and as the hub's Parquet."""
    import pandas as pd

    parquet = tmp_path / "train_prefs-00000-of-00001.parquet"
    rows = [json.loads(line) for line in open(os.path.join(DATA, "ultrafeedback_binarized.jsonl"), encoding="utf-8")]
    pd.DataFrame(rows).to_parquet(parquet)
    for r in (report("ultrafeedback_binarized.jsonl"), build_report(read_rows(str(parquet)))):
        assert (r.format, r.mapping["prompt"]) == ("preference_messages", "prompt")
        assert len(r.usable) == 3 and not r.issues
        assert r.usable[0] == {"prompt": [{"role": "user", "content": "Where is my order 5120?"}],
                               "chosen": [{"role": "assistant", "content":
                                           "Order 5120 left the warehouse yesterday; it arrives Thursday."}],
                               "rejected": [{"role": "assistant", "content": "Somewhere."}]}


def test_openai_preference_files_read_the_input_messages_and_both_outputs():
    r = report("openai_preference.jsonl")
    assert r.format == "preference_messages" and r.kind == "preference"
    assert r.mapping == {"prompt": "input", "chosen": "preferred_output", "rejected": "non_preferred_output"}
    first, second = r.usable[:2]
    assert first["prompt"] == [{"role": "user", "content": "Hello, can you tell me how cold San Francisco is today?"}]
    assert first["chosen"][0]["content"].startswith("Today in San Francisco") and first["rejected"][0]["content"] == \
        "It is cold."
    assert [m["role"] for m in second["prompt"]] == ["system", "user"]
    assert len(r.usable) == 2 and r.problem_rows()[0]["row"] == 3 and "identical" in r.problem_rows()[0]["problem"]


def test_alpaca_preference_pairs_keep_the_input_and_the_history():
    """LLaMA-Factory's alpaca-style ranking files: the input goes under the instruction, history before it."""
    r = report("llamafactory_dpo_alpaca.json")
    assert r.format == "preference" and len(r.usable) == 3
    assert r.usable[0]["prompt"] == [{"role": "user", "content": "Name the capital of Italy."}]
    assert r.usable[1]["prompt"] == [{"role": "user", "content": "Translate to French.\n\nGood morning"}]
    assert r.usable[1]["chosen"] == [{"role": "assistant", "content": "Bonjour"}]
    assert [m["content"] for m in r.usable[2]["prompt"]] == ["Translate to French: Good morning", "Bonjour",
                                                             "And in Spanish?"]


def test_input_chosen_and_rejected_strings_are_pairs_not_transcripts():
    r = report("input_chosen_rejected.jsonl")
    assert r.format == "preference" and r.mapping["prompt"] == "input" and len(r.usable) == 2
    assert r.usable[1]["prompt"] == [{"role": "system", "content": "Be brief."},
                                     {"role": "user", "content": "Colour of the sky?"}]


@pytest.mark.parametrize("name", ["oasst1_messages.jsonl", "oasst1_messages.csv"])  # the CSV: flags as text
def test_openassistant_message_rows_join_into_the_best_ranked_thread_of_each_tree(name):
    tree = report(name)
    assert tree.format == "messages" and not tree.issues
    threads = {r["messages"][0]["content"]: [m["content"] for m in r["messages"]] for r in tree.usable}
    assert threads["Explain monopsony in simple terms."] == [  # rank 0 over rank 1; the deleted, the failed
        "Explain monopsony in simple terms.",                 # review and the unanswered last question are out
        "A market with a single buyer, such as one big employer in a small town.",
        "Give an example from labour markets.", "A mining company that is the only employer in a remote town."]
    assert [m["role"] for m in tree.usable[0]["messages"]] == ["user", "assistant", "user", "assistant"]
    assert len(tree.usable) == 3 and "Tell me a secret." not in threads  # its only answer failed review
    notes = " ".join(tree.notes)
    assert f"{name}: 15 message rows joined into 3 conversations" in notes
    assert f". {name}: 15 message rows joined" in tree.summary()  # the file's name keeps its spelling
    assert "replies whose parent is not in the file: 1" in notes and "trees with no answer that passed review: 1" in notes
    assert "replies deleted, failed in review or empty (with the replies under them): 2" in notes
    assert "2 languages (en 2, es 1)" in notes


def test_openassistant_nested_trees_join_the_same_way():
    tree = report("oasst2_trees.jsonl")
    assert tree.format == "messages" and len(tree.usable) == 2
    assert [m["content"] for m in tree.usable[0]["messages"]][1::2] == [
        "It translates source code into machine code before the program runs.",
        "It runs the source directly, statement by statement."]
    assert [r["message_tree_id"] for r in read_rows(os.path.join(DATA, "oasst2_trees.jsonl")).rows] == ["t1", "t7"]
    assert "3 trees joined into 2 conversations" in tree.notes[0]  # the third was aborted by its reviewers
    assert "left out: trees in state aborted_low_grade: 1" in tree.notes


def test_ranked_answers_of_message_trees_are_preference_pairs_when_a_stage_wants_pairs():
    from studio.data.load import load_records

    nested = os.path.join(DATA, "oasst2_trees.jsonl")
    pairs = report("oasst2_trees.jsonl", fmt="preference_messages")
    assert pairs.kind == "preference" and len(pairs.usable) == 3 and not pairs.issues
    deeper = pairs.usable[2]  # the follow-up question's two ranked answers, after the turns that led there
    assert [m["content"] for m in deeper["prompt"]] == [
        "What does a compiler do?", "It translates source code into machine code before the program runs.",
        "And an interpreter?"]
    assert deeper["chosen"][0]["content"].startswith("It runs the source") and \
        deeper["rejected"][0]["content"] == "It is a kind of compiler."
    assert "3 preference pairs from the ranked answers in 3 trees (found in 1 tree)" in " ".join(pairs.notes)
    assert "also give 3 preference pairs" in " ".join(report("oasst2_trees.jsonl").notes)
    flat = report("oasst1_messages.jsonl", fmt="preference")  # the deleted and failed-review answers pair with none
    assert [(p["chosen"][0]["content"][:8], p["rejected"][0]["content"][:8]) for p in flat.usable] == [
        ("A market", "It is wh")]
    assert len(load_records(nested, ("preference",))[0]) == 3  # DPO, reward models
    assert len(load_records(nested, ("unpaired", "preference"))[0]) == 3  # KTO
    assert len(load_records(nested, ("prompt", "sft", "preference"))[0]) == 2  # RLHF: the threads


def test_message_trees_without_ranked_answers_give_no_pairs_in_one_sentence(tmp_path):
    from studio.data.load import load_records
    from studio.data.readers import DataError

    path = tmp_path / "oasst.jsonl"
    path.write_text("".join(json.dumps(m) + "\n" for m in [
        {"message_id": "m1", "parent_id": None, "role": "prompter", "text": "Hello?"},
        {"message_id": "m2", "parent_id": "m1", "role": "assistant", "text": "Hi.", "rank": 0}]))
    assert len(load_records(str(path), ("sft", "text"))[0]) == 1
    with pytest.raises(DataError, match="oasst.jsonl: no question in these message trees has two answers of "
                                        "different rank, so they give no preference pairs."):
        load_records(str(path), ("preference",))


def test_message_trees_with_no_answer_are_refused_in_one_sentence(tmp_path):
    from studio.data.readers import DataError, read_rows

    path = tmp_path / "oasst.jsonl"
    path.write_text(json.dumps({"message_id": "m1", "parent_id": None, "role": "prompter", "text": "Hello?",
                                "lang": "en"}) + "\n")
    with pytest.raises(DataError, match=r"oasst.jsonl: these message trees hold no thread with an answer that "
                                        r"passed review \(left out: trees with no answer that passed review: 1\)"):
        read_rows(path)


def test_an_index_file_is_refused_in_one_sentence():
    index = report(os.path.join("llamafactory", "dataset_info.json"))
    assert index.format is None and "dataset_info.json" in index.reason
    assert "alpaca_en_demo.json, glaive_toolcall_en_demo.json, dpo_en_demo.json, llamafactory/ultrafeedback_binarized" \
        in index.reason
    from studio.data.load import load_records
    from studio.data.readers import DataError

    with pytest.raises(DataError) as refused:  # a training run says the same, without advice on mapping columns
        load_records(os.path.join(DATA, "llamafactory", "dataset_info.json"), ("sft", "text"))
    assert str(refused.value).startswith("dataset_info.json: this is LLaMA-Factory's dataset_info.json")
    assert "map" not in str(refused.value).split("open one of the files")[1]


@pytest.mark.parametrize("row, fmt, prompt", [
    ({"prompt": [{"role": "user", "content": "hi"}], "input": "ctx", "chosen": "a", "rejected": "b"},
     "preference", [{"role": "user", "content": "hi"}]),
    ({"prompt": "hi", "history": [{"role": "user", "content": "x"}], "chosen": "a", "rejected": "b"},
     "preference", [{"role": "user", "content": "hi"}]),
    ({"input": "unrelated", "chosen": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
      "rejected": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "b"}]},
     "preference_messages", [{"role": "user", "content": "q"}]),
    ({"conversations": [{"from": "human", "value": "q"}], "question": "other", "chosen": {"from": "gpt", "value": "a"},
      "rejected": {"from": "gpt", "value": "b"}}, "preference_messages", [{"role": "user", "content": "q"}]),
])
def test_input_and_history_columns_count_only_in_alpacas_shape(row, fmt, prompt):
    """A prompt column beside an input or history column that is not Alpaca's keeps reading as before."""
    guess = detect([row])
    records, issues = normalise([row], guess.name, guess.mapping)
    assert guess.name == fmt and not issues and records[0]["prompt"] == prompt


def test_turns_after_the_last_answer_are_cut_and_counted(tmp_path):
    """Cut-off chat logs (ShareGPT dumps) often end on a question nobody answered."""
    rows = [{"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!"},
                               {"from": "human", "value": "Are you there?"}]},
            {"conversations": [{"from": "human", "value": "2+2?"}, {"from": "gpt", "value": "4"}]}]
    path = tmp_path / "sharegpt.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    r = build_report(read_rows(path))
    assert r.format == "sharegpt" and len(r.usable) == 2 and not r.issues
    assert [m["content"] for m in r.usable[0]["messages"]] == ["Hi", "Hello!"]
    assert "1 conversation ends on turns after the last answer" in " ".join(r.notes)
    assert not any("after the last answer" in n for n in report("sharegpt.jsonl").notes)


def _jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_message_rows_are_known_by_all_their_columns_whatever_the_first_row_leaves_out(tmp_path):
    """Writers that drop null fields leave parent_id off the roots; keys may be capitalised; the first
    line may be broken; repeated ids and stray rows are counted, not silently lost."""
    rows = ['{"message_id": "r1", "role": "prompter", "te',  # a cut-off line
            {"Message_ID": "r1", "Role": "prompter", "Text": "Name a colour."},
            {"Message_ID": "a1", "Parent_ID": "r1", "Role": "assistant", "Text": "Blue.", "Rank": 1},
            {"Message_ID": "a2", "Parent_ID": "r1", "Role": "assistant", "Text": "Green.", "Rank": 0},
            {"Message_ID": "a2", "Parent_ID": "r1", "Role": "assistant", "Text": "Again.", "Rank": 0},
            {"messages": [{"role": "user", "content": "stray"}]}]
    r = build_report(read_rows(_jsonl(tmp_path / "m.jsonl", rows)))
    assert r.format == "messages" and [m["content"] for m in r.usable[0]["messages"]] == ["Name a colour.", "Green."]
    assert "m.jsonl: 6 message rows joined into 1 conversation" in r.notes[0]
    assert "rows that are not a message (no message_id): 2; repeated message_ids (the first kept): 1" in r.notes[1]
    pairs = build_report(read_rows(tmp_path / "m.jsonl"), fmt="preference")
    assert [(p["chosen"][0]["content"], p["rejected"][0]["content"]) for p in pairs.usable] == [("Green.", "Blue.")]


def test_nested_trees_are_known_when_the_first_has_no_replies_and_deep_ones_are_read(tmp_path):
    deep = node = {"message_id": "d0", "role": "prompter", "text": "q0"}
    for n in range(1, 300):  # 600 levels of JSON: deep, as far as a JSON reader goes
        child = {"message_id": f"d{n}", "role": "assistant" if n % 2 else "prompter", "text": f"t{n}", "rank": 0}
        node["replies"] = [child]
        node = child
    rows = [{"message_tree_id": "lonely", "prompt": {"message_id": "x", "role": "prompter", "text": "Hi?"}},
            {"message_tree_id": "deep", "prompt": deep}, {"message_tree_id": "odd", "prompt": "not a tree"}]
    r = build_report(read_rows(_jsonl(tmp_path / "t.jsonl", rows)))
    assert r.format == "messages" and len(r.usable) == 1 and len(r.usable[0]["messages"]) == 300
    assert "left out: rows that are not a tree: 1; trees with no answer that passed review: 1" in r.notes


def test_a_problem_in_a_joined_tree_names_the_tree(tmp_path):
    rows = [{"message_id": "q1", "parent_id": None, "role": "prompter", "text": "Hi?", "message_tree_id": "q1"},
            {"message_id": "q2", "parent_id": "q1", "role": "assistant", "text": "Hello.", "message_tree_id": "q1"},
            {"message_id": "b1", "parent_id": None, "role": "assistant", "text": "Odd root.", "message_tree_id": "b1"}]
    r = build_report(read_rows(_jsonl(tmp_path / "m.jsonl", rows)))
    assert len(r.usable) == 1
    assert r.problem_rows()[0]["where"] == "tree b1" and "opens with assistant" in r.problem_rows()[0]["problem"]


def test_a_pair_whose_own_scores_do_not_prefer_the_chosen_answer_is_a_problem_row(tmp_path):
    rows = [json.loads(x) for x in open(os.path.join(DATA, "ultrafeedback_binarized.jsonl"))]
    rows[1]["score_chosen"] = rows[1]["score_rejected"] = 4.0
    rows[2]["score_chosen"], rows[2]["score_rejected"] = 2.0, 7.5
    r = build_report(read_rows(_jsonl(tmp_path / "uf.jsonl", rows)))
    assert r.format is not None and r.kind == "preference" and len(r.usable) == 1
    assert [(p["where"], p["field"], p["problem"]) for p in r.problem_rows()] == [
        ("line 2", "score_chosen", "'score_chosen' (4) is not above 'score_rejected' (4): the pair prefers neither answer"),
        ("line 3", "score_chosen", "'score_chosen' (2) is not above 'score_rejected' (7.5): the pair prefers the "
                                   "rejected answer")]
    assert len(report("ultrafeedback_binarized.jsonl").usable) == 3
    as_text = tmp_path / "uf.csv"  # a CSV gives its scores as text
    as_text.write_text("prompt,chosen,rejected,score_chosen,score_rejected\nHi?,Hello.,Go away.,3.0,9.0\n"
                       "Bye?,Goodbye.,No.,8,2\n")
    r = build_report(read_rows(as_text))
    assert len(r.usable) == 1 and "'score_chosen' (3) is not above 'score_rejected' (9)" in r.problem_rows()[0]["problem"]
    swapped = build_report(read_rows(as_text), mapping={"chosen": "rejected", "rejected": "chosen"})
    assert len(swapped.usable) == 2  # mapped the other way round on purpose: the scores are not checked


@pytest.mark.parametrize("row, left_out", [
    ({"document": "The council met on Monday ...", "summary": "The council met.", "id": "3412"}, "'summary'"),  # XSum
    ({"title": "Printer", "body": "It will not print.", "answer": "Update the driver."}, "'answer'"),
    ({"text": "Translate: the cat sleeps", "target": "Die Katze schläft."}, "'target'"),
    ({"conversation_id": "c1", "turn": 1, "role": "user", "content": "Hello"}, "'role'"),
])
def test_a_text_column_beside_more_text_is_not_taken_for_plain_text(row, left_out):
    """Summaries, answers and targets beside a document would be dropped in silence if the file were read as
    plain text: it is left to be mapped, naming what would be left out."""
    found = detect([row])
    assert found.name is None and f"then {left_out} would not be trained on" in found.reason


@pytest.mark.parametrize("row", [
    {"id": "12", "url": "https://en.wikipedia.org/wiki/Oak", "title": "Oak", "text": "An oak is a tree ..."},  # Wikipedia
    {"text": "A web page ...", "timestamp": "2019-04-25T12:57:54Z", "url": "https://example.com"},  # C4
    {"content": "def f(): pass", "repo_name": "me/tools", "path": "f.py", "license": "mit", "size": 13},  # code
    {"text": "great film", "label": 1}, {"text": "A document.", "tags": ["a", "b"]},
    {"text": "great film", "label": "1"}, {"text": "great film", "sentiment": "positive"},  # a CSV's labels are text
    {"text": "A page ...", "id": "<urn:uuid:1>", "dump": "CC-MAIN-2013-20", "url": "https://example.com",  # FineWeb
     "file_path": "s3://commoncrawl/a.warc.gz", "language": "en", "language_score": 0.9, "token_count": 5},
])
def test_a_text_column_beside_what_describes_it_is_plain_text(row):
    assert detect([row]).name == "text"


def test_instruction_data_with_a_label_column_says_how_to_read_it_for_sft(tmp_path):
    """A 0/1 label beside instruction and output reads as rated answers (KTO's data); a stage that needs
    instruction data says which format reads the same file for it, and reads it so when told."""
    from studio.data.load import load_records
    from studio.data.readers import DataError

    path = tmp_path / "sentiment.jsonl"
    path.write_text("".join(json.dumps({"instruction": "Classify the sentiment.", "input": text, "output": label,
                                        "label": n}) + "\n" for text, label, n in
                            (("A gripping film.", "positive", 1), ("Dull.", "negative", 0))))
    with pytest.raises(DataError, match=r"holds rated answers .* the stages that train on it: KTO .*; or read it as "
                                        r"alpaca \(data.format: alpaca\), leaving label aside\.$"):
        load_records(str(path), ("sft",))
    records, _ = load_records(str(path), ("sft",), fmt="alpaca")
    assert [r["messages"][-1]["content"] for r in records] == ["positive", "negative"]
