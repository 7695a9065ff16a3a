"""The Method tab's handlers: live counts, previous results kept on bad input, choices as a RunConfig."""

from __future__ import annotations

import time

import gradio as gr
import pytest

from studio.config import RunConfig
from studio.stages import available_stages
from studio.ui.context import AppContext
from studio.ui.presets import starting_config
from studio.ui.tabs import method
from studio.workspace import Workspace

LLAMA = "meta-llama/Llama-2-7b-hf"
CHOICES = {"model.name": LLAMA, "method.name": "lora", "method.stage": "sft", "lora.r": 8, "lora.alpha": 16,
           "lora.dropout": 0.05, "lora.targets": ["q_proj", "v_proj"], "lora.dora": False, "lora.rslora": False,
           "quant.bits": 4, "quant.quant_type": "nf4", "quant.double_quant": True, "quant.compute_dtype": "bfloat16"}
ESTIMATE = {"precision": "bf16", "batch": 1, "seq": 512, "checkpointing": False, "gpu": "24 GB (RTX 4090, 3090, A10)"}
OUT = {name: i for i, name in enumerate(["model", "last_model", "targets", "info", "card", "lora_box",
                                         "quant_box", "counts", "verdict", "memory", "chart", "problem"])}


def refresh(last_model=LLAMA, **changes):
    """Changes are config paths with '_' for '.', e.g. lora_r=64, or an estimate key (batch=2)."""
    choices, estimate = dict(CHOICES), dict(ESTIMATE)
    for key, value in changes.items():
        if key in estimate:
            estimate[key] = value
        else:
            choices[key.replace("_", ".", 1)] = value
    out = method.refresh(last_model, choices, estimate)
    return {name: out[i] for name, i in OUT.items()}


def skipped(value) -> bool:
    return isinstance(value, dict) and value.get("__type__") == "update" and len(value) == 1


def test_the_tab_builds_with_numbers_on_it(tmp_path):
    with gr.Blocks():
        tab = method.build(AppContext(workspace=Workspace.open(tmp_path)))
    assert set(tab.fields) == set(CHOICES) and len(tab.config_inputs) == 13
    opening = RunConfig.from_dict(starting_config())  # the Train tab's opening config, as there
    assert tab.choices_of([c.value for c in tab.config_inputs])["lora.r"] == opening.lora.r
    assert tab.form_values({"method": {"name": "qlora"}, "quant": {"bits": 8}})[
        list(tab.fields).index("quant.bits")] == 8
    targets = tab.fields["lora.targets"]
    assert targets.choices and targets.value
    assert tab.fields["model.name"].value in ("tiny", method.FALLBACK_MODEL)
    # only stages that can train are offered
    assert [v for _, v in tab.fields["method.stage"].choices] == [s.name for s in available_stages()]


def test_counts_and_memory_update_with_the_rank():
    out = refresh()
    assert "### 4,194,304 trainable" in out["counts"] and "6,738,415,616" in out["counts"]
    assert "GiB" in out["memory"] and out["verdict"].startswith("**Fits:")
    assert out["problem"] == "" and out["chart"] is not None
    bigger = refresh(lora_r=64)
    assert "33,554,432 trainable" in bigger["counts"]


def test_full_method_hides_lora_controls_and_warns_when_it_does_not_fit():
    out = refresh(method_name="full")
    assert out["lora_box"]["visible"] is False and out["quant_box"]["visible"] is False
    assert "Full fine-tuning" in out["card"]
    assert "Does not fit" in out["verdict"] and "try LoRA or QLoRA" in out["verdict"]


def test_switching_models_lists_that_models_layers():
    out = refresh(model_name="microsoft/Phi-3-mini-4k-instruct")
    assert out["targets"]["choices"] == ["o_proj", "qkv_proj", "gate_up_proj", "down_proj"]
    assert out["targets"]["value"] == ["o_proj", "qkv_proj"]
    assert out["last_model"] == "microsoft/Phi-3-mini-4k-instruct"


@pytest.mark.parametrize("change, sentence", [
    ({"lora_alpha": -1}, "LoRA alpha must be positive (got -1.0)."),
    ({"lora_r": 0}, "LoRA rank must be between 1 and 1024 (got 0)."),
    ({"lora_targets": []}, "Pick at least one target module"),
    ({"batch": 0}, "The batch size must be a whole number of at least 1"),
    ({"batch": 2.5}, "The batch size must be a whole number (got 2.5)"),
    ({"lora_r": 8.5}, "lora.r must be a whole number (got 8.5)"),
])
def test_bad_input_keeps_the_last_results_and_says_why(change, sentence):
    out = refresh(**change)
    assert sentence in out["problem"]
    assert all(skipped(out[k]) for k in ("counts", "verdict", "memory", "chart"))


def test_unknown_model_keeps_the_last_good_numbers_and_says_why(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    out = refresh(model_name="example-org/missing-model")
    # the typed name stays to be corrected; the numbers shown are still the last good model's
    assert skipped(out["model"]) and skipped(out["last_model"])
    assert "not in the local cache" in out["problem"] and f"still for {LLAMA}" in out["problem"]
    assert skipped(out["counts"])


def test_shortcuts_tick_attention_or_every_linear_layer():
    assert method.shortcut(LLAMA, "sft", "attention")["value"] == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert len(method.shortcut(LLAMA, "sft", "all")["value"]) == 7


def test_choices_come_out_as_a_run_config():
    cfg = method.run_config({**CHOICES, "method.name": "qlora", "method.stage": "dpo", "lora.r": 16.0,
                             "lora.alpha": 32, "lora.dropout": 0.1, "lora.targets": ["q_proj", "k_proj"],
                             "lora.dora": True, "quant.quant_type": "fp4", "quant.double_quant": False,
                             "quant.compute_dtype": "float16"})
    assert isinstance(cfg, RunConfig)
    assert (cfg.model.name, cfg.method.name, cfg.method.stage) == (LLAMA, "qlora", "dpo")
    assert cfg.lora.r == 16 and cfg.lora.targets == ["q_proj", "k_proj"] and cfg.lora.dora
    assert cfg.quant.quant_type == "fp4" and cfg.quant.double_quant is False
    with pytest.raises(ValueError, match="alpha must be positive"):
        method.run_config({**CHOICES, "lora.alpha": 0})
    # switching the stage away from DPO drops the DPO settings instead of refusing them
    dpo = method.run_config({**CHOICES, "method.stage": "dpo"}).to_dict()
    assert "dpo" in dpo
    back = method.run_config({**CHOICES, "method.stage": "sft"}, base=RunConfig.from_dict(dpo))
    assert "dpo" not in back.to_dict() and "quant" not in back.to_dict()



def test_a_slider_step_on_a_70b_model_is_fast():
    refresh(model_name="meta-llama/Llama-3.1-70B", last_model="meta-llama/Llama-3.1-70B")
    times = []
    for r in range(1, 41):
        started = time.perf_counter()
        refresh(model_name="meta-llama/Llama-3.1-70B", last_model="meta-llama/Llama-3.1-70B", lora_r=r)
        times.append(time.perf_counter() - started)
    assert sorted(times)[int(0.95 * len(times))] < 0.1  # bench/count_speed.py measures the 20 ms target


def test_a_model_the_tab_refused_never_reaches_the_train_tabs_config(tmp_path):
    from studio.ui.app import with_method_choices

    ws = Workspace.open(tmp_path / "ws")
    tab = method.MethodTab(dict.fromkeys(CHOICES))
    handler = with_method_choices(tab, ws)
    base = RunConfig.from_dict({"lora": {"r": 4}}).to_dict()
    taken = handler(base, *{**CHOICES, "model.name": "tiny"}.values())
    assert taken["model"]["name"] == "tiny" and taken["lora"]["r"] == 8
    # choices that say what the base says already change nothing: a page being filled from a base it read a
    # moment ago never writes that old base back over a preset loaded meanwhile
    assert isinstance(handler(taken, *{**CHOICES, "model.name": "tiny"}.values()), type(gr.skip()))
    outside = str(tmp_path / "elsewhere")  # a folder outside the workspace: refused by the tab
    for refused in ("no-such-org/no-such-model-anywhere", outside):
        kept = handler(taken, *{**CHOICES, "model.name": refused}.values())
        assert isinstance(kept, type(gr.skip())), refused


def test_every_tab_opens_on_the_train_tabs_config_without_a_page_load_copy(tmp_path):
    """A copy made by a page-load event can land after what the user did meanwhile (on a busy machine it
    does: a preset loaded in the Train tab came back as the default one) and write the opening values over
    it. The tabs are built agreeing instead, and no page-load event writes into the Method tab or the Data
    tab's length."""
    from studio.ui.app import build_app

    def inside(block):
        for child in getattr(block, "children", []):
            yield child
            yield from inside(child)

    app = build_app(AppContext(workspace=Workspace.open(tmp_path)))
    pages = {b.id: list(inside(b)) for b in app.blocks.values() if isinstance(b, gr.Tab)}
    shown = {tab: {c.label: c.value for c in blocks if isinstance(c, gr.components.Component)}
             for tab, blocks in pages.items()}
    start = RunConfig.from_dict(starting_config())
    method_shows = shown["method"]
    assert (method_shows["Method"], method_shows["Stage"], method_shows["Rank r"]) == (
        start.method.name, start.method.stage, start.lora.r)
    assert method_shows["Target modules"] == start.lora.targets and method_shows["Model"] == start.model.name
    assert (method_shows["Batch size per device"], method_shows["Sequence length"], method_shows["GPUs"]) == (
        start.train.batch_size, start.data.max_length, start.train.num_processes)
    assert (shown["data"]["Max length (tokens)"], shown["data"]["Tokenizer of model"]) == (
        start.data.max_length, start.model.name)
    assert shown["train"]["Batch size"] == start.train.batch_size
    guarded = {b._id for b in pages["method"]} | {c._id for c in pages["data"] if getattr(c, "label", "") in (
        "Max length (tokens)", "Tokenizer of model")}
    loads = [fn.api_name for fn in app.fns.values() if any(t[1] == "load" for t in fn.targets)
             and guarded & {b._id for b in fn.outputs}]
    assert not loads, f"page-load events write the Method or Data tab's values: {loads}"


@pytest.mark.parametrize("allowed", [True, False])
def test_the_reward_code_box_says_when_the_studio_runs_no_reward_code(allowed, tmp_path):
    """With logins and no --allow-reward-code the server refuses code rewards; the Train tab says so and
    the box takes no typing."""
    from studio.ui.app import build_app

    app = build_app(AppContext(workspace=Workspace.open(tmp_path), reward_code=allowed))
    code = next(b for b in app.blocks.values() if isinstance(b, gr.Code) and b.label == "reward code")
    titles = [b.label for b in app.blocks.values() if isinstance(b, gr.Accordion) and str(b.label).startswith("code:")]
    assert code.interactive is allowed
    assert titles == ["code: your own reward function (Python, runs in the training worker)" if allowed else
                      "code: off on this studio, which has logins (the owner can launch it with --allow-reward-code)"]
