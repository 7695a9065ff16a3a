"""GGUF export of a real run (80 steps of the tiny preset): the file transformers reads back
(`gguf_file=`) answers greedily exactly as the studio's chat does, its tokenizer splits text the same
way, q8_0 is smaller and still close, and the Ollama Modelfile's template rebuilds the chat template."""

from __future__ import annotations

import json
import subprocess

import pytest
from helpers import PYTHON, ROOT, copy_run, subprocess_env

from studio.chat.engine import GenerationSettings, LoadedModel, load_for_chat, stream_reply
from studio.chat.modelfile import _rebuild, go_template, modelfile, role_pieces
from studio.errors import StudioError
from studio.workspace import Workspace

pytestmark = pytest.mark.slow
EVAL = ROOT / "assets" / "data" / "support_eval.jsonl"


@pytest.fixture(scope="module")
def run(tmp_path_factory, house_sft_run):
    ws = Workspace.open(tmp_path_factory.mktemp("gguf") / "ws")
    return ws, copy_run(house_sft_run, ws)


def questions(n: int) -> list[list[dict[str, str]]]:
    with open(EVAL, encoding="utf-8") as fh:
        rows = [json.loads(line)["messages"] for _, line in zip(range(n), fh)]
    return [[m for m in turns if m["role"] != "assistant"] for turns in rows]


def greedy(loaded: LoadedModel, conversations) -> list[str]:
    settings = GenerationSettings(max_new_tokens=48, temperature=0.0)
    return [list(stream_reply(loaded, c, settings))[-1] for c in conversations]


def read_back(path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name)
    tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    return LoadedModel(path.name, model.eval(), tokenizer)


def test_the_cli_writes_f16_that_transformers_reads_back_with_the_same_answers(run, tmp_path):
    ws, run_dir = run
    out = tmp_path / "support.gguf"
    done = subprocess.run([PYTHON, "-m", "studio", "export", run_dir.name, "--gguf", "--out", str(out),
                           "--workspace", str(ws.root)], capture_output=True, text=True, cwd=ROOT,
                          env=subprocess_env(), timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(out)
    assert f"Ollama: ollama create support -f {tmp_path / 'support.Modelfile'}" in done.stderr
    studio = load_for_chat(run_dir.name, ws)
    back = read_back(out)
    conversations = questions(6)
    assert greedy(back, conversations) == greedy(studio, conversations)
    text = "Dear team\nOrder 41810 and 7 items  ago,\n\nthanks"
    assert back.tokenizer(text)["input_ids"] == studio.tokenizer(text, add_special_tokens=False)["input_ids"]
    assert back.tokenizer.apply_chat_template(conversations[0], add_generation_prompt=True) == \
        studio.tokenizer.apply_chat_template(conversations[0], add_generation_prompt=True)

    written = out.with_suffix(".Modelfile").read_text()
    assert written.startswith("FROM ./support.gguf\n") and 'PARAMETER stop "<|eos|>"' in written
    assert 'TEMPLATE """<|bos|>' in written and "{{ .Content }}" in written


def test_q8_0_is_smaller_and_keeps_the_answers_close(run, tmp_path):
    import torch

    from studio.chat.export import export_gguf

    ws, run_dir = run
    f16 = export_gguf(ws, run_dir.name, tmp_path / "a.gguf", quant="f16")
    q8 = export_gguf(ws, run_dir.name, tmp_path / "b.gguf", quant="q8_0")
    assert q8.stat().st_size < 0.7 * f16.stat().st_size
    studio, back = load_for_chat(run_dir.name, ws), read_back(q8)
    agree, positions, widest = 0, 0, 0.0
    for conversation in questions(8):
        ids = studio.tokenizer.apply_chat_template(conversation, add_generation_prompt=True, return_tensors="pt",
                                                   return_dict=True)["input_ids"]
        with torch.no_grad():
            want, got = studio.model(ids).logits, back.model(ids).logits
        agree += int((want.argmax(-1) == got.argmax(-1)).sum())
        positions += ids.shape[1]
        widest = max(widest, (want - got).abs().max().item())
    # 8-bit blocks: close, not equal (the base tiny model: 99.5% of next-token picks agree, logits within 0.12)
    assert agree / positions >= 0.98 and widest < 0.5, (agree / positions, widest)


def test_refusals_are_one_sentence(run, tmp_path):
    from studio.chat.export import export_gguf
    from studio.chat.gguf import pre_tokenizer_name

    ws, run_dir = run
    taken = tmp_path / "taken.gguf"
    taken.write_bytes(b"")
    with pytest.raises(StudioError, match="already exists; choose a new file name"):
        export_gguf(ws, run_dir.name, taken)
    with pytest.raises(StudioError, match="already exists and is not a GGUF file, so it is not replaced"):
        export_gguf(ws, run_dir.name, taken, replace=True)  # an empty file is not an earlier export
    first = export_gguf(ws, run_dir.name, tmp_path / "first.gguf")
    assert export_gguf(ws, run_dir.name, first, replace=True) == first and first.read_bytes()[:4] == b"GGUF"
    with pytest.raises(StudioError, match="f16, q8_0"):
        export_gguf(ws, run_dir.name, tmp_path / "x.gguf", quant="q4_k")
    with pytest.raises(StudioError, match="cannot name this tokenizer"):
        pre_tokenizer_name({"pre_tokenizer": {"type": "Metaspace"}})
    assert pre_tokenizer_name({"pre_tokenizer": {"type": "ByteLevel", "use_regex": True}}) == "gpt-2"
    done = subprocess.run([PYTHON, "-m", "studio", "export", "no-such-run", "--gguf", "--out", str(tmp_path / "y"),
                           "--workspace", str(ws.root)], capture_output=True, text=True, cwd=ROOT,
                          env=subprocess_env(), timeout=120)
    assert done.returncode != 0 and len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_scaled_rotary_positions_are_refused_rather_than_written_wrong(tmp_path):
    from studio.chat.gguf import write_gguf

    loaded = load_for_chat("tiny")
    loaded.model.config.rope_parameters = {"rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0}
    with pytest.raises(StudioError, match="scales them \\(llama3\\)"):
        write_gguf(loaded.model, loaded.tokenizer, tmp_path / "m.gguf")
    assert not (tmp_path / "m.gguf").exists()


def test_spare_embedding_rows_are_listed_as_tokens(tmp_path):
    """Qwen2 pads its embedding past the tokenizer; GGUF readers want one token per row."""
    import torch

    from studio.chat.gguf import write_gguf

    loaded = load_for_chat("tiny")
    loaded.model.resize_token_embeddings(4096 + 64)
    write_gguf(loaded.model, loaded.tokenizer, tmp_path / "m.gguf")
    back = read_back(tmp_path / "m.gguf")
    assert back.model.get_input_embeddings().weight.shape[0] == 4096 + 64 == back.tokenizer.vocab_size
    ids = torch.tensor([[2, 5, 300, 41]])
    with torch.no_grad():
        assert (loaded.model(ids).logits - back.model(ids).logits).abs().max().item() < 0.05


CHATML = ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
LLAMA3 = ("{{ bos_token }}{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\n\n' + "
          "m['content'] + '<|eot_id|>' }}{% endfor %}{% if add_generation_prompt %}"
          "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")
NUMBERED = ("{% for m in messages %}{{ loop.index|string + '. ' + m['role'] + ': ' + m['content'] + '\n' }}"
            "{% endfor %}{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}")


@pytest.mark.parametrize("template", [None, CHATML, LLAMA3])
def test_the_modelfile_template_rebuilds_the_chat_template(template):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(ROOT / "assets" / "tiny-model"))
    if template:
        tokenizer.chat_template = template
    pieces = role_pieces(tokenizer)
    assert pieces is not None
    turns = [("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello."), ("user", "Order 7?")]
    messages = [{"role": r, "content": t} for r, t in turns]
    assert _rebuild(pieces, turns) == tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                                                    tokenize=False)
    assert "{{ range .Messages }}" in go_template(pieces)


def test_a_template_that_depends_on_more_than_the_role_is_left_to_the_gguf_file():
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(ROOT / "assets" / "tiny-model"))
    tokenizer.chat_template = NUMBERED  # turn numbers: more than the role
    assert role_pieces(tokenizer) is None
    text = modelfile("m.gguf", tokenizer)
    assert "TEMPLATE" not in text.replace("template stored", "") and "Ollama uses the template" in text


def test_the_command_names_force_only_where_an_earlier_export_is_in_the_way(run, tmp_path, capsys):
    from studio.cli import main

    ws, run_dir = run
    out = tmp_path / "cli.gguf"
    assert main(["export", run_dir.name, "--gguf", "--out", str(out), "--workspace", str(ws.root)]) == 0
    assert main(["export", run_dir.name, "--gguf", "--out", str(out), "--workspace", str(ws.root)]) == 1
    assert "holds an earlier export; choose another --out, or add --force to replace it" in capsys.readouterr().err
    assert main(["export", run_dir.name, "--gguf", "--out", str(out), "--force", "--workspace", str(ws.root)]) == 0
    other = tmp_path / "notes.gguf"
    other.write_text("mine")
    assert main(["export", run_dir.name, "--gguf", "--out", str(other), "--force", "--workspace", str(ws.root)]) == 1
    assert "is not a GGUF file, so it is not replaced" in capsys.readouterr().err and other.read_text() == "mine"
