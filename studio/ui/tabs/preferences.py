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
from studio.prefs.stats import preference_stats, stats_text
from studio.prefs.store import PreferenceStore
from studio.ui.context import AppContext
from studio.ui.roles import for_annotators

NOTHING = "No pairs are waiting for your vote. Send pairs from the Chat tab (Side by side → Send this pair)."


def show_next(ctx: AppContext, voter: str, skip: tuple[int, ...] = ()
              ) -> tuple[dict[str, Any] | None, str, str, str, str]:
    """(state, prompt, left answer, right answer, counts line) for the next pair, not one in `skip`."""
    store = PreferenceStore(ctx.workspace.prefs_db)
    pair = store.next_pair(voter, skip)
    counts, mine = store.counts(), store.progress(voter)
    line = (f"You: {mine['done']} votes, {mine['left']} pairs left · all: {counts['pairs']} pairs, "
            f"{counts['votes']} votes, {len(store.export_rows())} usable for training")
    if pair is None:
        return None, NOTHING, "", "", line
    shown = show_pair(pair)
    return asdict(shown), shown.prompt, shown.left, shown.right, line


def record_vote(ctx: AppContext, state: dict[str, Any] | None, side: str, voter: str, edited: str = "",
                reason: str = "") -> str:
    """Store a vote given as a side on screen (left / right / tie / both_bad), with the winner rewritten
    (the rewrite becomes the chosen answer) and a reason, both optional."""
    if state is None:
        return "Nothing to vote on."
    shown = ShownPair(**state)
    winner = {"left": shown.left, "right": shown.right}.get(side)
    rewrite = edited.strip() if edited.strip() and edited.strip() != (winner or "").strip() else None
    PreferenceStore(ctx.workspace.prefs_db).vote(shown.pair_id, shown.choice_for(side), voter=voter,
                                                 edited=rewrite, reason=reason, flipped=shown.flipped)
    return f"Vote stored for pair #{shown.pair_id}" + (" with your rewrite as the chosen answer." if rewrite
                                                        else ".")


def build(ctx: AppContext) -> dict[str, Any]:
    state = gr.State(None)
    counts = gr.Markdown(elem_id="prefs-counts")
    prompt = gr.Textbox(label="Prompt", interactive=False, lines=3, elem_id="prefs-prompt")
    with gr.Row():
        left = gr.Textbox(label="Answer A", interactive=False, lines=6, elem_id="prefs-left")
        right = gr.Textbox(label="Answer B", interactive=False, lines=6, elem_id="prefs-right")
    with gr.Row():
        a_btn = gr.Button("A is better  [1]", variant="primary", elem_id="prefs-a")
        b_btn = gr.Button("B is better  [2]", variant="primary", elem_id="prefs-b")
        tie_btn = gr.Button("Tie  [3]", elem_id="prefs-tie")
        bad_btn = gr.Button("Both bad  [4]", elem_id="prefs-bad")
        skip_btn = gr.Button("Skip  [s]", elem_id="prefs-skip")
    with gr.Row():
        edited = gr.Textbox(label="Rewrite the winner (optional) [e]: your text becomes the chosen answer",
                            lines=2, scale=3, elem_id="prefs-edit")
        reason = gr.Textbox(label="Why? (optional)", lines=2, scale=2, elem_id="prefs-reason")
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
        def handler(st, rewrite, why, request: gr.Request):
            voter = ctx.user(request)
            try:
                said = record_vote(ctx, st, side, voter, rewrite or "", why or "")
            except StudioError as err:
                return (*[gr.skip()] * len(outputs), gr.skip(), gr.skip(), f"⚠️ {err}")
            return (*show_next(ctx, voter), "", "", said)
        return handler

    outputs = [state, prompt, left, right, counts]
    for btn, side in ((a_btn, "left"), (b_btn, "right"), (tie_btn, "tie"), (bad_btn, "both_bad")):
        btn.click(vote(side), [state, edited, reason], [*outputs, edited, reason, message])

    @for_annotators
    def skip(st, request: gr.Request):
        passed = (int(st["pair_id"]),) if st else ()
        return (*show_next(ctx, ctx.user(request), passed), "", "", "Skipped." if st else "")

    skip_btn.click(skip, state, [*outputs, edited, reason, message])

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
    with gr.Accordion("Statistics", open=False, visible=False) as stats_box:  # admins only
        stats_btn = gr.Button("Refresh statistics", size="sm")
        stats_md = gr.Markdown(elem_id="prefs-stats")
    stats_btn.click(lambda: stats_text(preference_stats(PreferenceStore(ctx.workspace.prefs_db).vote_rows())),
                    None, stats_md)
    ctx.on_load.append((load_other, None, outputs))
    refresh = gr.Button("Show another pair", size="sm")
    refresh.click(load_other, None, outputs)
    return {"load": load, "inputs": [state], "outputs": outputs, "admin_only": [admin_row, stats_box]}

