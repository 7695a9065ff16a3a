"""The `studio` commands that use a run's result: evaluate it, export it, serve it.

    studio eval RUN --data FILE [--checkpoints] [--judge MODEL] [--json]
    studio export RUN --merged|--adapter|--gguf [--quant f16|q8_0] --out PATH [--force]
    studio serve RUN [--port N]
    studio runs [--json]

Registered by studio/cli.py, whose error handling they share.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from studio.cli import port_number, positive_int, print_json
from studio.errors import StudioError


def cmd_eval(args: argparse.Namespace) -> int:
    from studio.chat.engine import describe_target, leave_out_bitsandbytes, load_for_chat, with_checkpoints
    from studio.chat.evaluate import eval_rows, evaluate_model, save_result, scored_split, trained_on
    from studio.data.load import eval_source
    from studio.workspace import Workspace

    ws = Workspace.open(args.workspace)
    source, split = eval_source(args.data, ws, args.split)
    rows = eval_rows(source, args.limit, split, args.subset)
    split_kept = scored_split(source, split, args.subset)
    targets = [args.target]
    if args.checkpoints:
        _, run_dir, _ = describe_target(args.target, ws)
        if run_dir is None:
            raise StudioError(f"--checkpoints needs a run; {args.target} is not a run of this workspace.")
        targets = with_checkpoints(run_dir)
    leave_out_bitsandbytes([*targets, *([args.judge] if args.judge else [])], ws)
    _, run_dir, _ = describe_target(args.target.partition("@")[0], ws)
    seen = trained_on(run_dir, rows) if run_dir is not None else None
    if seen:
        print(f"warning: {seen} of the {len(rows)} eval rows ask what run {run_dir.name} trained on: its scores on "
              "them are not held out", file=sys.stderr, flush=True)
    judge = load_for_chat(args.judge, ws) if args.judge else None
    results = []
    for target in targets:
        loaded = load_for_chat(target, ws)
        result = evaluate_model(loaded.name, loaded.model, loaded.tokenizer, rows, judge=judge, rubric=args.rubric,
                                system=loaded.system)
        try:  # a run keeps its evaluations (runs/<id>/evaluations.jsonl); the figures are printed regardless
            save_result(ws, result, args.data, split_kept)
        except OSError as err:
            print(f"warning: the result of {result.model} could not be kept with the run ({err.strerror or err}); "
                  "it is printed below only", file=sys.stderr, flush=True)
        results.append(result)
    final = results[-1]
    if args.json:
        out = {**final.to_dict(with_answers=args.answers), "data": args.data, **({"split": split_kept} if split_kept
                                                                                  else {}),
               **({"trained_on": seen} if seen is not None else {})}
        if args.checkpoints:
            out["checkpoints"] = [r.to_dict(with_answers=args.answers) for r in results[:-1]]
        print_json(out)
    else:
        for r in results:
            grade = "" if not r.judged_by else f"\njudge {r.judge:.2f} (by {r.judged_by})" if r.judge is not None \
                else f"\njudge none: {r.judged_by} wrote no readable grade (1-5) for any answer"
            right = "" if r.final_answer is None else f"\nfinal_answer {r.final_answer:.3f}"
            print(f"model {r.model}\nrows {r.rows}\ndata {args.data}{f' ({split_kept})' if split_kept else ''}\nexact_match {r.exact_match:.3f}{right}\nloss {r.loss:.4f}\n"
                  f"perplexity {r.perplexity:.2f}\nrouge_l {r.rouge_l:.3f}\nbleu {r.bleu:.1f}{grade}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from studio.chat.engine import leave_out_bitsandbytes
    from studio.chat.export import export_gguf, export_run, gguf_path, studio_export
    from studio.workspace import Workspace

    ws = Workspace.open(args.workspace)
    target = gguf_path(args.out) if args.gguf else Path(args.out).expanduser()
    if not args.force and studio_export(target.resolve()):
        raise StudioError(f"{target} holds an earlier export; choose another --out, or add --force to replace it.")
    leave_out_bitsandbytes([args.run], ws)
    if args.gguf:
        out = export_gguf(ws, args.run, args.out, quant=args.quant, replace=args.force).resolve()
        print(out)
        modelfile = out.with_suffix(".Modelfile")
        print(f"Ollama: ollama create {out.stem} -f {modelfile}", file=sys.stderr)  # stdout stays the one path
        return 0
    print(export_run(ws, args.run, args.out, merged=args.merged, replace=args.force))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from studio.chat.engine import leave_out_bitsandbytes, load_for_chat
    from studio.chat.serve import serve
    from studio.workspace import Workspace

    ws = Workspace.open(args.workspace)
    leave_out_bitsandbytes([args.target], ws)
    loaded = load_for_chat(args.target, ws)
    key = args.api_key or os.environ.get("STUDIO_SERVE_KEY", "")
    serve(loaded, loaded.name, args.port, api_key=key, ready=lambda url: print(url, flush=True))
    return 0


RUN_COLUMNS = ("run", "name", "stage", "method", "status", "steps", "final loss", "exact match", "error")


def cmd_runs(args: argparse.Namespace) -> int:
    """The workspace's runs, newest first, as the Train tab's table lists them."""
    from studio.train.runs import list_runs
    from studio.workspace import Workspace

    rows = list_runs(Workspace.open(args.workspace))
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("no runs yet: start one with studio train PRESET")
        return 0
    shown = [{c: _cell(row.get(c)) for c in RUN_COLUMNS} for row in rows]
    columns = [c for c in RUN_COLUMNS if c in ("run", "status") or any(r[c] for r in shown)]
    widths = {c: max(len(c), *(len(r[c]) for r in shown)) for c in columns}
    for line in [dict(zip(columns, columns)), *shown]:
        print("  ".join(line[c].ljust(widths[c]) for c in columns).rstrip())
    return 0


def _cell(value: object, most: int = 70) -> str:
    text = "" if value is None else " ".join(str(value).split())
    return text if len(text) <= most else text[: most - 1] + "…"


def add_result_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("runs", help="the workspace's runs, newest first: state, steps, loss and why one failed")
    p.add_argument("--json", action="store_true", help="every field of every run, one JSON list")
    p.add_argument("--workspace")
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("eval", help="held-out metrics for a run or a model")
    p.add_argument("target", metavar="RUN_OR_MODEL")
    p.add_argument("--data", required=True, help="held-out conversations; the last turn is the reference")
    p.add_argument("--split", help="the split of a hub dataset or dataset folder (default: a saved dataset's eval split if it has one, "
                   "else train; GSM8K: test)")
    p.add_argument("--subset", help="the subset of a hub dataset or dataset folder (GSM8K: main)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--limit", type=positive_int, help="only the first N rows")
    p.add_argument("--answers", action="store_true", help="include each answer in the JSON")
    p.add_argument("--checkpoints", action="store_true", help="also each saved checkpoint of the run")
    p.add_argument("--judge", help="a run or model that grades each answer 1-5 against the reference")
    p.add_argument("--rubric", default="", help="what the judge's grades mean (a default rubric otherwise)")
    p.add_argument("--workspace")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("export", help="write a merged model or the adapter for plain transformers/PEFT, or a "
                                      "GGUF file for llama.cpp / Ollama")
    p.add_argument("run", metavar="RUN")
    kind = p.add_mutually_exclusive_group(required=True)
    kind.add_argument("--merged", action="store_true")
    kind.add_argument("--adapter", action="store_true")
    kind.add_argument("--gguf", action="store_true", help="one GGUF file, with an Ollama Modelfile beside it")
    p.add_argument("--quant", choices=["f16", "q8_0"], default="f16", help="GGUF weights (default f16)")
    p.add_argument("--out", required=True)
    p.add_argument("--force", action="store_true", help="replace an earlier export at --out (only an export)")
    p.add_argument("--workspace")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("serve", help="an OpenAI-compatible chat endpoint on 127.0.0.1 for a run's model")
    p.add_argument("target", metavar="RUN", help="a run id or folder (or any model the Chat tab loads)")
    p.add_argument("--port", type=port_number, default=8000)
    p.add_argument("--api-key", default="", help="require this bearer token; STUDIO_SERVE_KEY does the same "
                                                  "without showing the key to other users of this machine")
    p.add_argument("--workspace")
    p.set_defaults(func=cmd_serve)
