"""Supervised fine-tuning (full, LoRA or QLoRA) with TRL's SFTTrainer.

    studio train presets/tiny-sft-lora.yaml

Loss falls on the assistant's words only: with `assistant_only_loss` when the chat template marks
assistant turns ({% generation %}), otherwise by turning each conversation into a prompt and its
final answer, which TRL trains as a completion.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from studio.config import RunConfig
from studio.errors import StudioError
from studio.methods import common
from studio.models.loading import load_tokenizer, marks_assistant_turns
from studio.stages import stage

STAGE = stage("sft")


def prepare_sft_dataset(ds: Any, template_marks_assistant: bool) -> tuple[Any, bool]:
    """Return the dataset in a form SFTTrainer takes, and whether to use assistant_only_loss."""
    cols = set(ds.column_names)
    if "messages" in cols:
        if template_marks_assistant:
            return ds.select_columns(["messages"]), True
        return ds.map(_split_last_answer, remove_columns=ds.column_names), False
    if {"prompt", "completion"} <= cols:
        return ds.select_columns(["prompt", "completion"]), False
    if "text" in cols:
        return ds.select_columns(["text"]), False
    raise StudioError(f"The SFT data has columns {sorted(cols)}; it needs 'messages', 'prompt' and "
                      "'completion', or 'text' (convert it in the Data tab or with `studio data convert`).")


def _split_last_answer(row: dict[str, Any]) -> dict[str, Any]:
    msgs = row["messages"]
    last = max((i for i, m in enumerate(msgs) if m["role"] == "assistant"), default=None)
    if last is None:
        raise StudioError("A conversation in the SFT data has no assistant turn to learn from.")
    return {"prompt": msgs[:last], "completion": [msgs[last]]}


def build_trainer(cfg: RunConfig, run_dir: Path, callbacks: list[Any]) -> Any:
    from trl import SFTConfig, SFTTrainer

    precision = common.resolve_precision(cfg.train.precision)
    tokenizer = load_tokenizer(cfg.model.name, cfg.model.revision, cfg.model.trust_remote_code)
    marks = marks_assistant_turns(tokenizer)
    train, evaluation = common.train_and_eval(cfg, STAGE.data_kinds, run_dir)
    train, assistant_only = prepare_sft_dataset(train, marks)
    if evaluation is not None:
        evaluation, _ = prepare_sft_dataset(evaluation, marks)
    args = SFTConfig(
        **common.training_arguments(cfg, run_dir, precision, has_eval=evaluation is not None),
        max_length=cfg.data.max_length,
        assistant_only_loss=assistant_only,
        packing=False,
        dataset_num_proc=None,
    )
    model = common.load_causal_lm(cfg, precision, run_dir=run_dir)
    return SFTTrainer(
        model=model,
        args=args,
        train_dataset=train,
        eval_dataset=evaluation,
        processing_class=tokenizer,
        peft_config=common.lora_config(cfg),
        callbacks=callbacks,
    )
