"""Guide tab: how the methods and stages differ, in plain words."""

from __future__ import annotations

import gradio as gr

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
| Full | every weight | ~120 GB (16-bit weights, Adam state) | lots of data, big GPUs, deep changes |
| LoRA | small low-rank adapters beside frozen weights | ~16 GB | most jobs: style, format, a narrow task |
| QLoRA | LoRA over a 4-bit copy of the base | ~6 GB | one consumer GPU |

### Stages
- **SFT** — learn from examples of good answers.
- **Reward model** — learn to score answers from pairs where one was preferred.
- **DPO** — learn directly from preferred / rejected pairs, no reward model needed.
- **RLHF** — generate answers, score them with a reward model, move towards the better ones.
"""


def build(ctx: AppContext) -> None:
    gr.Markdown(GUIDE)
