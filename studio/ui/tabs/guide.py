"""Guide tab: how the methods and stages differ, in plain words."""

from __future__ import annotations

from typing import Any

import gradio as gr

from studio.stages import STAGES
from studio.ui.api import action
from studio.ui.context import AppContext

GUIDE = """
### Where to start
1. **Data** — bring examples of the job: a request and the answer you want.
2. **Method** — choose how much of the model learns. LoRA is the usual first choice.
3. **Train** — press Start and watch the loss fall.
4. **Chat** — talk to the result and compare it with the model you began with.

The built-in tiny model learns the demo support-desk job in a few minutes on a laptop CPU,
with no network: try it before spending GPU hours on a large model.

### Methods
| method | what trains | memory for a 7B model | when |
|---|---|---|---|
| Full | every weight | ~110–120 GB in mixed precision (fp32 weights and Adam state); ~55 GB in pure bf16 | lots of data, big GPUs, deep changes |
| LoRA | small low-rank adapters beside frozen weights | ~16 GB | most jobs: style, format, a narrow task |
| QLoRA | LoRA over a 4-bit copy of the base | ~6 GB | one consumer GPU |

### Stages
{stages}

The Method tab gives the exact figure for your model, batch and sequence length.

### From votes to a better model
1. Train an SFT run first (Train tab).
2. In the Chat tab tick **Side by side**, compare the run with its base or another run, and press
   **Send this pair to Preferences** for answers worth judging; or, in the Preferences tab, open
   **Make pairs to vote on**: two sources (or one run sampled twice) answer a set of prompts in bulk.
3. In the Preferences tab pick the better answer of each pair; every vote is saved at once. Keys: 1 A
   better, 2 B better, 3 tie, 4 both bad, s skip, e rewrite the winner (Escape leaves a text box).
   Or, in Chat, mark single answers with thumbs up or down: each mark is saved at once too.
4. **Export votes and ratings as datasets** saves votes as the dataset `votes` (pairs) and marks as the
   dataset `ratings` (single answers, good or bad).
5. **Train on the votes** (Preferences tab) starts a DPO, KTO or reward-model run on them from your SFT
   run in one press. Or, in the Train tab, load the `tiny-dpo` preset (or `tiny-kto` for ratings, which
   also takes votes), pick the dataset as training data and your SFT run under **Start from an earlier
   run**, and press Start.

### Reinforcement learning from rewards
1. Train an SFT run, then a reward model: the `tiny-reward` preset on preference pairs, or **Train on the
   votes** with the stage Reward model.
2. In the Train tab load `tiny-ppo` (classic PPO), `tiny-rlhf` (RLOO) or `tiny-grpo` (GRPO with a rule
   reward), pick the SFT run under **Start from an earlier run**, and press Start.
3. Under **Rewards**, tick what scores an answer: the reward-model run (`latest` takes the newest), a rule
   (exact match or word overlap with the data's answer, the final answer of a maths solution, a regular
   expression, valid JSON, a length penalty) or your own Python function. The rewards are summed.
4. Watch the reward rise and the KL to the starting model stay small; the table under the curves shows
   answers the model wrote during training, with their rewards and the reference they were checked against.
"""


def stage_list() -> str:
    """One line per declared stage, from its card; stages that cannot train yet say so."""
    lines = []
    for s in STAGES.values():
        soon = "" if s.available else " *(not available in this version yet)*"
        lines.append(f"- {s.card}{soon}")
    return "\n".join(lines)


QUIZ = [
    ("You have 2,000 examples of emails and the replies you want. Where do you start?",
     ["SFT", "DPO", "A reward model"], "SFT",
     "Examples of good answers are what SFT learns from; DPO and reward models need pairs of answers."),
    ("One 24 GB GPU, a 7B model. Which method fits?", ["Full fine-tuning", "LoRA or QLoRA"], "LoRA or QLoRA",
     "Full fine-tuning of 7B needs the weights, gradients and Adam state: far beyond 24 GB. LoRA trains small "
     "adapters beside frozen weights; QLoRA also keeps the frozen weights in 4 bits."),
    ("People picked the better of two answers 500 times. What can train on that directly, without a reward model?",
     ["DPO", "SFT", "PPO"], "DPO",
     "DPO learns from chosen and rejected answers as they are; PPO needs a reward model (or rules) to score "
     "answers it writes itself."),
    ("What does the KL penalty in RLHF, PPO and DPO keep in check?",
     ["How far the model drifts from where it started", "The learning rate", "The length of the prompts"],
     "How far the model drifts from where it started",
     "Without it the policy finds answers the reward likes but people do not (reward hacking)."),
    ("Raising the LoRA rank r from 8 to 64 mostly changes…",
     ["How many parameters train", "How long each answer may be", "Which model is loaded"],
     "How many parameters train",
     "The trainable count grows in proportion to r: the Method tab shows the exact numbers before you start."),
    ("GRPO and PPO both learn from answers the model writes. What does PPO have that GRPO does without?",
     ["A value head that estimates what an answer is worth", "A reward", "A reference model"],
     "A value head that estimates what an answer is worth",
     "GRPO compares several answers to the same prompt instead: the group's mean is its baseline."),
]
TRY = [("SFT with LoRA", "lora", "sft"), ("QLoRA", "qlora", "sft"), ("Full fine-tuning", "full", "sft"),
       *[(s.label, "lora", s.name) for s in STAGES.values() if s.name != "sft" and s.available]]
"""(button, method, stage): every stage that can train, with LoRA, and the three methods under SFT."""


def grade(*picked: str) -> str:
    """Feedback on each answer, then the score."""
    lines, right = [], 0
    for n, ((_, _, answer, why), choice) in enumerate(zip(QUIZ, picked), start=1):
        if not choice:
            lines.append(f"Q{n} — not answered. {why}")
        elif choice == answer:
            right += 1
            lines.append(f"Q{n} ✓ {why}")
        else:
            lines.append(f"Q{n} ✗ The answer is **{answer}**. {why}")
    return f"**{right} of {len(QUIZ)} right.**\n\n" + "\n\n".join(lines)


def build(ctx: AppContext) -> dict[str, Any]:
    """The guide, 'try it' buttons (the app wires them to the Method tab) and a quiz."""
    gr.Markdown(GUIDE.replace("{stages}", stage_list()))
    gr.Markdown("### Try it\nEach button sets the Method tab to that method and stage, and opens it.")
    with gr.Row():
        buttons = [(gr.Button(label, size="sm"), method, stage_name) for label, method, stage_name in TRY]
    with gr.Accordion("Six questions to check the ideas", open=False):
        picks = [gr.Radio(options, label=f"{n}. {question}") for n, (question, options, _, _) in
                 enumerate(QUIZ, start=1)]
        check = gr.Button("Check my answers", variant="primary")
        feedback = gr.Markdown(elem_id="guide-feedback")
    check.click(grade, picks, feedback, **action("guide_quiz"))
    return {"try": buttons}
