"""A tab whose tools are not in this version yet: says what it will do."""

from __future__ import annotations

import gradio as gr

PLANNED = {
    "Data": "Upload JSON, JSONL, CSV, TSV, Parquet or text files, or write examples in a table; the "
            "studio detects the format, reports problems by row and shows what the model will see.",
    "Method": "Pick a model, full fine-tuning, LoRA or QLoRA and a stage, and see the trainable "
              "parameters and the GPU memory it needs before anything loads.",
    "Train": "Start, stop and resume runs; loss, learning-rate and reward curves stream live.",
    "Preferences": "Vote between two answers (keys A, B, T, N); the votes feed DPO and reward models.",
    "Chat": "Chat with a tuned model, compare it with its base, evaluate on held-out data, export.",
}


def build(title: str) -> None:
    gr.Markdown(f"### {title}\n{PLANNED.get(title, '')}\n\n*Not in this version yet.* Meanwhile the "
                "command line has it: `studio --help`.")
