"""data.system: one system message for data that has none, kept with the run. It opens every training
conversation without a system turn, and the run's chats, evaluations, `studio serve` and its Ollama
Modelfile send it too; a conversation with its own system message keeps that one. A real tiny run."""

from __future__ import annotations

import json

import pytest
from helpers import ROOT

from studio.chat.engine import load_for_chat
from studio.chat.export import model_card
from studio.chat.modelfile import modelfile
from studio.config import load_config
from studio.data.turns import with_default_system
from studio.methods import common
from studio.paths import PRESETS
from studio.train.worker import run_training
from studio.workspace import Workspace

pytestmark = pytest.mark.slow
SYSTEM = "Solve the problem, then give the final answer in \\boxed{}."
GSM8K = ROOT / "tests" / "assets" / "data" / "gsm8k.jsonl"


def test_the_system_message_opens_only_conversations_without_one():
    user = [{"role": "user", "content": "2+2?"}]
    records = [{"messages": [*user, {"role": "assistant", "content": "4"}], "reference": "4"},
               {"messages": [{"role": "system", "content": "Be terse."}, *user, {"role": "assistant", "content": "4"}]},
               {"prompt": user, "chosen": [{"role": "assistant", "content": "4"}], "rejected": []},
               {"prompt": [], "chosen": [{"role": "assistant", "content": "4"}], "rejected": []},
               {"text": "plain text"}]
    out = with_default_system(records, SYSTEM)
    assert out[0]["messages"][0] == {"role": "system", "content": SYSTEM} and out[0]["reference"] == "4"
    assert out[1] == records[1] and out[3] == records[3] and out[4] == records[4]
    assert out[2]["prompt"] == [{"role": "system", "content": SYSTEM}, *user]
    assert records[0]["messages"][0]["role"] == "user"  # the caller's records are not changed
    assert with_default_system(records, "  ") == records and with_default_system(records, None) == records


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    ws = Workspace.open(tmp_path_factory.mktemp("system") / "ws")
    cfg = load_config(PRESETS / "tiny-sft-lora.yaml", ["train.max_steps=2", "train.save_steps=1000", "data.eval=null",
                                                       f"data.train={GSM8K}", f"data.system={SYSTEM}"])
    run_dir = ws.new_run_dir("sft-system")
    run_training(cfg, run_dir)
    return ws, run_dir, cfg


def test_training_data_and_the_run_carry_the_system_message(run):
    ws, run_dir, cfg = run
    train, _ = common.train_and_eval(cfg, ("sft",))
    assert len(train) == 4 and all(row["messages"][0] == {"role": "system", "content": SYSTEM} for row in train)
    assert f"system: {SYSTEM}" in (run_dir / "config.yaml").read_text(encoding="utf-8").replace("'", "")
    loaded = load_for_chat(run_dir.name, ws)
    assert loaded.system == SYSTEM
    asked = [{"role": "user", "content": "2+2?"}]
    assert loaded.with_system(asked) == [{"role": "system", "content": SYSTEM}, *asked]
    own = [{"role": "system", "content": "Be terse."}, *asked]
    assert loaded.with_system(own) == own
    assert load_for_chat("tiny").system == ""  # a base model has no run config to bring one

    card = model_card(run_dir, "merged")
    assert SYSTEM in card and "send it too" in card
    text = modelfile("m.gguf", loaded.tokenizer, loaded.system)
    assert f'SYSTEM """{SYSTEM}"""' in text
    quoted = modelfile("m.gguf", loaded.tokenizer, 'Say """hi""".')
    assert 'SYSTEM "Say \\"\\"\\"hi\\"\\"\\"."' in quoted


def test_served_answers_get_the_system_message_unless_the_caller_sends_one(run):
    from fastapi.testclient import TestClient

    from studio.chat.engine import prompt_text
    from studio.chat.serve import ChatService, build_api

    ws, run_dir, _ = run
    loaded = load_for_chat(run_dir.name, ws)
    api = TestClient(build_api(ChatService(loaded, run_dir.name)), base_url="http://127.0.0.1")

    def prompt_tokens(messages):
        body = {"model": run_dir.name, "messages": messages, "max_tokens": 2, "temperature": 0}
        answer = api.post("/v1/chat/completions", content=json.dumps(body), headers={"content-type": "application/json"})
        assert answer.status_code == 200, answer.text
        return answer.json()["usage"]["prompt_tokens"]

    def counted(messages):
        return len(loaded.tokenizer(prompt_text(loaded.tokenizer, messages), add_special_tokens=False)["input_ids"])

    asked = [{"role": "user", "content": "How many rolls does she sell?"}]
    assert prompt_tokens(asked) == counted([{"role": "system", "content": SYSTEM}, *asked])
    own = [{"role": "system", "content": "Be terse."}, *asked]
    assert prompt_tokens(own) == counted(own)


def test_evaluation_asks_as_the_run_trained(run):
    from studio.chat.evaluate import eval_rows, evaluate_model

    ws, run_dir, _ = run
    loaded = load_for_chat(run_dir.name, ws)
    rows = eval_rows(str(GSM8K))
    with_it = evaluate_model(loaded.name, loaded.model, loaded.tokenizer, rows, system=loaded.system)
    without = evaluate_model(loaded.name, loaded.model, loaded.tokenizer, rows)
    assert with_it.loss != pytest.approx(without.loss)  # the system message reached the model's prompt
    assert all(r["messages"][0]["role"] == "user" for r in rows)  # the caller's rows stay as they were


def test_a_model_whose_template_takes_no_system_message_is_refused_before_a_run_exists(tmp_path):
    import shutil

    from studio.errors import StudioError
    from studio.train.runner import preflight

    folder = tmp_path / "no-system-model"  # the tiny model with a template that refuses system turns, as Gemma's does
    shutil.copytree(ROOT / "assets" / "tiny-model", folder)
    (folder / "chat_template.jinja").write_text(
        "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
        "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{% endfor %}", encoding="utf-8")
    cfg = load_config(PRESETS / "tiny-sft-lora.yaml", [f"model.name={folder}", f"data.train={GSM8K}"])
    preflight(cfg)  # without a system message the template is fine
    cfg = load_config(PRESETS / "tiny-sft-lora.yaml", [f"model.name={folder}", f"data.train={GSM8K}",
                                                       f"data.system={SYSTEM}"])
    with pytest.raises(StudioError, match="takes no system message \\(System role not supported\\)"):
        preflight(cfg)


def test_the_chat_tab_says_when_a_run_is_sent_its_own_system_message(run):
    from studio.ui.app import build_app
    from studio.ui.context import AppContext

    ws, run_dir, _ = run
    app = build_app(AppContext(workspace=ws))
    respond = next(f.fn for f in app.fns.values() if f.api_name == "chat_send")

    def last_info(system_prompt):
        said = list(respond("How many rolls?", [], [], run_dir.name, "tiny", False, system_prompt, 0.0, 1.0, 4, 1.0,
                            progress=lambda *a, **k: None))
        return said[-1][3]

    assert f"{run_dir.name} is sent the system message it trained with, «{SYSTEM}»" in last_info("")
    assert "system message it trained with" not in last_info("Be terse.")  # one typed in the box replaces it


def test_a_system_message_longer_than_the_max_length_is_refused_before_a_run_exists():
    from studio.errors import StudioError
    from studio.train.runner import preflight

    cfg = load_config(PRESETS / "tiny-sft-lora.yaml", [f"data.train={GSM8K}", "data.max_length=64",
                                                       "data.system=" + "Answer briefly. " * 40])
    with pytest.raises(StudioError, match="tokens long, and data.max_length is 64"):
        preflight(cfg)


def test_data_with_system_messages_of_its_own_is_not_trained_with_the_runs_and_the_run_does_not_claim_it(tmp_path):
    from studio.train.status import read_status

    ws = Workspace.open(tmp_path / "ws")
    demo = ROOT / "assets" / "data" / "support_sft.jsonl"  # every conversation opens with the house's system turn
    cfg = load_config(PRESETS / "tiny-sft-lora.yaml", ["train.max_steps=1", "train.save_steps=1000", "data.eval=null",
                                                       f"data.train={demo}", "data.system=Answer in one sentence."])
    run_dir = ws.new_run_dir("own-system")
    run_training(cfg, run_dir)
    status = read_status(run_dir)
    assert status.system_rows == 0 and "data.system was not used" in status.data_note
    assert load_for_chat(run_dir.name, ws).system == ""  # chats are not sent what it never trained with
    assert "Answer in one sentence." not in model_card(run_dir, "merged").split("## Training config")[0]


def test_the_run_counts_the_conversations_its_system_message_opened(run):
    from studio.train.status import read_status

    _, run_dir, _ = run
    assert read_status(run_dir).system_rows == 4 and "data.system" not in read_status(run_dir).data_note
