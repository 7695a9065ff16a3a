"""Chat engine, evaluation and export on the built-in tiny model and a real (few-step) LoRA run."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time

import pytest
from helpers import PYTHON, ROOT, free_port, subprocess_env

from studio.chat.engine import GenerationSettings, ModelCache, build_messages, load_for_chat, stream_reply
from studio.chat.evaluate import eval_rows, evaluate_model, generate_answers
from studio.chat.export import export_run, push_to_hub
from studio.config import load_config
from studio.errors import StudioError
from studio.paths import PRESETS
from studio.train.worker import run_training
from studio.workspace import Workspace

pytestmark = pytest.mark.slow
EVAL = ROOT / "assets" / "data" / "support_eval.jsonl"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A LoRA run of a few steps with a high learning rate, so the tuned model differs from the base."""
    ws = Workspace.open(tmp_path_factory.mktemp("chat-ws"))
    cfg = load_config(PRESETS / "tiny-sft-lora.yaml", ["train.max_steps=6", "train.save_steps=0"])
    run_dir = ws.new_run_dir("chat-test")
    run_training(cfg, run_dir)
    return ws, run_dir


def test_stream_yields_growing_text_and_stops_on_request():
    loaded = load_for_chat("tiny")
    msgs = build_messages([], "Hello, my order 12345 is late.", "You answer customer emails.")
    pieces = list(stream_reply(loaded, msgs, GenerationSettings(max_new_tokens=20)))
    assert len(pieces) >= 2 and all(b.startswith(a) for a, b in zip(pieces, pieces[1:]))
    stop = threading.Event()
    gen = stream_reply(loaded, msgs, GenerationSettings(max_new_tokens=400, temperature=1.0), stop)
    next(gen)
    stop.set()
    rest = list(gen)
    assert len(rest) < 50  # generation ended soon after the stop, far short of 400 tokens


def test_first_token_arrives_quickly():
    loaded = load_for_chat("tiny")
    msgs = build_messages([], "Where is my parcel?")
    list(stream_reply(loaded, msgs, GenerationSettings(max_new_tokens=4)))  # warm up
    start = time.perf_counter()
    next(stream_reply(loaded, msgs, GenerationSettings(max_new_tokens=32)))
    assert time.perf_counter() - start < 2.0  # the bench holds the 0.3 s target; this catches regressions


def test_merged_run_matches_adapter_attached_and_export_round_trips(trained, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ws, run_dir = trained
    rows = eval_rows(str(EVAL), limit=12)
    merged = load_for_chat(run_dir.name, ws)
    merged_answers = generate_answers(merged.model, merged.tokenizer, rows)
    base = AutoModelForCausalLM.from_pretrained(ROOT / "assets" / "tiny-model", dtype=torch.float32)
    attached = PeftModel.from_pretrained(base, str(run_dir / "adapter")).eval()
    tok = AutoTokenizer.from_pretrained(ROOT / "assets" / "tiny-model")
    assert generate_answers(attached, tok, rows) == merged_answers

    out = export_run(ws, run_dir.name, tmp_path / "merged", merged=True)
    plain = AutoModelForCausalLM.from_pretrained(out).eval()
    assert generate_answers(plain, AutoTokenizer.from_pretrained(out), rows) == merged_answers
    card = (out / "README.md").read_text()
    assert "base_model: tiny" in card and "| method | lora |" in card
    adapter = export_run(ws, run_dir.name, tmp_path / "adapter", merged=False)
    assert (adapter / "adapter_config.json").exists() and "peft" in (adapter / "README.md").read_text()
    with pytest.raises(StudioError, match="already exists and is not empty; choose a new folder"):
        export_run(ws, run_dir.name, tmp_path / "adapter", merged=False)
    (adapter / "stale.txt").write_text("old")  # replaced whole, the earlier export set aside, then removed
    assert export_run(ws, run_dir.name, adapter, merged=False, replace=True) == adapter.resolve()
    assert not (adapter / "stale.txt").exists() and (adapter / "adapter_config.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "mine.txt").write_text("keep")
    with pytest.raises(StudioError, match="already exists and is not empty; choose a new folder.$"):
        export_run(ws, run_dir.name, notes, merged=False)
    with pytest.raises(StudioError, match="does not hold an earlier export"):
        export_run(ws, run_dir.name, notes, merged=False, replace=True)
    assert (notes / "mine.txt").read_text() == "keep"
    hub_model = tmp_path / "downloaded"  # a model folder the studio did not write is never replaced
    shutil.copytree(ROOT / "assets" / "tiny-model", hub_model)
    with pytest.raises(StudioError, match="does not hold an earlier export of this studio"):
        export_run(ws, run_dir.name, hub_model, merged=False, replace=True)
    link = tmp_path / "latest"  # a link to an export: the export it names is replaced, the link stays
    link.symlink_to(adapter)
    assert export_run(ws, run_dir.name, link, merged=False, replace=True) == adapter.resolve()
    assert link.is_symlink() and (link / "adapter_config.json").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert export_run(ws, run_dir.name, empty, merged=False) == empty.resolve()
    assert (empty / "adapter_config.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_evaluate_reports_exact_match_and_loss(trained):
    ws, run_dir = trained
    rows = eval_rows(str(EVAL), limit=8)
    base = load_for_chat("tiny")
    result = evaluate_model("tiny", base.model, base.tokenizer, rows)
    assert result.rows == 8 and result.exact_match == 0.0 and result.loss > 0  # the base never saw the replies
    assert len(result.answers) == 8 and result.answers[0]["reference"]
    tuned = load_for_chat(run_dir.name, ws)
    tuned_result = evaluate_model(run_dir.name, tuned.model, tuned.tokenizer, rows)
    assert tuned_result.loss < result.loss  # six steps on the job already make its answers likelier


def test_cli_eval_json(trained):
    """A run is named by its id or by the name it was started with; either way the run keeps the evaluation."""
    ws, run_dir = trained
    for target in (run_dir.name, "chat-test"):
        out = subprocess.run([PYTHON, "-m", "studio", "eval", target, "--data", str(EVAL), "--limit", "4",
                              "--json", "--workspace", str(ws.root)], capture_output=True, text=True, cwd=ROOT,
                             env=subprocess_env(), timeout=300)
        assert out.returncode == 0, out.stderr
        got = json.loads(out.stdout)
        assert set(got) >= {"exact_match", "loss", "perplexity", "rows"} and got["rows"] == 4
        assert got["model"] == run_dir.name and got["trained_on"] == 0  # the eval file is held out
        assert "not held out" not in out.stderr
    kept = [json.loads(line) for line in (run_dir / "evaluations.jsonl").read_text().splitlines()]
    assert [e["model"] for e in kept] == [run_dir.name, run_dir.name] and kept[0]["loss"] == kept[1]["loss"]


def test_eval_rows_a_run_trained_on_are_counted(trained):
    """Scores on rows a run trained on are not held-out figures: the evaluation counts them (the demo's eval file
    shares none with its training file; the training file itself is all seen; whitespace and a system message of
    the run's own do not hide a row)."""
    from studio.chat.evaluate import trained_on

    ws, run_dir = trained
    assert trained_on(run_dir, eval_rows(str(EVAL), limit=20)) == 0
    seen = eval_rows(str(ROOT / "assets" / "data" / "support_sft.jsonl"), limit=6)
    respaced = [{"messages": [{"role": "system", "content": "Be brief."},
                              *[{**m, "content": f"  {m['content']} "} for m in r["messages"]]]} for r in seen]
    assert trained_on(run_dir, seen) == trained_on(run_dir, respaced) == 6
    assert trained_on(ws.runs / "no-such-run", seen) is None


def test_cache_holds_and_unloads():
    cache = ModelCache(capacity=1)
    first = cache.get("tiny")
    assert cache.get("tiny") is first and cache.loaded() == ["tiny"]
    assert cache.unload() == 1 and cache.loaded() == []


def test_push_without_network_is_one_sentence(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(StudioError, match="cannot be reached|refused") as info:
        push_to_hub(tmp_path / "x", "someone/model", token="hf_fake")
    assert "\n" not in str(info.value)


def test_reward_runs_are_not_chat_models(tmp_path):
    ws = Workspace.open(tmp_path)
    run_dir = ws.new_run_dir("r")
    (run_dir / "adapter").mkdir()
    (run_dir / "adapter" / "adapter_config.json").write_text("{}")
    (run_dir / "config.yaml").write_text("model: {name: tiny}\nmethod: {name: lora, stage: reward}\n")
    with pytest.raises(StudioError, match="reward model"):
        load_for_chat(run_dir.name, ws)


def test_a_qlora_run_chats_through_a_16bit_merge_and_says_so(tmp_path):
    ws = Workspace.open(tmp_path)
    cfg = load_config(PRESETS / "tiny-sft-qlora.yaml", ["train.max_steps=2", "train.save_steps=0"])
    run_dir = ws.new_run_dir("q")
    run_training(cfg, run_dir)
    loaded = load_for_chat(run_dir.name, ws)
    assert any("4-bit base" in n and "16-bit copy" in n for n in loaded.notes)
    assert not any("4bit" in type(m).__name__ for m in loaded.model.modules())
    text = list(stream_reply(loaded, build_messages([], "My order 55555 is late."), GenerationSettings(max_new_tokens=8)))
    assert text and isinstance(text[-1], str)


def test_long_conversations_are_cut_to_the_context_and_a_huge_message_refused():
    from studio.chat.engine import fit_to_context

    tiny = load_for_chat("tiny")
    context = tiny.model.config.max_position_embeddings
    history = []
    for n in range(40):  # about 40 * 30 tokens: well past the context
        history += [{"role": "user", "content": f"Where is order {n}? " * 3},
                    {"role": "assistant", "content": f"Order {n} ships tomorrow. " * 3}]
    msgs = build_messages(history, "And my refund?", "Be brief.")
    kept, note = fit_to_context(tiny, msgs, max_new_tokens=64)
    assert kept[0]["role"] == "system" and kept[-1]["content"] == "And my refund?"
    assert len(kept) < len(msgs) and "oldest exchanges were left out" in note
    n = len(tiny.tokenizer(tiny.tokenizer.apply_chat_template(kept, add_generation_prompt=True, tokenize=False),
                           add_special_tokens=False)["input_ids"])
    assert n <= context - 64
    assert fit_to_context(tiny, build_messages([], "hi"), 64) == (build_messages([], "hi"), "")
    with pytest.raises(StudioError, match="tokens; this model reads 512 in all"):
        fit_to_context(tiny, build_messages([], "refund " * 600), 64)
    # refused by its length alone, before the tokenizer sees it
    with pytest.raises(StudioError, match="100,000 characters, far more than this model can read"):
        fit_to_context(tiny, build_messages([], "x" * 100_000), 64)


def test_models_loaded_in_several_threads_at_once_are_whole():
    """Browsers asking for models at the same moment each get the checkpoint's weights, not fresh ones."""
    import torch

    alone = load_for_chat("tiny").model.state_dict()
    got, errors = [], []

    def load(cache):
        try:
            got.append(cache.get("tiny").model)
        except Exception as err:  # a half-built model fails to move off the meta device
            errors.append(err)

    threads = [threading.Thread(target=load, args=(ModelCache(),)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(got) == 6, errors
    for model in got:
        for name, tensor in model.state_dict().items():
            assert torch.equal(tensor, alone[name]), name


def test_a_mistyped_run_id_says_there_is_no_such_run(tmp_path):
    """A name that is neither a run of the workspace nor a model this machine has: the sentence names the
    runs folder first, for eval and serve alike."""
    ws = Workspace.open(tmp_path / "ws")
    for argv in (["eval", "nope-run", "--data", str(EVAL)], ["serve", "nope-run", "--port", str(free_port())]):
        out = subprocess.run([PYTHON, "-m", "studio", *argv, "--workspace", str(ws.root)], capture_output=True,
                             text=True, cwd=ROOT, env=subprocess_env(HF_HUB_OFFLINE="1"), timeout=120)
        assert out.returncode == 1 and "Traceback" not in out.stderr
        assert out.stderr.startswith(f"error: No run 'nope-run' in {ws.runs}, nor a model by that name:"), out.stderr


def test_an_adapter_trained_on_a_full_fine_tune_is_used_on_top_of_it(tmp_path):
    """A LoRA run whose parent is a full fine-tune answers with the parent's weights under its adapter (it was
    put on the base model); with the parent gone it says so rather than answer from the base."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from studio.train.runner import resolve_inputs

    ws = Workspace.open(tmp_path / "ws")
    full = ws.new_run_dir("full")
    run_training(load_config(PRESETS / "tiny-sft-full.yaml", ["train.max_steps=2", "train.save_steps=0",
                                                              "train.learning_rate=0.01"]), full)
    child = ws.new_run_dir("child")
    cfg = resolve_inputs(load_config(PRESETS / "tiny-sft-lora.yaml", ["train.max_steps=2", "train.save_steps=0",
                                                                      f"model.parent_run={full.name}"]), ws)
    run_training(cfg, child)
    ids = torch.tensor([[1, 5, 9, 14, 20]])
    loaded = load_for_chat(child.name, ws)
    expected = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(full / "model"),
                                         str(child / "adapter")).merge_and_unload()
    on_base = PeftModel.from_pretrained(load_for_chat("tiny").model, str(child / "adapter")).merge_and_unload()
    with torch.no_grad():
        got, want, wrong = (m(ids).logits for m in (loaded.model, expected, on_base))
    assert torch.allclose(got, want, atol=1e-5) and not torch.allclose(got, wrong, atol=1e-3)
    shutil.rmtree(full)
    with pytest.raises(StudioError, match=f"Run {child.name} was trained on top of run {full.name}, which has no "
                                          "weights any more"):
        load_for_chat(child.name, ws)


def test_a_stopped_runs_checkpoints_are_scored_and_a_result_that_cannot_be_kept_is_still_printed(tmp_path):
    """`--checkpoints` on a run stopped before its end scores the checkpoints it saved (it scored them and then
    failed on the unfinished run, printing nothing); a workspace that cannot be written still prints the figures."""
    ws = Workspace.open(tmp_path / "ws")
    run_dir = ws.new_run_dir("stopped")
    run_training(load_config(PRESETS / "tiny-sft-lora.yaml", ["train.max_steps=2", "train.save_steps=1"]), run_dir)
    shutil.rmtree(run_dir / "adapter")  # as a run stopped after its second checkpoint leaves it
    argv = [PYTHON, "-m", "studio", "eval", run_dir.name, "--data", str(EVAL), "--limit", "2", "--checkpoints",
            "--json", "--workspace", str(ws.root)]
    out = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=subprocess_env(), timeout=300)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["model"] == f"{run_dir.name}@checkpoint-2" and [c["model"] for c in got["checkpoints"]] == \
        [f"{run_dir.name}@checkpoint-1"]
    # a stopped run exports one of its checkpoints: merged it answers as the checkpoint does; the adapter alone
    # leaves the optimizer's state behind
    with pytest.raises(StudioError, match=f"no finished adapter or model to export \\(it stopped early: export a "
                                          f"checkpoint, e.g. {run_dir.name}@checkpoint-2\\)"):
        export_run(ws, run_dir.name, tmp_path / "nothing", merged=True)
    merged = export_run(ws, f"{run_dir.name}@checkpoint-1", tmp_path / "merged", merged=True)
    adapter = export_run(ws, f"{run_dir.name}@checkpoint-1", tmp_path / "adapter", merged=False)
    assert (adapter / "adapter_config.json").exists() and not list(adapter.glob("optimizer*"))
    import torch
    from transformers import AutoModelForCausalLM

    ids = torch.tensor([[1, 5, 9, 14]])
    with torch.no_grad():
        want = load_for_chat(f"{run_dir.name}@checkpoint-1", ws).model(ids).logits
        assert torch.allclose(AutoModelForCausalLM.from_pretrained(merged)(ids).logits, want, atol=1e-5)
    (run_dir / "evaluations.jsonl").unlink()
    (run_dir / "evaluations.jsonl").mkdir()  # cannot be appended to, even by root
    out = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=subprocess_env(), timeout=300)
    assert out.returncode == 0 and json.loads(out.stdout)["rows"] == 2, out.stderr
    assert out.stderr.count("could not be kept with the run") == 2 and "Traceback" not in out.stderr
    for part in ("checkpoints", "evaluations.jsonl"):
        shutil.rmtree(run_dir / part)
    out = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=subprocess_env(), timeout=300)
    assert out.returncode == 1 and out.stderr.strip() == \
        f"error: Run {run_dir.name} has no saved checkpoints and no finished adapter or model to evaluate."
