"""The Chat tab's evaluation panel: runs (and, if asked, each of their checkpoints) scored on held-out
data side by side: exact match, ROUGE-L, BLEU, loss, and a judge model's grade; every answer browsable,
wrong ones marked; each run keeps its scores."""

from __future__ import annotations

from typing import Any

import gradio as gr
import pandas as pd

from studio.access import read_here, readable_model
from studio.chat.engine import describe_target
from studio.chat.engine import with_checkpoints as with_run_checkpoints
from studio.chat.evaluate import eval_rows, evaluate_model, save_result, scored_split, trained_on
from studio.chat.scores import RUBRIC
from studio.data.load import eval_source
from studio.errors import StudioError
from studio.ui.api import action
from studio.ui.context import AppContext

SCORE_COLUMNS = ["model", "rows", "data", "exact match", "final answer", "ROUGE-L", "BLEU", "judge (1-5)", "loss",
                 "perplexity", "saved"]
NO_JUDGE = "(no judge)"


def message_frame(text: str) -> pd.DataFrame:
    return pd.DataFrame([{"model": text}], columns=SCORE_COLUMNS).fillna("")


def scores_frame(results: list[Any], saved: Any = (), data: str = "", seen: dict[str, int] | None = None
                 ) -> pd.DataFrame:
    """One row per model, figures rounded for reading; 'data' says what was scored (and which split), and for a
    run, how many rows ask what it trained on (`seen`); 'saved' whether the run keeps the result (the models kept,
    or a mapping of model to what to say)."""
    saved = saved if isinstance(saved, dict) else dict.fromkeys(saved, "with the run")
    seen = seen or {}

    def scored(r: Any) -> str:
        n = seen.get(r.model)
        return f"{data} · ⚠️ {n} of {r.rows} rows trained on" if n else data

    return pd.DataFrame([{"model": r.model, "rows": r.rows, "data": scored(r), "exact match": f"{r.exact_match:.1%}",
                          "final answer": f"{r.final_answer:.1%}" if r.final_answer is not None else "",
                          "ROUGE-L": f"{r.rouge_l:.3f}", "BLEU": f"{r.bleu:.1f}",
                          "judge (1-5)": f"{r.judge:.2f}" if r.judge is not None else "",
                          "loss": f"{r.loss:.3f}", "perplexity": f"{r.perplexity:.2f}",
                          "saved": saved.get(r.model, "")} for r in results],
                        columns=SCORE_COLUMNS)


def answers_frame(results: list[Any]) -> pd.DataFrame:
    """The reference, each model's answer (marked ✗ where it is not an exact match, with the judge's
    grade in brackets), and the prompt last, cut short, so the answers stay on screen. For data that says what
    its final answers are (maths), the final answer checked comes after the reference, and ✗ marks an answer
    whose final answer is not that one."""
    first = results[0].answers
    wide = pd.DataFrame({"reference": [a["reference"] for a in first]})
    checked = all("final" in a for r in results for a in r.answers)
    if checked:
        wide["final answer"] = [a["final"] for a in first]

    def wrong(a: dict[str, str]) -> bool:
        return a["right"] != "yes" if checked else a["answer"].strip() != a["reference"].strip()

    for r in results:
        wide[r.model] = [("✗ " if wrong(a) else "") + (f"[{a['grade']}] " if a.get("grade") else "") + a["answer"]
                         for a in r.answers]
    wide["prompt"] = [a["prompt"] if len(a["prompt"]) <= 120 else a["prompt"][:119] + "…" for a in first]
    return wide


def with_checkpoints(ctx: AppContext, names: list[str]) -> list[str]:
    """Each run preceded by its saved checkpoints (RUN@checkpoint-N), oldest first; other models as given."""
    out = []
    for name in names:
        _, run_dir, _ = describe_target(name, ctx.workspace)
        out += with_run_checkpoints(run_dir) if run_dir is not None else [name]
    return out


def answers_update(wide: pd.DataFrame) -> Any:
    """The answers table with its columns sharing the width (left to the content, one long answer took a screen's
    width and pushed the other models' answers out of sight): the prompt narrow, the rest alike."""
    others = len(wide.columns) - 1
    share = f"{max(10, (100 - 12) // max(1, others))}%"
    return gr.update(value=wide, column_widths=[share] * others + ["12%"])


def build(ctx: AppContext, eval_choices: Any, model_choices: Any, demo_choices: list[str]) -> None:
    with gr.Accordion("Evaluate on held-out data", open=False):
        with gr.Row():
            data = gr.Dropdown(demo_choices, value=(demo_choices or [None])[0], allow_custom_value=True,
                               label="Eval data", scale=2)
            models = gr.Dropdown(["tiny"], value=["tiny"], multiselect=True, allow_custom_value=True,
                                 label="Models to compare", scale=3)
            limit = gr.Number(100, label="Rows (0 = all)", precision=0, scale=1)
            go = gr.Button("Evaluate", variant="primary", scale=1)
        with gr.Row():
            judge = gr.Dropdown([NO_JUDGE], value=NO_JUDGE, label="Judge (grades each answer 1-5)",
                                allow_custom_value=True, scale=2)
            rubric = gr.Textbox("", label="The judge's rubric", placeholder=RUBRIC, scale=3)
            each = gr.Checkbox(False, label="Each saved checkpoint too", scale=1)
        with gr.Row():
            split = gr.Textbox("", label="Split", placeholder="saved data: eval; else train", scale=1,
                               info="GSM8K: test; a saved dataset: its eval split if it has one")
            subset = gr.Textbox("", label="Subset", placeholder="optional", scale=1, info="GSM8K: main")
        scores = gr.Dataframe(pd.DataFrame(columns=SCORE_COLUMNS), label="Scores", interactive=False)
        answers = gr.Dataframe(pd.DataFrame(columns=["reference", "prompt"]), label="Answers (✗: not an exact match)",
                               interactive=False, wrap=True, max_height=400)

    def run_eval(source, names, n, judge_name=NO_JUDGE, rubric_text="", checkpoints=False, split_name="", subset_name="",
                 progress=gr.Progress()):
        if not source or not names:
            return message_frame("Choose eval data and at least one model."), gr.skip()
        try:
            path, split_read = eval_source(read_here(ctx.workspace, source, "The eval data"), ctx.workspace,
                                           str(split_name or "").strip() or None)
            subset_read = str(subset_name or "").strip() or None
            rows = eval_rows(path, int(n) or None, split_read, subset_read)
            split_kept = scored_split(path, split_read, subset_read)
            names = [readable_model(ctx.workspace, name) for name in names]  # runs' names as their ids
            grader = None
            if judge_name and judge_name != NO_JUDGE:
                grader = ctx.models.get(readable_model(ctx.workspace, judge_name), ctx.workspace)
            targets = with_checkpoints(ctx, list(names)) if checkpoints else list(names)
            results: list[Any] = []
            saved: dict[str, str] = {}
            seen: dict[str, int] = {}
            by_run: dict[Any, int | None] = {}  # a run's checkpoints share its training data
            for i, name in enumerate(targets):
                progress(i / len(targets), desc=f"evaluating {name}")
                loaded = ctx.models.get(name, ctx.workspace)
                run_dir = describe_target(name.partition("@")[0], ctx.workspace)[1]
                if run_dir is not None and run_dir not in by_run:
                    by_run[run_dir] = trained_on(run_dir, rows)
                if run_dir is not None and by_run[run_dir]:
                    seen[loaded.name] = by_run[run_dir]
                results.append(evaluate_model(loaded.name, loaded.model, loaded.tokenizer, rows, judge=grader,
                                              rubric=str(rubric_text or ""), system=loaded.system))
                try:
                    if save_result(ctx.workspace, results[-1], str(source), split_kept) is not None:
                        saved[results[-1].model] = "with the run"
                except OSError as err:  # the figures are shown regardless
                    saved[results[-1].model] = f"not kept: {err.strerror or err}"
        except (StudioError, ValueError, OSError) as err:
            return message_frame(f"⚠️ {err}"), gr.skip()
        return scores_frame(results, saved, f"{source}" + (f" · {split_kept}" if split_kept else ""), seen), \
            answers_update(answers_frame(results))

    gr.on([go.click, limit.submit, split.submit, subset.submit], run_eval,  # Enter in a field starts it too
          [data, models, limit, judge, rubric, each, split, subset], [scores, answers], **action("evaluate"))
    ctx.picker(data, eval_choices)
    ctx.picker(models, model_choices)
    ctx.picker(judge, lambda: [(NO_JUDGE, NO_JUDGE), *model_choices()])
