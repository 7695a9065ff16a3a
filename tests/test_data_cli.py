"""`studio data inspect` and `studio data convert` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess

from helpers import PYTHON, ROOT, subprocess_env

DATA = os.path.join(os.path.dirname(__file__), "assets", "data")


def studio(*args):
    return subprocess.run([PYTHON, "-m", "studio", *args], capture_output=True, text=True, cwd=ROOT,
                          env=subprocess_env(), timeout=120)


def test_inspect_json_reports_format_rows_and_issues():
    out = studio("data", "inspect", os.path.join(DATA, "openai.jsonl"), "--json", "--model", "")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["format"] == "messages" and report["rows"] == 5 and report["usable_rows"] == 2
    assert {i["where"] for i in report["issues"]} == {"line 3", "line 4", "line 5"}


def test_inspect_text_output_lists_problem_lines():
    out = studio("data", "inspect", os.path.join(DATA, "sharegpt.jsonl"), "--model", "")
    assert out.returncode == 0
    assert "line 4" in out.stdout and "unknown role 'robot'" in out.stdout


def test_unusable_file_exits_1_with_one_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": 1}\n{"b": 2}\n')
    out = studio("data", "inspect", str(bad), "--model", "")
    assert out.returncode == 1
    assert out.stderr.strip().count("\n") == 0 and "no known format matches" in out.stderr
    assert "columns: a, b  (name the format and its columns: --format NAME --map field=column" in out.stdout
    broken = tmp_path / "broken.json"
    broken.write_bytes(b'[{"text": "a"')
    out = studio("data", "inspect", str(broken))
    assert out.returncode == 1 and out.stderr.startswith("error: broken.json line 1: the JSON ends early")
    assert "Traceback" not in out.stderr


def test_convert_to_messages_and_preference(tmp_path):
    out = studio("data", "convert", os.path.join(DATA, "alpaca.json"), "--to", "messages",
                 "--out", str(tmp_path / "m.jsonl"))
    assert out.returncode == 0, out.stderr
    assert "rows written: 4" in out.stdout and "1 unusable row skipped" in out.stdout
    rows = [json.loads(x) for x in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert all(r["messages"][-1]["role"] == "assistant" for r in rows)
    out = studio("data", "convert", os.path.join(DATA, "hh.jsonl"), "--to", "preference",
                 "--out", str(tmp_path / "p.jsonl"))
    assert out.returncode == 0 and "rows written: 2" in out.stdout
    row = json.loads((tmp_path / "p.jsonl").read_text().splitlines()[0])
    assert set(row) == {"prompt", "chosen", "rejected"}
    wrong = studio("data", "convert", os.path.join(DATA, "hh.jsonl"), "--to", "messages",
                   "--out", str(tmp_path / "x.jsonl"))
    assert wrong.returncode == 1 and "convert it --to preference" in wrong.stderr
    assert not (tmp_path / "x.jsonl").exists()


def test_columns_mapped_by_hand_on_the_command_line(tmp_path):
    odd = tmp_path / "odd.jsonl"
    odd.write_text('{"question": "2+2?", "answer_text": "4"}\n{"question": "3+3?", "answer_text": "6"}\n')
    out = studio("data", "inspect", str(odd), "--model", "")
    assert out.returncode == 1 and "no known format matches" in out.stderr
    out = studio("data", "convert", str(odd), "--to", "messages", "--out", str(tmp_path / "m.jsonl"),
                 "--format", "prompt_completion", "--map", "completion=answer_text")
    assert out.returncode == 0 and "rows written: 2" in out.stdout, out.stderr
    failed = studio("data", "inspect", str(tmp_path / "none.jsonl"), "--json")
    assert failed.returncode == 1 and json.loads(failed.stdout)["ok"] is False


def test_inspect_measures_with_the_runs_model_and_max_length(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("model: {name: tiny}\ndata: {train: x.jsonl, max_length: 32}\n")
    out = subprocess.run([PYTHON, "-m", "studio", "data", "inspect", str(ROOT / "assets" / "data" / "support_sft.jsonl"),
                          "--config", str(config), "--json"], capture_output=True, text=True, cwd=ROOT,
                         env=subprocess_env(), timeout=120)
    report = json.loads(out.stdout)
    assert report["tokens"]["max_length"] == 32 and report["tokens"]["min"] > 32
    assert sum(report["issue_counts"].values()) == report["rows"]  # every demo row is longer than 32 tokens


def test_columns_mapped_in_the_run_config_are_used_by_inspect_and_by_training(tmp_path):
    from studio.config import load_config
    from studio.methods.common import train_and_eval

    data = tmp_path / "faq.jsonl"
    data.write_text("\n".join(json.dumps({"ask": f"Question {i}?", "reply": f"Answer {i}.", "id": i})
                              for i in range(6)) + "\n")
    config = tmp_path / "run.yaml"
    config.write_text(f"data: {{train: {data}, format: prompt_completion, map: {{prompt: ask, completion: reply}}}}\n"
                      "train: {max_steps: 1}\n")
    unmapped = studio("data", "inspect", str(data), "--json", "--model", "")
    assert json.loads(unmapped.stdout)["format"] is None and unmapped.returncode == 1
    mapped = json.loads(studio("data", "inspect", str(data), "--config", str(config), "--json").stdout)
    assert mapped["format"] == "prompt_completion" and mapped["usable_rows"] == 6
    train, _ = train_and_eval(load_config(config), ("sft",))
    assert train[2]["messages"] == [{"role": "user", "content": "Question 2?"},
                                    {"role": "assistant", "content": "Answer 2."}]


def test_a_mapped_column_the_file_lacks_is_named(tmp_path):
    data = tmp_path / "faq.jsonl"
    data.write_text(json.dumps({"ask": "Q?", "reply": "A."}) + "\n")
    out = studio("data", "inspect", str(data), "--format", "prompt_completion", "--map", "prompt=question",
                 "--map", "completion=reply", "--model", "")
    assert out.returncode == 1 and "has no column 'question'; its columns are ask, reply" in out.stderr
    assert "Traceback" not in out.stderr


def test_convert_writes_kto_and_prompt_only_data_and_names_the_right_target(tmp_path):
    out = tmp_path / "kto.jsonl"
    done = studio("data", "convert", os.path.join(DATA, "kto_messages.json"), "--to", "unpaired", "--out", str(out))
    assert done.returncode == 0 and "rows written: 3" in done.stdout and "1 unusable row skipped" in done.stdout
    first = json.loads(out.read_text().splitlines()[0])
    assert set(first) == {"prompt", "completion", "label"} and first["label"] is True
    wrong = studio("data", "convert", os.path.join(DATA, "prompts.csv"), "--to", "messages", "--out",
                   str(tmp_path / "x.jsonl"))
    assert wrong.returncode == 1 and "convert it --to prompts" in wrong.stderr


def test_a_broken_tokenizer_folder_is_one_sentence_naming_it(tmp_path):
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "tokenizer_config.json").write_text("[]")
    (broken / "config.json").write_text('{"model_type": "llama"}')
    out = studio("data", "inspect", os.path.join(DATA, "openai.jsonl"), "--model", str(broken))
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.startswith(f"error: The tokenizer of '{broken}' could not be loaded")


def test_inspect_reads_a_saved_dataset_by_name_or_by_its_version_folder(tmp_path):
    from studio.data.store import save_dataset
    from studio.workspace import Workspace

    ws = Workspace.open(tmp_path / "ws")
    records = [{"messages": [{"role": "user", "content": f"question {n}"}, {"role": "assistant", "content": "yes"}]}
               for n in range(10)]
    version = save_dataset(ws, "helpdesk", records, "sft", eval_fraction=0.2, seed=1)
    for source, rows in (("helpdesk", 8), ("helpdesk:eval", 2), (str(version), 8)):
        out = studio("data", "inspect", source, "--workspace", str(ws.root), "--json", "--model", "")
        assert out.returncode == 0, out.stderr
        got = json.loads(out.stdout)
        assert (got["format"], got["rows"], got["usable_rows"]) == ("messages", rows, rows)
    out = studio("data", "inspect", "nothing-saved", "--workspace", str(ws.root))
    assert out.returncode == 1 and out.stderr.strip() == "error: nothing-saved: no such file."
    assert not (tmp_path / "elsewhere").exists()
    out = studio("data", "inspect", "helpdesk", "--workspace", str(tmp_path / "elsewhere"))
    assert out.returncode == 1 and not (tmp_path / "elsewhere").exists()  # no workspace is made for a lookup


def test_convert_keeps_its_input_writes_only_jsonl_and_gives_prompts_and_tree_pairs(tmp_path):
    src = tmp_path / "hh.jsonl"
    src.write_bytes(open(os.path.join(DATA, "hh.jsonl"), "rb").read())
    before = src.read_bytes()
    same = studio("data", "convert", str(src), "--to", "preference", "--out", str(src), "--force")
    assert same.returncode == 1 and "is the file being converted" in same.stderr and src.read_bytes() == before
    csv_out = studio("data", "convert", str(src), "--to", "preference", "--out", str(tmp_path / "p.csv"))
    assert csv_out.returncode == 1 and "name the file with .jsonl" in csv_out.stderr
    assert not (tmp_path / "p.csv").exists()

    prompts = tmp_path / "prompts.jsonl"  # chat data: each conversation up to its last answer
    done = studio("data", "convert", os.path.join(DATA, "sharegpt.jsonl"), "--to", "prompts", "--out", str(prompts))
    assert done.returncode == 0, done.stderr
    rows = [json.loads(x) for x in prompts.read_text().splitlines()]
    assert rows and all(set(r) == {"prompt", "reference"} and r["prompt"][-1]["role"] == "user" for r in rows)
    assert rows[0]["reference"] == "4"  # the answer each prompt had, for the rule rewards of RLHF
    again = studio("data", "inspect", str(prompts), "--model", "")
    assert again.returncode == 0 and "Prompts only" in again.stdout, again.stdout
    assert "reference <- reference" in again.stdout, again.stdout
    tools = tmp_path / "tool_prompts.jsonl"  # tool-calling chats: up to the question, tools kept
    done = studio("data", "convert", os.path.join(DATA, "openai_tools.jsonl"), "--to", "prompts", "--out", str(tools))
    assert done.returncode == 0 and "rows written: 2" in done.stdout, done.stdout + done.stderr  # 2 of 4 are broken
    rows = [json.loads(x) for x in tools.read_text().splitlines()]
    assert all(r["prompt"][-1]["role"] == "user" and r.get("tools") for r in rows)
    again = studio("data", "inspect", str(tools), "--model", "", "--json")
    assert json.loads(again.stdout)["usable_rows"] == len(rows), again.stdout

    pairs = tmp_path / "pairs.jsonl"  # message trees: the pairs their ranked answers give
    done = studio("data", "convert", os.path.join(DATA, "oasst2_trees.jsonl"), "--to", "preference",
                  "--out", str(pairs))
    assert done.returncode == 0 and "rows written: 3" in done.stdout, done.stderr
    assert "note: oasst2_trees.jsonl: 3 preference pairs from the ranked answers in 3 trees" in done.stdout


def test_a_format_chosen_without_its_columns_names_the_file(tmp_path):
    out = studio("data", "inspect", os.path.join(DATA, "sharegpt.jsonl"), "--format", "hh", "--model", "")
    assert out.returncode == 1 and out.stderr.startswith(
        "error: sharegpt.jsonl: the hh format (Anthropic HH (Human:/Assistant: transcripts)) needs a column for chosen")
