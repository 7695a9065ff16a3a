"""The arena's loop on the demo, measured: votes for the house reply, then DPO from an SFT run.

    python bench/prefs_dpo.py [--seeds 0 1 2] [--pairs imported|generated] [--try "beta 0.5=dpo.beta=0.5" ...]

--pairs generated: instead of the demo's pairs, the SFT run answers 200 training prompts twice at
temperature 1 (the arena's "one run sampled twice"), and the annotator prefers the answer sharing more
words with the house reply (a tie when both share as many).

For each seed: the tiny SFT preset (150 steps), the pairs of assets/data/support_prefs.jsonl imported for
voting, an annotator who prefers the house reply, then two DPO runs on the votes from the SFT run: the
tiny-dpo preset (lr 1e-4, 100 steps, an SFT loss on the chosen answers) and plain DPO (lr 5e-4, 30 steps,
no SFT loss). Prints exact match on the 160 main held-out emails for the SFT run and each DPO run, and
the reward margin at the first and last log, per seed and as the mean over seeds.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from studio.chat.engine import load_for_chat  # noqa: E402
from studio.chat.evaluate import eval_rows, evaluate_model  # noqa: E402
from studio.config import load_config  # noqa: E402
from studio.demo.world import HOUSE_REPLIES  # noqa: E402
from studio.paths import PRESETS  # noqa: E402
from studio.prefs.handoff import votes_dataset, votes_run_config  # noqa: E402
from studio.prefs.imports import import_pairs  # noqa: E402
from studio.prefs.store import PreferenceStore  # noqa: E402
from studio.train.runner import resolve_inputs  # noqa: E402
from studio.train.worker import run_training  # noqa: E402
from studio.workspace import Workspace  # noqa: E402

SETTINGS = {"tiny-dpo preset": [], "plain DPO": ["train.learning_rate=5e-4", "train.max_steps=30", "dpo.sft_weight=0"]}


def margins(run_dir: Path) -> tuple[float, float]:
    logged = [r["rewards/margins"] for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())
              if "rewards/margins" in r]
    return logged[0], logged[-1]


def vote_generated(ws: Workspace, store: PreferenceStore, sft: str, seed: int) -> None:
    """The SFT run sampled twice on training prompts; votes for the answer closer to the house reply."""
    from studio.data.load import load_records
    from studio.methods.rewards import word_f1
    from studio.methods.rl_common import prompt_rows
    from studio.prefs.generate import generate_pairs

    records, _ = load_records(str(ROOT / "assets" / "data" / "support_sft.jsonl"), ("sft",))
    rows = prompt_rows(records)
    rows = [rows[i] for i in sorted(random.Random(seed).sample(range(len(rows)), 200))]
    reference = {json.dumps(r["prompt"], sort_keys=True): r["reference"] for r in rows}
    generate_pairs(ws, [r["prompt"] for r in rows], sft, sft, temperature=1.0, max_new_tokens=64, seed=seed)
    while (pair := store.next_pair("ann")) is not None:
        turns = json.loads(pair["prompt_turns"]) if pair["prompt_turns"] else [{"role": "user", "content": pair["prompt"]}]
        ref = reference[json.dumps(turns, sort_keys=True)]
        a, b = word_f1(pair["answer_a"], ref), word_f1(pair["answer_b"], ref)
        store.vote(pair["id"], "a" if a > b else "b" if b > a else "tie", voter="ann")


def one_seed(seed: int, rows: list[dict], settings: dict[str, list[str]], pairs: str = "imported"
             ) -> dict[str, tuple[float, float, float]]:
    ws = Workspace.open(Path(tempfile.mkdtemp(prefix="studio-prefs-dpo-")) / "ws")
    sft = ws.new_run_dir("sft")
    run_training(load_config(PRESETS / "tiny-sft-lora.yaml", [f"train.seed={seed}", "train.save_steps=1000"]), sft)
    store = PreferenceStore(ws.prefs_db)
    if pairs == "generated":
        vote_generated(ws, store, sft.name, seed)
    else:
        import_pairs(store, str(ROOT / "assets" / "data" / "support_prefs.jsonl"))
        house = set(HOUSE_REPLIES.values())
        while (pair := store.next_pair("ann")) is not None:
            choice = "a" if pair["answer_a"] in house else "b" if pair["answer_b"] in house else "both_bad"
            store.vote(pair["id"], choice, voter="ann")
    data, count = votes_dataset(ws, "dpo")
    print(f"seed {seed}: {count} decisive votes", file=sys.stderr, flush=True)

    def score(target: str) -> float:
        loaded = load_for_chat(target, ws)
        return evaluate_model(target, loaded.model, loaded.tokenizer, rows).exact_match

    out = {"SFT": (score(sft.name), float("nan"), float("nan"))}
    for name, overrides in settings.items():
        cfg = votes_run_config(ws, "dpo", sft.name, data, count,
                               [f"train.seed={seed}", "train.save_steps=1000", "data.eval_fraction=0", *overrides])
        resolve_inputs(cfg, ws)
        run_dir = ws.new_run_dir("dpo")
        run_training(cfg, run_dir)
        out[name] = (score(run_dir.name), *margins(run_dir))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--try", dest="tries", action="append", default=[], metavar="NAME=KEY=VALUE[,KEY=VALUE]",
                    help="another DPO setting to measure beside the two, e.g. 'beta 0.5=dpo.beta=0.5'")
    ap.add_argument("--pairs", choices=["imported", "generated"], default="imported")
    ap.add_argument("--only-tries", action="store_true", help="measure the --try settings alone")
    args = ap.parse_args()
    settings = {} if args.only_tries else dict(SETTINGS)
    for item in args.tries:
        name, _, overrides = item.partition("=")
        settings[name] = [o for o in overrides.split(",") if o]
    rows = eval_rows(str(ROOT / "assets" / "data" / "support_eval.jsonl"))
    results = []
    print(f"| seed | run | exact match ({len(rows)} rows) | margin first -> last |\n|---:|---|---:|---|", flush=True)
    for seed in args.seeds:
        result = one_seed(seed, rows, settings, args.pairs)
        results.append(result)
        for name, (em, first, last) in result.items():
            margin = "" if name == "SFT" else f"{first:.2f} -> {last:.2f}"
            print(f"| {seed} | {name} | {em:.1%} | {margin} |", flush=True)
    for name in results[0]:
        ems = [r[name][0] for r in results]
        print(f"| mean | {name} | {statistics.mean(ems):.1%} (range {min(ems):.1%}-{max(ems):.1%}) | |")


if __name__ == "__main__":
    main()
