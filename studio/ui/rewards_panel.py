"""The Train tab's settings for the stages that learn from their own answers (RLHF by GRPO or RLOO, PPO):
which rewards score an answer, the reward-model run, the admin's own reward function, and a table of the
answers a run writes as it trains."""

from __future__ import annotations

from typing import Any

import gradio as gr
import pandas as pd

from studio.config_rl import REWARDS, RL_ALGORITHMS
from studio.methods.rl_common import read_samples
from studio.stages import STAGES
from studio.train.runs import reward_model_runs
from studio.ui.context import AppContext

RL_PATHS = ["rl.algorithm", "rl.rewards", "rl.reward_model", "rl.kl_coef", "rl.num_generations",
            "rl.max_new_tokens", "rl.pattern", "rl.max_chars", "rl.reward_code"]
SAMPLE_COLUMNS = ["step", "rewards", "answer", "reference", "prompt"]
"""The rewards first and the prompt (the longest text) last, so what was scored stays on screen."""
CODE_HINT = ("def reward(prompt, completion, **row):\n"
             "    # prompt: the last user message; completion: the answer; row: the row's other columns\n"
             "    return 1.0 if completion.startswith(\"Dear customer\") else 0.0\n")


def uses_rl(stage_name: str | None) -> bool:
    return stage_name in STAGES and STAGES[stage_name].section == "rl"


def build(ctx: AppContext, values: dict[str, Any], visible: bool) -> tuple[Any, dict[str, Any]]:
    """(the group to show for RL stages, its components keyed by config path)."""
    f: dict[str, Any] = {}
    with gr.Group(visible=visible) as group:
        gr.Markdown("**Rewards** — what scores each answer the model writes during training (summed)")
        with gr.Row():
            f["rl.rewards"] = gr.CheckboxGroup(list(REWARDS), value=values["rl.rewards"], label="Rewards", scale=4,
                                               info="model: a reward-model run · exact_match / overlap / contains: "
                                                    "against the row's answer · final_answer: its final "
                                                    "result against the row's (maths) · regex · json_valid · length · code")
            f["rl.reward_model"] = gr.Dropdown(["latest"], value=values["rl.reward_model"], allow_custom_value=True,
                                               label="Reward-model run", scale=2)
            f["rl.algorithm"] = gr.Radio(list(RL_ALGORITHMS), value=values["rl.algorithm"], scale=1,
                                         label="Compare answers by (RLHF)")
        with gr.Row():
            f["rl.num_generations"] = gr.Number(values["rl.num_generations"], label="Answers per prompt", step=1,
                                                minimum=2)
            f["rl.max_new_tokens"] = gr.Number(values["rl.max_new_tokens"], label="Longest answer (tokens)", step=1,
                                               minimum=1)
            f["rl.kl_coef"] = gr.Number(values["rl.kl_coef"], label="KL penalty", minimum=0)
            f["rl.pattern"] = gr.Textbox(values["rl.pattern"], label="regex: pattern to find")
            f["rl.max_chars"] = gr.Number(values["rl.max_chars"], label="length: characters before the penalty",
                                          step=1, minimum=1)
        title = "code: your own reward function (Python, runs in the training worker)" if ctx.reward_code else \
            "code: off on this studio, which has logins (the owner can launch it with --allow-reward-code)"
        with gr.Accordion(title, open=False):
            f["rl.reward_code"] = gr.Code(values["rl.reward_code"] or "", language="python", label="reward code",
                                          interactive=ctx.reward_code)
            gr.Markdown(f"For example:\n```python\n{CODE_HINT}```")
    ctx.picker(f["rl.reward_model"], lambda: ["latest", *reward_model_runs(ctx.workspace)])
    return group, f


def samples_frame(run_dir: Any) -> pd.DataFrame:
    """The newest answers a run wrote while training, newest first."""
    rows = read_samples(run_dir, last=12) if run_dir is not None else []
    return pd.DataFrame([{"step": r.get("step"), "prompt": r.get("prompt", ""), "answer": r.get("answer", ""),
                          "rewards": ", ".join(f"{k} {v:g}" for k, v in (r.get("rewards") or {}).items()),
                          "reference": r.get("reference", "")}
                         for r in reversed(rows)], columns=SAMPLE_COLUMNS)


def samples_size(run_dir: Any) -> int:
    try:
        return (run_dir / "samples.jsonl").stat().st_size if run_dir is not None else 0
    except OSError:
        return 0
