"""Supervised fine-tuning (full, LoRA or QLoRA) with TRL's SFTTrainer.

    studio train presets/tiny-sft-lora.yaml

Loss falls on the assistant's words only: with `assistant_only_loss` when the chat template marks
assistant turns ({% generation %}, or TRL's patched template for the model's family), otherwise by
turning each conversation into a prompt and its final answer, which TRL trains as a completion
(with tool calls, one example per assistant turn). Conversations with turns marked "weight": 0 are
tokenized here, those turns left out of the assistant mask. Tool descriptions travel in a `tools`
column, which TRL hands to the chat template.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from studio.config import RunConfig
from studio.data.turns import mask_without_weight_0
from studio.errors import StudioError
from studio.methods import common
from studio.models.loading import load_tokenizer, marks_assistant_turns, renders_tool_calls, training_template
from studio.stages import stage

STAGE = stage("sft")


def prepare_sft_dataset(ds: Any, template_marks_assistant: bool, tokenizer: Any = None) -> tuple[Any, bool]:
    """Return the dataset in a form SFTTrainer takes, and whether to use assistant_only_loss. With the
    tokenizer, conversations with turns marked weight 0 are tokenized here, those turns masked."""
    cols = set(ds.column_names)
    if "messages" in cols:
        keep = [c for c in ("messages", "tools") if c in cols]
        weighted = any(m.get("weight") == 0 for row in ds["messages"] for m in row)
        if template_marks_assistant and not weighted:
            return ds.select_columns(keep), True
        masked = _masked_in_one_pass(ds, tokenizer) if template_marks_assistant and tokenizer is not None else None
        if masked is not None:
            return masked, False
        import datasets

        features = datasets.Features({c: ds.features[c] for c in keep if c != "messages"} |
                                     {"prompt": ds.features["messages"], "completion": ds.features["messages"]})
        out = ds.map(_answers_as_completions, batched=True, remove_columns=ds.column_names, features=features,
                     fn_kwargs={"weighted": weighted})
        if not len(out):
            raise StudioError("Every assistant turn in the SFT data says weight 0, so there is nothing to learn.")
        return out, False
    if {"prompt", "completion"} <= cols:
        return ds.select_columns(["prompt", "completion"]), False
    if "text" in cols:
        return ds.select_columns(["text"]), False
    raise StudioError(f"The SFT data has columns {sorted(cols)}; it needs 'messages', 'prompt' and "
                      "'completion', or 'text' (convert it in the Data tab or with `studio data convert`).")


def _masked_in_one_pass(ds: Any, tokenizer: Any) -> Any:
    """Conversations tokenized through the training template, turns marked weight 0 left out of the
    assistant mask: every other answer trains in one pass, as the Data tab's preview
    shows. TRL builds the labels from the mask. None when some conversation's marked spans cannot be
    matched to its turns; the caller then trains each answer as an example of its own."""
    template = training_template(tokenizer)

    def one(row: dict[str, Any]) -> dict[str, list[int]]:
        tools = json.loads(row["tools"]) if isinstance(row.get("tools"), str) else row.get("tools")
        out = tokenizer.apply_chat_template(row["messages"], tools=tools, chat_template=template, tokenize=True,
                                            return_dict=True, return_assistant_tokens_mask=True)
        mask = list(out["assistant_masks"])
        if any(m.get("weight") == 0 for m in row["messages"]):
            mask = mask_without_weight_0(mask, row["messages"])
        return {"input_ids": list(out["input_ids"]), "assistant_masks": [-1] if mask is None else mask}

    out = ds.map(one, remove_columns=ds.column_names)
    if any(mask == [-1] for mask in out["assistant_masks"]):
        return None
    out = out.filter(lambda row: 1 in row["assistant_masks"])  # nothing to learn in it: every answer weight 0
    if not len(out):
        raise StudioError("Every assistant turn in the SFT data says weight 0, so there is nothing to learn.")
    return out


def _answers_as_completions(batch: dict[str, list[Any]], weighted: bool = False) -> dict[str, list[Any]]:
    """Each conversation as a prompt and its final answer, trained as a completion. A conversation with
    tool calls gives one example per assistant turn, so every call is learnt, not only the last answer.
    `weighted` (some turns say weight 0, as OpenAI's files may): one example per turn that does not, with
    the turns before it, weight-0 answers included, as context."""
    out: dict[str, list[Any]] = {k: [] for k in ("prompt", "completion", *(["tools"] if "tools" in batch else []))}
    for n, msgs in enumerate(batch["messages"]):
        turns = [i for i, m in enumerate(msgs) if m["role"] == "assistant"]
        if not turns:
            raise StudioError("A conversation in the SFT data has no assistant turn to learn from.")
        calls = any(m.get("tool_calls") for m in msgs)
        chosen = [i for i in turns if msgs[i].get("weight") != 0] if weighted else turns if calls else turns[-1:]
        for i in chosen:
            out["prompt"].append(msgs[:i])
            out["completion"].append([msgs[i]])
            if "tools" in batch:
                out["tools"].append(batch["tools"][n])
    return out


def check_tool_rendering(ds: Any, tokenizer: Any, model: str) -> None:
    """Tool-calling rows need a chat template that shows the calls; otherwise the calls would vanish from
    what the model reads and it would learn answers without the calls that fetched them."""
    if "tools" not in ds.column_names and not any(
            m.get("tool_calls") for row in ds.select(range(min(len(ds), 200)))["messages"] for m in row):
        return
    if not renders_tool_calls(tokenizer):
        raise StudioError(f"The data holds tool calls, but the chat template of '{model}' does not show them; "
                          "choose a model whose template supports tools (Qwen2.5, Llama 3.1 and later, the "
                          "built-in tiny model), or remove the tool-calling rows.")


def build_trainer(cfg: RunConfig, run_dir: Path, callbacks: list[Any]) -> Any:
    from trl import SFTConfig, SFTTrainer

    precision = common.resolve_precision(cfg.train.precision)
    tokenizer = load_tokenizer(cfg.model.name, cfg.model.revision, cfg.model.trust_remote_code)
    marks = marks_assistant_turns(tokenizer)
    train, evaluation = common.train_and_eval(cfg, STAGE.data_kinds, run_dir)
    if "messages" in train.column_names:
        check_tool_rendering(train, tokenizer, cfg.model.name)
    train, assistant_only = prepare_sft_dataset(train, marks, tokenizer)
    if evaluation is not None:
        evaluation, eval_assistant_only = prepare_sft_dataset(evaluation, marks, tokenizer)
        if eval_assistant_only and not assistant_only:  # the setting follows the training data: mask here
            evaluation = _masked_in_one_pass(evaluation, tokenizer)
    args = SFTConfig(
        **common.training_arguments(cfg, run_dir, precision, has_eval=evaluation is not None),
        max_length=cfg.data.max_length,
        assistant_only_loss=assistant_only,
        dataset_num_proc=None,
    )
    model = common.load_causal_lm(cfg, precision, run_dir=run_dir)
    return SFTTrainer(**common.trainer_inputs(cfg, model, args, (train, evaluation), tokenizer, callbacks))
