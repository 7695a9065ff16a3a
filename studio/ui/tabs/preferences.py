"""Preferences tab: read a prompt and two answers, pick the better one; each vote is stored at once.

Sides are shuffled for every pair so that position does not sway the vote; the per-browser state
remembers which stored answer is on which side.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import gradio as gr

from studio.data.store import save_dataset
from studio.errors import StudioError
from studio.prefs.session import ShownPair, show_pair
from studio.prefs.store import PreferenceStore
from studio.ui.context import AppContext
from studio.ui.roles import for_annotators

NOTHING = "No pairs are waiting for your vote. Send pairs from the Chat tab (Side by side → Send this pair)."


def show_next(ctx: AppContext, voter: str) -> tuple[dict[str, Any] | None, str, str, str, str]:
    """(state, prompt, left answer, right answer, counts line) for the next pair."""
    store = PreferenceStore(ctx.workspace.prefs_db)
    pair = store.next_pair(voter)
    counts = store.counts()
    line = f"{counts['pairs']} pairs · {counts['votes']} votes · {len(store.export_rows())} usable for training"
    if pair is None:
        return None, NOTHING, "", "", line
    shown = show_pair(pair)
    return asdict(shown), shown.prompt, shown.left, shown.right, line


def record_vote(ctx: AppContext, state: dict[str, Any] | None, side: str, voter: str) -> str:
    """Store a vote given as a side on screen (left / right / tie / both_bad)."""
    if state is None:
        return "Nothing to vote on."
    shown = ShownPair(**state)
    PreferenceStore(ctx.workspace.prefs_db).vote(shown.pair_id, shown.choice_for(side), voter=voter)
    return f"Vote stored for pair #{shown.pair_id}."


def build(ctx: AppContext) -> dict[str, Any]:
    state = gr.State(None)
    counts = gr.Markdown(elem_id="prefs-counts")
    prompt = gr.Textbox(label="Prompt", interactive=False, lines=3, elem_id="prefs-prompt")
    with gr.Row():
        left = gr.Textbox(label="Answer A", interactive=False, lines=6, elem_id="prefs-left")
        right = gr.Textbox(label="Answer B", interactive=False, lines=6, elem_id="prefs-right")
    with gr.Row():
        a_btn = gr.Button("A is better", variant="primary")
        b_btn = gr.Button("B is better", variant="primary")
        tie_btn = gr.Button("Tie")
        bad_btn = gr.Button("Both bad")
    message = gr.Markdown(elem_id="prefs-message")
    with gr.Row(visible=False) as admin_row:  # shown to admins at page load
        export_btn = gr.Button("Export votes and ratings as datasets", scale=1)
        exported = gr.Markdown()

    @for_annotators
    def load(current, request: gr.Request):
        """Show a pair; a pair already on screen and not yet voted on stays, sides unchanged."""
        voter = ctx.user(request)
        if current is not None and not PreferenceStore(ctx.workspace.prefs_db).has_vote(current["pair_id"], voter):
            return (gr.skip(),) * len(outputs)
        return show_next(ctx, voter)

    @for_annotators
    def load_other(request: gr.Request):
        return show_next(ctx, ctx.user(request))

    def vote(side):
        @for_annotators
        def handler(st, request: gr.Request):
            voter = ctx.user(request)
            try:
                said = record_vote(ctx, st, side, voter)
            except StudioError as err:
                said = f"⚠️ {err}"
            return (*show_next(ctx, voter), said)
        return handler

    outputs = [state, prompt, left, right, counts]
    for btn, side in ((a_btn, "left"), (b_btn, "right"), (tie_btn, "tie"), (bad_btn, "both_bad")):
        btn.click(vote(side), state, [*outputs, message])

    def export(request: gr.Request):
        store = PreferenceStore(ctx.workspace.prefs_db)
        rows, ratings = store.export_rows(), store.rating_rows()
        if not rows and not ratings:
            return ("No decisive votes (A or B) and no thumbs up or down from Chat yet, so there is nothing to "
                    "export.")
        said = []
        try:
            if rows:
                folder = save_dataset(ctx.workspace, "votes", rows, "preference", source="preference votes",
                                      created_by=ctx.user(request))
                said.append(f"Saved {len(rows)} pairs as dataset **votes {folder.name}**: training data for a "
                            "DPO, KTO or reward-model run in the Train tab.")
            if ratings:
                folder = save_dataset(ctx.workspace, "ratings", ratings, "unpaired",
                                      source="thumbs up and down in Chat", created_by=ctx.user(request))
                said.append(f"Saved {len(ratings)} rated answers as dataset **ratings {folder.name}**: training "
                            "data for a KTO run.")
        except StudioError as err:
            said.append(f"⚠️ {err}")
        return " ".join(said)

    export_btn.click(export, None, exported)
    ctx.on_load.append((load_other, None, outputs))
    refresh = gr.Button("Show another pair", size="sm")
    refresh.click(load_other, None, outputs)
    return {"load": load, "inputs": [state], "outputs": outputs, "admin_row": admin_row}

