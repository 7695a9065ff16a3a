"""The `studio` command: a thin layer over the core modules.

    studio launch [--port N] [--share --auth U:P]     open the web app
    studio train CONFIG.yaml [--set key=value ...]    train in the foreground
    studio count --model M --method lora --rank 8     trainable parameters and memory, no weights
    studio data inspect | convert FILE                what a data file holds, in TRL's forms (studio/cli_data.py)
    studio eval | export | serve RUN                  a run's result (studio/cli_results.py)

Errors are one line on stderr and a non-zero exit; set STUDIO_DEBUG=1 for the traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from studio import __version__
from studio.errors import StudioError


def add_launch_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=7860, help="port to listen on (default 7860)")
    p.add_argument("--workspace", help="workspace folder (default $STUDIO_WORKSPACE or ./workspace)")
    p.add_argument("--share", action="store_true", help="also open a public Gradio link (needs --auth)")
    p.add_argument("--auth", action="append", default=[], metavar="USER:PASS",
                   help="an admin login (repeat for several); also --auth-file or $STUDIO_AUTH")
    p.add_argument("--auth-file", metavar="FILE", help="admin logins, one USER:PASS per line")
    p.add_argument("--annotator", action="append", default=[], metavar="USER:PASS",
                   help="a login that may only vote on pairs (repeat for several); also $STUDIO_ANNOTATORS")
    p.add_argument("--annotator-file", metavar="FILE", help="annotator logins, one USER:PASS per line")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser tab")
    p.add_argument("--allow-reward-code", action="store_true",
                   help="with logins, still let runs score answers with Python written in the Train tab, and load "
                        "models that bring their own code (model.trust_remote_code); it runs on this machine "
                        "(without logins it is always allowed)")


def cmd_launch(args: argparse.Namespace) -> int:
    from studio.access import Logins
    from studio.ports import check_listening

    logins = Logins.gather(args.auth, args.annotator, args.auth_file, args.annotator_file)
    check_listening(args.host, args.port, args.share, logins.enabled)  # before gradio loads: a refusal comes at once
    from studio.ui.app import launch

    launch(logins, host=args.host, port=args.port, workspace=args.workspace, share=args.share,
           open_browser=not args.no_browser, allow_reward_code=args.allow_reward_code)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from studio.train.worker import EARLY_STOP, hold_stop_signals, stop_signals

    before = hold_stop_signals()  # a Stop (or Ctrl+C) while the libraries load ends the run as stopped, not half-way
    try:
        return _train(args)
    finally:  # this process may go on (a caller of main()): its own handlers again, no stop left pending
        stop_signals(before)
        EARLY_STOP.clear()


def _train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from studio.config import load_config, save_config
    from studio.train.runner import preflight, prepare_resume, record_launcher, record_queued, resolve_inputs
    from studio.train.worker import leave_out_bitsandbytes, run_training
    from studio.workspace import Workspace

    ws = Workspace.open(args.workspace)
    if args.resume and args.set and not args.run_dir:
        raise StudioError("--set cannot change a run being resumed (it continues with its own config.yaml); "
                          "start a new run to change settings.")
    if args.resume and not args.run_dir:
        run_dir = ws.run_dir(args.config)
        cfg = prepare_resume(run_dir)
        record_launcher(run_dir, os.getpid())  # this process, not the one that started the run
    elif args.run_dir:  # the runner made the folder and wrote the config already
        run_dir = Path(args.run_dir)
        cfg = load_config(args.config, args.set)
    else:
        cfg = load_config(args.config, args.set)
        resolve_inputs(cfg, ws)
        preflight(cfg)
        run_dir = ws.new_run_dir(cfg.name or f"{cfg.method.stage}-{cfg.method.name}")
        save_config(cfg, run_dir / "config.yaml")
        # this process launches the run: killed before training writes a word, the run reads as dead, not unknown
        record_queued(run_dir, cfg, launcher=os.getpid())
    from studio import spin_for_training
    from studio.train.worker import is_main_process

    spin_for_training(cfg.train.num_processes)  # before torch loads
    leave_out_bitsandbytes(cfg)
    main = is_main_process()  # under accelerate launch, one process speaks for all
    if main and not os.environ.get("STUDIO_SAID_RUN"):  # under a foreground multi-process run the parent said it
        print(f"run {run_dir.name}\nfolder {run_dir}", flush=True)
    if cfg.train.num_processes > 1 and "LOCAL_RANK" not in os.environ:
        from studio.train.worker import EARLY_STOP

        if EARLY_STOP.get("flag"):  # stopped (Ctrl+C) before the processes were launched
            from studio.train.status import RunState, update_status

            update_status(run_dir, state=RunState.STOPPED, finished=time.time())
            print("stopped before its first checkpoint: nothing was saved", flush=True)
            return 0
        return _train_in_processes(cfg, run_dir, ws, args.resume)
    out = run_training(cfg, run_dir, resume=args.resume, show_progress=not args.quiet,
                       lock_path=ws.root / "train.lock")
    if main:
        from studio.train.status import RunState, read_status
        from studio.train.worker import latest_checkpoint

        if read_status(run_dir).state == RunState.COMPLETED:
            from studio.train.runs import run_summary

            done = run_summary(run_dir)
            loss = f", last training loss {done['final loss']:g}" if done["final loss"] is not None else ""
            took = {"": "", "0:00": " in under a second"}.get(done["duration"], f" in {done['duration']}")
            print(f"done: {done['steps']} steps{took}{loss}", flush=True)
            print(f"saved {out}", flush=True)
        elif latest_checkpoint(run_dir) is not None:  # stopped: nothing final was saved
            where = f" --workspace {args.workspace}" if args.workspace else ""
            print(f"stopped before the end; continue with: studio train {run_dir.name} --resume{where}", flush=True)
        else:
            print("stopped before its first checkpoint: nothing was saved", flush=True)
    return 0


def _train_in_processes(cfg, run_dir, ws, resume: bool) -> int:
    """Several processes: the same command again under `accelerate launch`, in the foreground."""
    import subprocess

    from studio.train.runner import launch_config, worker_command
    from studio.train.status import RunState, read_status

    cmd = worker_command(run_dir / "config.yaml", run_dir, ws, resume=resume,
                         num_processes=cfg.train.num_processes, accelerate_config=launch_config(cfg))
    code = subprocess.run(cmd, env=dict(os.environ, PYTHONUNBUFFERED="1", STUDIO_SAID_RUN="1")).returncode
    status = read_status(run_dir)
    if code == 0 and status.state == RunState.COMPLETED:
        return 0  # the first process said where it saved
    raise StudioError(status.error or f"The training processes ended with exit code {code}.")


def cmd_count(args: argparse.Namespace) -> int:
    from studio.config_form import config_from_form
    from studio.models.estimate import estimate_run, format_estimate
    from studio.models.memory import TrainingSetup

    cfg = config_from_form({}, {
        "model.name": args.model, "method.name": args.method, "method.stage": args.stage, "lora.r": args.rank,
        "lora.alpha": args.alpha, "lora.dropout": args.dropout, "lora.targets": args.targets,
        "lora.dora": args.dora, "lora.rslora": args.rslora, "quant.bits": args.bits})
    setup = TrainingSetup(batch_size=args.batch_size, seq_len=args.seq_len, precision=args.precision,
                          gradient_checkpointing=args.gradient_checkpointing, processes=args.processes,
                          strategy=args.strategy)
    est = estimate_run(cfg, setup)
    if args.json:
        print_json(est.to_dict())
    else:
        print(format_estimate(est))
    return 0


def cmd_prefs_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from studio.data.store import write_jsonl
    from studio.prefs.store import PreferenceStore
    from studio.workspace import Workspace

    rows = PreferenceStore(Workspace.open(args.workspace).prefs_db).export_rows()
    if not rows:
        raise StudioError("No votes to export yet (a vote for A or B on a pair makes a row); nothing was written.")
    out = Path(args.out)
    if out.exists() and not args.force:
        raise StudioError(f"{out} exists already; choose another --out, or add --force to replace it.")
    out.parent.mkdir(parents=True, exist_ok=True)
    print(f"rows written: {write_jsonl(out, rows)} to {out}")
    return 0


def cmd_prefs_import(args: argparse.Namespace) -> int:
    from studio.prefs.imports import import_pairs
    from studio.prefs.store import PreferenceStore
    from studio.workspace import Workspace

    store = PreferenceStore(Workspace.open(args.workspace).prefs_db)
    added, left_out, stored = import_pairs(store, args.file, needed=args.annotators)
    notes = ([f"{stored} already in the store"] if stored else []) + \
        ([f"{left_out} row{'s' if left_out != 1 else ''} left out; see `studio data inspect {args.file}`"] if left_out else [])
    print(f"pairs added: {added}" + (f" ({'; '.join(notes)})" if notes else ""))
    return 0


def cmd_prefs_generate(args: argparse.Namespace) -> int:
    from studio.chat.engine import leave_out_bitsandbytes
    from studio.prefs.generate import generate_pairs, prompts_from
    from studio.prefs.jobs import DONE, FAILED, reporter, write_status
    from studio.workspace import Workspace

    shown = {"line": False}

    def say(fraction: float, text: str) -> None:
        print(f"\r{fraction:4.0%} {text:<60}", end="", file=sys.stderr, flush=True)
        shown["line"] = True

    job = Path(args.job_dir) if args.job_dir else None
    try:
        ws = Workspace.open(args.workspace)
        leave_out_bitsandbytes([args.a, args.b], ws)
        prompts = prompts_from(args.prompts, limit=args.n, seed=args.seed)
        done = generate_pairs(ws, prompts, args.a, args.b, temperature=args.temperature,
                              max_new_tokens=args.max_new_tokens, needed=args.annotators, seed=args.seed,
                              created_by=args.created_by, progress=reporter(job) if job else say)
    except Exception as err:
        if job:  # the page reads this sentence; the log keeps the rest
            text = str(err) if isinstance(err, (StudioError, ValueError)) else f"{type(err).__name__}: {err}"
            write_status(job, state=FAILED, error=text.splitlines()[0] if text else type(err).__name__)
        if shown["line"]:
            print(file=sys.stderr)  # the error goes on a line of its own, not after the progress text
        raise
    if job:
        write_status(job, state=DONE, fraction=1.0, text="done", **done)
    print(file=sys.stderr)
    print(f"pairs added: {done['pairs']}" + (f" ({done['same_answers']} prompts left out: both answers the same)"
                                             if done["same_answers"] else ""))
    return 0


def cmd_prefs_stats(args: argparse.Namespace) -> int:
    from studio.prefs.stats import preference_stats, stats_text
    from studio.prefs.store import PreferenceStore
    from studio.workspace import Workspace

    stats = preference_stats(PreferenceStore(Workspace.open(args.workspace).prefs_db).vote_rows())
    if args.json:
        print_json(stats)
    else:
        print(stats_text(stats))
    return 0


def port_number(text: str) -> int:
    value = positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"a port is a number from 1 to 65535 (got {text})")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number (got {text!r})") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {value})")
    return value


def build_parser() -> argparse.ArgumentParser:
    from studio.cli_data import add_data_commands
    from studio.cli_results import add_result_commands
    from studio.config import METHODS
    from studio.models.memory import PRECISIONS as ESTIMATE_PRECISIONS
    from studio.stages import STAGES

    parser = argparse.ArgumentParser(
        prog="studio", description="Fine-tuning Studio: teach a language model your own job.")
    parser.add_argument("--version", action="version", version=f"studio {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("launch", help="open the web app (same as python launch.py)")
    add_launch_args(p)
    p.set_defaults(func=cmd_launch)

    p = sub.add_parser("train", help="run a training stage in the foreground with a progress bar")
    p.add_argument("config", help="run config YAML (or a run id / folder with --resume)")
    p.add_argument("--workspace")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting, e.g. --set train.learning_rate=1e-4 or --set data.map.prompt=question")
    p.add_argument("--resume", action="store_true", help="continue a run from its latest checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--run-dir", help=argparse.SUPPRESS)  # used by the runner: train into this folder
    p.set_defaults(func=cmd_train)

    add_data_commands(sub)

    p = sub.add_parser("count", help="trainable and total parameters and a memory estimate, no weights")
    p.add_argument("--model", required=True)
    p.add_argument("--method", choices=METHODS, default="lora")
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--alpha", type=float, default=16)
    p.add_argument("--targets", default="q_proj,v_proj", help="comma-separated layer names, or all-linear")
    p.add_argument("--stage", choices=list(STAGES), default="sft",
                   help="stages that cannot train yet are still estimated")
    p.add_argument("--dropout", type=float, default=0.05)
    p.add_argument("--dora", action="store_true", help="weight-decomposed LoRA")
    p.add_argument("--rslora", action="store_true", help="rank-stabilised scaling (same count)")
    p.add_argument("--bits", type=int, choices=[4, 8], default=4, help="QLoRA base precision")
    p.add_argument("--batch-size", type=int, default=1, help="rows per step for the memory estimate")
    p.add_argument("--seq-len", type=int, default=512, help="tokens per row for the memory estimate")
    p.add_argument("--precision", choices=ESTIMATE_PRECISIONS, default="bf16")
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument("--processes", type=int, default=1, help="GPUs the run is spread over (the estimate is per GPU)")
    p.add_argument("--strategy", choices=["ddp", "fsdp", "zero2", "zero3"], default="ddp",
                   help="what the processes shard: nothing (ddp), gradients and optimizer (zero2), all (fsdp, zero3)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--workspace")
    p.set_defaults(func=cmd_count)

    add_result_commands(sub)

    p = sub.add_parser("prefs", help="preference votes")
    prefs_sub = p.add_subparsers(dest="prefs_command", metavar="ACTION", required=True)
    q = prefs_sub.add_parser("export", help="votes as TRL preference data (prompt, chosen, rejected)")
    q.add_argument("--out", required=True)
    q.add_argument("--force", action="store_true", help="replace --out if it exists")
    q.add_argument("--workspace")
    q.set_defaults(func=cmd_prefs_export)
    q = prefs_sub.add_parser("import", help="a preference file's pairs, to be labelled again by annotators")
    q.add_argument("file")
    q.add_argument("--annotators", type=positive_int, default=None,
                   help="votes each pair needs (default: every annotator may vote on every pair)")
    q.add_argument("--workspace")
    q.set_defaults(func=cmd_prefs_import)
    q = prefs_sub.add_parser("generate", help="two sources answer the same prompts: pairs to vote on")
    q.add_argument("--prompts", required=True, help="a data file, saved dataset or hub dataset with prompts")
    q.add_argument("--a", required=True, help="first source: a run, 'tiny', a hub id or a folder")
    q.add_argument("--b", required=True, help="second source (the same as --a with --temperature > 0)")
    q.add_argument("--n", type=positive_int, default=None, help="at most this many prompts, picked at random")
    q.add_argument("--temperature", type=float, default=0.0, help="0 answers greedily")
    q.add_argument("--max-new-tokens", type=positive_int, default=128)
    q.add_argument("--annotators", type=positive_int, default=None, help="votes each pair needs")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--created-by", default="", help="the name the pairs are recorded under")
    q.add_argument("--job-dir", help=argparse.SUPPRESS)  # the app's background job writes its progress here
    q.add_argument("--workspace")
    q.set_defaults(func=cmd_prefs_generate)
    q = prefs_sub.add_parser("stats", help="votes per annotator and source, win rates, agreement, length bias")
    q.add_argument("--json", action="store_true")
    q.add_argument("--workspace")
    q.set_defaults(func=cmd_prefs_stats)
    return parser


def quiet_libraries(parallel_tokenizers: bool = False) -> None:
    """Keep library chatter that users cannot act on out of the terminal. Tokenizers run on every core
    only where nothing forks afterwards (the data commands); elsewhere a fork would warn and disable it."""
    import logging
    import warnings

    # bitsandbytes warns on import when it cannot fetch an optional CPU kernel from the hub
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    os.environ.setdefault("HF_HUB_VERBOSITY", "error")  # retries while offline; the error says it once
    logging.getLogger("huggingface_hub").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning)  # library deprecations, not ours to act on
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true" if parallel_tokenizers else "false")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet_libraries(parallel_tokenizers=args.command == "data")
    try:
        return int(args.func(args) or 0)
    except (StudioError, ValueError) as err:
        if os.environ.get("STUDIO_DEBUG"):
            raise
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader stopped early (`| head`): nothing more to say, and nowhere to say it
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as err:  # last resort: still one line, the detail only on request
        if os.environ.get("STUDIO_DEBUG"):
            raise
        first = str(err).splitlines()[0] if str(err) else ""
        print(f"error: {type(err).__name__}: {first} (set STUDIO_DEBUG=1 for details)", file=sys.stderr)
        return 1


def print_json(obj: object) -> None:
    print(json.dumps(obj, indent=None, default=str))


if __name__ == "__main__":
    raise SystemExit(main())
