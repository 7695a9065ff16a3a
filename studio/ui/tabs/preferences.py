"""Preferences tab: read a prompt and two answers, pick the better one; each vote is stored at once.

Sides are shuffled for every pair so that position does not sway the vote; the per-browser state
remembers which stored answer is on which side.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import gradio as gr

from studio.access import read_here, readable_model, refuse_code, run_id_only
from studio.data.load import resolve_source
from studio.data.store import list_datasets, save_dataset
from studio.errors import StudioError
from studio.prefs.generate import prompts_from, typed_prompts
from studio.prefs.handoff import train_on_votes
from studio.prefs.imports import import_pairs
from studio.prefs.jobs import latest_job, read_job, start_generation, stop_job
from studio.prefs.session import ShownPair, cast_vote, show_pair
from studio.prefs.stats import preference_stats, stats_text
from studio.prefs.store import AlreadyVoted, PreferenceStore
from studio.train.runs import finished_runs, labelled_runs
from studio.ui.api import action, glue
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
            f"{counts['votes']} votes, {counts['usable']} usable for training")
    if pair is None:
        return None, NOTHING, "", "", line
    shown = show_pair(pair)
    return asdict(shown), shown.prompt, shown.left, shown.right, line


def record_vote(ctx: AppContext, state: dict[str, Any] | None, side: str, voter: str, edited: str = "",
                reason: str = "") -> str:
    """Store a vote given as a side on screen; the sentence to show."""
    if state is None:
        return "Nothing to vote on."
    return cast_vote(PreferenceStore(ctx.workspace.prefs_db), ShownPair(**state), side, voter, edited, reason)


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
            except AlreadyVoted as err:  # a second click: move on to the next pair
                return (*show_next(ctx, voter), "", "", f"⚠️ {err}")
            except StudioError as err:
                return (*[gr.skip()] * len(outputs), gr.skip(), gr.skip(), f"⚠️ {err}")
            return (*show_next(ctx, voter), "", "", said)
        return handler

    outputs = [state, prompt, left, right, counts]
    for btn, side in ((a_btn, "left"), (b_btn, "right"), (tie_btn, "tie"), (bad_btn, "both_bad")):
        # a vote takes milliseconds: no annotator waits behind a few others in the queue
        btn.click(vote(side), [state, edited, reason], [*outputs, edited, reason, message], concurrency_limit=None,
                  **action(f"vote_{side}"))

    @for_annotators
    def skip(st, request: gr.Request):
        passed = (int(st["pair_id"]),) if st else ()
        return (*show_next(ctx, ctx.user(request), passed), "", "", "Skipped." if st else "")

    skip_btn.click(skip, state, [*outputs, edited, reason, message], concurrency_limit=None, **action("vote_skip"))

    def export(request: gr.Request):
        store = PreferenceStore(ctx.workspace.prefs_db)
        rows, ratings = store.export_rows(), store.rating_rows()
        if not rows and not ratings:
            return ("⚠️ No decisive votes (A or B) and no thumbs up or down from Chat yet, so there is nothing to "
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

    export_btn.click(export, None, exported, **action("prefs_export"))
    with gr.Accordion("Statistics", open=False, visible=False) as stats_box:  # admins only
        stats_btn = gr.Button("Refresh statistics", size="sm")
        stats_md = gr.Markdown(elem_id="prefs-stats")
    stats_btn.click(lambda: stats_text(preference_stats(PreferenceStore(ctx.workspace.prefs_db).vote_rows())),
                    None, stats_md, **action("prefs_stats"))
    ctx.on_load.append((load_other, None, outputs, "prefs_first_pair"))
    refresh = gr.Button("Show another pair", size="sm")
    refresh.click(load_other, None, outputs, concurrency_limit=None, **action("prefs_next_pair"))
    make_box = _make_pairs_panel(ctx)
    train_box = _train_panel(ctx)
    return {"load": load, "inputs": [state], "outputs": outputs,
            "admin_only": [admin_row, stats_box, make_box, train_box]}


def _make_pairs_panel(ctx: AppContext) -> Any:
    """Admins: two sources answer a prompt set, or a preference file is imported to be labelled again."""
    with gr.Accordion("Make pairs to vote on", open=False, visible=False) as box:
        with gr.Row():
            prompts = gr.Dropdown(["assets/data/support_eval.jsonl"], value="assets/data/support_eval.jsonl",
                                  allow_custom_value=True, label="Prompts: a data file or saved dataset", scale=3)
            typed = gr.Textbox(label="...or type prompts, one per line", lines=3, scale=3)
        with gr.Row():
            source_a = gr.Dropdown(["tiny"], value="tiny", allow_custom_value=True, label="Source A")
            source_b = gr.Dropdown(["tiny"], value="tiny", allow_custom_value=True, label="Source B")
            count = gr.Number(20, precision=0, minimum=1, label="Pairs (at most)")
            temperature = gr.Slider(0, 2, value=0.8, step=0.05, label="Temperature", elem_id="prefs-temp")
            needed = gr.Number(1, precision=0, minimum=1, label="Annotators per pair")
        with gr.Row():
            make = gr.Button("Generate pairs", variant="primary", scale=3)
            stop = gr.Button("Stop making pairs", variant="stop", visible=False, scale=1)
        with gr.Row():
            import_path = gr.Textbox(label="Or import a preference file (path in the project or a saved dataset)",
                                     scale=4)
            import_btn = gr.Button("Import for voting", scale=1)
        made = gr.Markdown(elem_id="prefs-made")
        timer = gr.Timer(1.0, active=False)  # follows a pair job while it runs
    for box_ in (source_a, source_b):
        ctx.picker(box_, lambda: [("tiny", "tiny"),
                                  *labelled_runs(ctx.workspace, finished_runs(ctx.workspace, chat_models=True))])
    ctx.picker(prompts, lambda: ["assets/data/support_eval.jsonl",
                                 *[d["name"] for d in list_datasets(ctx.workspace)]])

    def job_view():
        """The latest pair job, read from its folder: a reload or a restarted app shows the same."""
        job = latest_job(ctx.workspace)
        if job is None:
            return "", gr.Timer(active=False), gr.update(visible=False)
        status = read_job(job)
        return status.line(), gr.Timer(active=status.active), gr.update(visible=status.active)

    def generate(source, text, a, b, n, temp, k, request: gr.Request):
        try:
            a, b = readable_model(ctx.workspace, a), readable_model(ctx.workspace, b)  # runs' names as their ids
            if (text or "").strip():
                chosen = typed_prompts(text)[: int(n)]
            else:
                chosen = prompts_from(resolve_source(read_here(ctx.workspace, source), ctx.workspace),
                                      limit=int(n))
            start_generation(ctx.workspace, chosen, a, b, temperature=float(temp), needed=int(k),
                             created_by=ctx.user(request))
        except (StudioError, ValueError, OSError) as err:
            return f"⚠️ {err}", gr.Timer(active=False), gr.update()
        return job_view()

    def stop_making():
        job = latest_job(ctx.workspace)
        if job is not None:
            stop_job(job)
        return job_view()

    shown = [made, timer, stop]
    make.click(generate, [prompts, typed, source_a, source_b, count, temperature, needed], shown,
               **action("pairs_generate"))
    stop.click(stop_making, None, shown, **action("pairs_stop"))
    timer.tick(job_view, None, shown, show_progress="hidden", **glue("pairs_tick"))
    ctx.on_load.append((job_view, None, shown, "pairs_job_load"))

    def import_file(path, k, request: gr.Request):
        try:
            source = resolve_source(read_here(ctx.workspace, path), ctx.workspace)
            added, left_out, stored = import_pairs(PreferenceStore(ctx.workspace.prefs_db), source, needed=int(k),
                                                   created_by=ctx.user(request))
        except (StudioError, ValueError, OSError) as err:
            return f"⚠️ {err}"
        notes = ([f"{stored} were stored already"] if stored else []) + \
            ([f"{left_out} row{'s' if left_out != 1 else ''} left out"] if left_out else [])
        return f"Imported {added} pair{'s' if added != 1 else ''} for voting" + (f"; {', '.join(notes)}." if notes else ".")

    import_btn.click(import_file, [import_path, needed], made, **action("pairs_import"))
    return box


def _train_panel(ctx: AppContext) -> Any:
    """Admins: start a DPO, KTO or reward-model run on the votes, from a finished SFT run."""
    with gr.Accordion("Train on the votes", open=False, visible=False) as box:
        with gr.Row():
            stage = gr.Radio([("DPO", "dpo"), ("KTO (also uses thumbs up/down)", "kto"), ("Reward model", "reward")],
                             value="dpo", label="Stage")
            parent = gr.Dropdown([], label="Start from this SFT run", allow_custom_value=True)
            steps = gr.Number(None, label="Max steps (blank: the stage's own)", minimum=1, precision=0)
            start = gr.Button("Start the run", variant="primary")
        started = gr.Markdown(elem_id="prefs-started")
    ctx.picker(parent, lambda: labelled_runs(ctx.workspace, finished_runs(ctx.workspace, chat_models=True)))

    def go(which, run, max_steps, request: gr.Request):
        try:
            overrides = [f"train.max_steps={int(max_steps)}"] if max_steps else None
            run_dir = train_on_votes(ctx.workspace, which, run_id_only(ctx.workspace, run).name,
                                     started_by=ctx.user(request), overrides=overrides,
                                     check=lambda cfg: refuse_code(cfg, ctx.reward_code))
        except (StudioError, ValueError) as err:
            return f"⚠️ {err}"
        return f"Started run **{run_dir.name}**: follow it in the Train tab."

    start.click(go, [stage, parent, steps], started, **action("train_on_votes"))
    return box

