"""Tool-calling data (OpenAI tool_calls, LLaMA-Factory's function_call/observation turns) is read, kept
whole, rendered through the chat template with its tools, and trained with loss on the assistant's calls
and answers, not on the tool's replies."""

from __future__ import annotations

import json
import os

import pytest
from helpers import ROOT

from studio.config import load_config
from studio.data.readers import read_rows
from studio.data.validate import build_report
from studio.paths import PRESETS

DATA = os.path.join(os.path.dirname(__file__), "assets", "data")


def report(name):
    return build_report(read_rows(os.path.join(DATA, name)))


def test_openai_tool_calls_are_kept_with_parsed_arguments_and_tool_names():
    r = report("openai_tools.jsonl")
    assert r.format == "messages" and r.mapping["tools"] == "tools"
    first = r.records[0]["messages"]
    assert first[2] == {"role": "assistant", "content": "", "tool_calls": [
        {"type": "function", "function": {"name": "get_order_status", "arguments": {"order_id": "301"}},
         "id": "call_a1"}]}
    assert first[3]["role"] == "tool" and first[3]["name"] == "get_order_status"
    assert first[3]["tool_call_id"] == "call_a1"
    assert [t["function"]["name"] for t in r.records[0]["tools"]] == ["get_order_status", "start_refund"]
    assert len(r.records[1]["messages"][1]["tool_calls"]) == 2  # parallel calls stay in one turn
    problems = {p["where"]: p["problem"] for p in r.problem_rows()}
    assert "arguments of tool call 'start_refund' are not valid JSON" in problems["line 3"]
    assert "tool reply at turn 2 answers no tool call" in problems["line 4"]
    assert len(r.usable) == 2


def test_llamafactory_function_call_turns_become_tool_calls():
    r = report("glaive_toolcall.json")
    assert r.format == "sharegpt"
    msgs = r.records[1]["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "tool", "assistant"] * 2
    assert msgs[1]["tool_calls"][0]["function"] == {"name": "start_refund",
                                                    "arguments": {"order_id": "77", "reason": "broken"}}
    assert r.records[1]["tools"][0]["function"]["name"] == "get_order_status"  # JSON text decoded
    assert "tools" not in r.records[2]  # an empty tools cell: a plain conversation
    problems = {p["where"]: p for p in r.problem_rows()}
    assert problems["row 4"]["field"] == "conversations"
    assert "turn 2 of 'conversations': the tool call is not valid JSON" in problems["row 4"]["problem"]


def test_tiny_template_renders_tools_and_calls_and_plain_chats_as_before():
    from studio.models.loading import load_tokenizer, renders_tool_calls

    tok = load_tokenizer("tiny")
    rec = report("openai_tools.jsonl").records[0]
    text = tok.apply_chat_template(rec["messages"], tools=rec["tools"], tokenize=False)
    assert text.startswith('<|bos|><|tools|>\n{"name": "get_order_status"')
    assert '<tool_call>{"name": "get_order_status", "arguments": {"order_id": "301"}}</tool_call>' in text
    plain = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    assert tok.apply_chat_template(plain, tokenize=False) == "<|bos|><|user|>\nHi<|eos|><|assistant|>\nHello<|eos|>"
    assert renders_tool_calls(tok)


def test_inspection_measures_tool_rows_with_their_calls(tmp_path):
    from studio.data.validate import inspect_file

    r = inspect_file(os.path.join(DATA, "openai_tools.jsonl"), max_length=60)
    long_rows = [i for i in r.issues if "longer than the max length" in i.message]
    assert {i.index for i in long_rows} == {0, 1}  # tool descriptions count towards the length


def _trained_text(trainer, row=0):
    ex = trainer.train_dataset[row]
    tok = trainer.processing_class
    ids = [t for t, lab in zip(ex["input_ids"], ex["labels"]) if lab != -100]
    return tok.decode(ids), tok.decode(ex["input_ids"])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["openai_tools.jsonl", "glaive_toolcall.json"])
def test_sft_trains_on_calls_and_answers_not_on_tool_replies(tmp_path, name):
    from studio.methods import sft

    cfg = load_config(PRESETS / "tiny-sft-lora.yaml", [f"data.train={os.path.join(DATA, name)}", "train.max_steps=2",
                                                       "train.batch_size=2", "data.max_length=1024"])
    (tmp_path / "run").mkdir()
    trainer = sft.build_trainer(cfg, tmp_path / "run", [])
    trained, whole = _trained_text(trainer, 0)
    assert "<|tools|>" in whole and '"description"' in whole
    assert "<tool_call>" in trained and ("get_order_status" in trained or "start_refund" in trained)
    assert trained.endswith("<|eos|>") and trained.count("<|eos|>") >= 2  # the call's turn and the answer
    assert '"status"' not in trained and '"refund": "opened"' not in trained  # tool replies are context
    assert "<|tools|>" not in trained
    trainer.train()
    assert trainer.state.global_step == 2


@pytest.mark.slow
def test_without_a_training_template_every_call_is_still_a_target(tmp_path):
    """A template with no {% generation %} markers: each assistant turn of a tool conversation becomes a
    completion of its own, so the calls are learnt and not only the last answer."""
    import shutil

    from studio.methods import sft

    model = tmp_path / "plain-template"
    shutil.copytree(ROOT / "assets" / "tiny-model", model)
    jinja = model / "chat_template.jinja"
    jinja.write_text(jinja.read_text().replace("{% generation %}", "").replace("{% endgeneration %}", ""))
    cfg = load_config(PRESETS / "tiny-sft-lora.yaml", [f"data.train={os.path.join(DATA, 'openai_tools.jsonl')}",
                                                       f"model.name={model}", "train.max_steps=1", "data.max_length=1024"])
    (tmp_path / "run").mkdir()
    trainer = sft.build_trainer(cfg, tmp_path / "run", [])
    targets = [_trained_text(trainer, i)[0] for i in range(len(trainer.train_dataset))]
    assert len(targets) == 4  # two conversations, two assistant turns each
    assert any(t.startswith('<tool_call>{"name": "get_order_status", "arguments": {"order_id": "301"}}')
               for t in targets)
    assert any(t.startswith("Yes: order 301 was delivered.") for t in targets)


@pytest.mark.slow
def test_a_template_without_tool_support_is_refused_in_one_sentence(tmp_path):
    import shutil

    from studio.errors import StudioError
    from studio.methods import sft

    model = tmp_path / "no-tools"
    shutil.copytree(ROOT / "assets" / "tiny-model", model)
    (model / "chat_template.jinja").write_text(
        "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}")
    cfg = load_config(PRESETS / "tiny-sft-lora.yaml", [f"data.train={os.path.join(DATA, 'openai_tools.jsonl')}",
                                                       f"model.name={model}", "train.max_steps=1", "data.max_length=1024"])
    (tmp_path / "run").mkdir()
    with pytest.raises(StudioError, match="does not show them"):
        sft.build_trainer(cfg, tmp_path / "run", [])


def _rows(tmp_path, name, rows):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return build_report(read_rows(path))


def test_a_tools_column_that_starts_late_in_the_file_is_kept(tmp_path):
    plain = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
    tool = {"type": "function", "function": {"name": "get_order_status", "parameters": {"type": "object"}}}
    r = _rows(tmp_path, "late.jsonl", [plain] * 250 + [plain | {"tools": [tool]}])
    assert r.mapping.get("tools") == "tools" and r.records[-1]["tools"] == [tool]


def test_tool_schemas_and_arguments_from_parquet_lose_the_nulls_arrow_adds(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    def conversation(name, args):
        return [{"role": "user", "content": "Go"},
                {"role": "assistant", "content": "", "tool_calls": [{"type": "function",
                                                                      "function": {"name": name, "arguments": args}}]},
                {"role": "tool", "content": "done"}, {"role": "assistant", "content": "Done."}]
    rows = [{"messages": conversation("weather", {"city": "Paris"}),
             "tools": [{"type": "function", "function": {"name": "weather", "parameters": {
                 "type": "object", "properties": {"city": {"type": "string"}}}}}]},
            {"messages": conversation("stock", {"ticker": "ACME", "days": 3}),
             "tools": [{"type": "function", "function": {"name": "stock", "parameters": {
                 "type": "object", "properties": {"ticker": {"type": "string"}, "days": {"type": "integer"}}}}}]}]
    path = tmp_path / "tools.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    r = build_report(read_rows(path))
    first = r.records[0]
    assert first["messages"][1]["tool_calls"][0]["function"]["arguments"] == {"city": "Paris"}
    assert first["tools"][0]["function"]["parameters"]["properties"] == {"city": {"type": "string"}}


def test_parallel_calls_without_ids_name_their_replies_in_order(tmp_path):
    calls = json.dumps([{"name": "f", "arguments": {}}, {"name": "g", "arguments": {}}])
    r = _rows(tmp_path, "parallel.jsonl", [{"conversations": [
        {"from": "human", "value": "Both please"}, {"from": "function_call", "value": calls},
        {"from": "observation", "value": "F"}, {"from": "observation", "value": "G"},
        {"from": "gpt", "value": "Done."}]}])
    msgs = r.records[0]["messages"]
    assert [(m["content"], m["name"]) for m in msgs if m["role"] == "tool"] == [("F", "f"), ("G", "g")]


def test_the_older_openai_function_call_key_is_read(tmp_path):
    r = _rows(tmp_path, "legacy.jsonl", [{"messages": [
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": None, "function_call": {"name": "weather", "arguments": "{\"city\": \"Oslo\"}"}},
        {"role": "function", "name": "weather", "content": "cold"},
        {"role": "assistant", "content": "It is cold in Oslo."}]}])
    assert r.usable and r.records[0]["messages"][1]["tool_calls"][0]["function"] == {"name": "weather",
                                                                                      "arguments": {"city": "Oslo"}}
    bad = _rows(tmp_path, "bad.jsonl", [{"messages": [{"role": "user", "content": {"x": 1}},
                                                      {"role": "assistant", "content": "ok"}]}])
    assert bad.problem_rows()[0]["problem"] == "turn 1 of 'messages': 'messages' should be text, found an object"


@pytest.mark.slow
def test_turns_marked_weight_0_are_context_and_the_other_answers_train(tmp_path):
    """OpenAI's chat files may mark an assistant turn "weight": 0 (do not learn it): it stays in the
    conversation as context, and every other answer trains, in one pass over the conversation."""
    from studio.methods import sft

    long_chat = {"messages": [{"role": "user", "content": "Capital of Italy?"},
                              {"role": "assistant", "content": "Milan.", "weight": 0},
                              {"role": "user", "content": "No."}, {"role": "assistant", "content": "Rome."},
                              {"role": "user", "content": "And of Peru?"}, {"role": "assistant", "content": "Lima."}]}
    train = tmp_path / "weights.jsonl"
    train.write_text(open(os.path.join(DATA, "openai_weights.jsonl")).read() + json.dumps(long_chat) + "\n")
    held_out = tmp_path / "held_out.jsonl"  # no weights: the eval loss still falls on the answers only
    held_out.write_text(json.dumps({"messages": [{"role": "user", "content": "Capital of Chile?"},
                                                 {"role": "assistant", "content": "Santiago."}]}) + "\n")
    cfg = load_config(PRESETS / "tiny-sft-lora.yaml", [f"data.train={train}", f"data.eval={held_out}",
                                                       "train.max_steps=2", "train.batch_size=2"])
    (tmp_path / "run").mkdir()
    trainer = sft.build_trainer(cfg, tmp_path / "run", [])
    examples = [_trained_text(trainer, i) for i in range(len(trainer.train_dataset))]
    assert len(examples) == 3  # one example per conversation, however many answers it trains
    france = next((trained, whole) for trained, whole in examples if "France" in whole)
    assert "London." in france[1] and "London." not in france[0] and france[0].startswith("Paris.")
    assert any(trained.startswith("Madrid.") for trained, _ in examples)
    italy = next(trained for trained, whole in examples if "Italy" in whole)
    assert "Rome." in italy and "Lima." in italy and "Milan." not in italy
    ev = trainer.eval_dataset[0]
    tok = trainer.processing_class
    trained = tok.decode([t for t, lab in zip(ev["input_ids"], ev["labels"]) if lab != -100])
    assert trained.startswith("Santiago.") and "Chile" not in trained
    trainer.train()
    assert trainer.state.global_step == 2
