"""RLHF on the demo, measured: does GRPO / RLOO / PPO raise the mean reward on held-out prompts over the
SFT policy it starts from, and what does a PPO step cost beside a GRPO step with the same rollout size?

    python bench/rl_policy.py [--seeds 0 1 2] [--steps 40] [--sft-steps 30]

Per seed: a short SFT run (the tiny-sft-lora preset cut to --sft-steps, so there is room to improve), the
tiny-reward preset (a reward model on the demo pairs), then from the SFT run, for each reward (the word
overlap with the reference answer, a rule; the reward model) and each algorithm (tiny-grpo, tiny-rlhf (RLOO),
tiny-ppo): --steps steps. Held-out: 64 prompts of assets/data/support_eval.jsonl answered greedily. Prints
the mean reward of the SFT policy and of each run, the last logged KL to the reference, and the mean
seconds per step over the first ten steps. A trivial baseline sits beside them: the SFT policy's own reward, unchanged.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from studio.chat.engine import load_for_chat  # noqa: E402
from studio.config import load_config  # noqa: E402
from studio.data.load import load_records  # noqa: E402
from studio.methods import rl_common  # noqa: E402
from studio.paths import PRESETS  # noqa: E402
from studio.train.runner import resolve_inputs  # noqa: E402
from studio.train.worker import run_training  # noqa: E402
from studio.workspace import Workspace  # noqa: E402

PRESET_OF = {"GRPO": "tiny-grpo", "RLOO": "tiny-rlhf", "PPO": "tiny-ppo"}
HELD_OUT = 64


def held_out() -> list[dict]:
    records, _ = load_records(str(ROOT / "assets" / "data" / "support_eval.jsonl"), ("sft",))
    return rl_common.prompt_rows(records)[:HELD_OUT]


def logged(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def one_seed(seed: int, args: argparse.Namespace, rows: list[dict]) -> dict[str, tuple[float, float, float]]:
    ws = Workspace.open(Path(tempfile.mkdtemp(prefix="studio-rl-")) / "ws")
    common = [f"train.seed={seed}", "train.save_steps=1000"]
    sft = ws.new_run_dir("sft")
    run_training(load_config(PRESETS / "tiny-sft-lora.yaml", [*common, f"train.max_steps={args.sft_steps}"]), sft)
    reward = ws.new_run_dir("reward")
    run_training(load_config(PRESETS / "tiny-reward.yaml", [*common, "data.eval_fraction=0"]), reward)
    judges = {"overlap": load_config(PRESETS / "tiny-grpo.yaml", ["rl.rewards=overlap"]),
              "model": load_config(PRESETS / "tiny-grpo.yaml", ["rl.rewards=model", f"rl.reward_model={reward}"])}
    scorers = {name: rl_common.reward_functions(cfg) for name, cfg in judges.items()}

    def score(target: str) -> dict[str, float]:
        loaded = load_for_chat(target, ws)
        return {name: rl_common.mean_reward(loaded.model, loaded.tokenizer, rows, funcs)["total"]
                for name, funcs in scorers.items()}

    start = score(sft.name)
    out = {f"SFT ({name})": (value, 0.0, 0.0) for name, value in start.items()}
    for name in args.rewards:
        judge = ["rl.rewards=overlap"] if name == "overlap" else ["rl.rewards=model", f"rl.reward_model={reward}"]
        for algo in args.algorithms:
            cfg = load_config(PRESETS / f"{PRESET_OF[algo]}.yaml",
                              [*common, *judge, f"train.max_steps={args.steps}", f"model.parent_run={sft.name}",
                               "data.eval=", "data.eval_fraction=0", *args.set])
            resolve_inputs(cfg, ws)
            run_dir = ws.new_run_dir(f"{algo}-{name}")
            run_training(cfg, run_dir)
            logs = logged(run_dir)
            logs = [r for r in logs if "kl" in r]  # the step logs, not the closing summary
            # time a step over the first ten, while every policy is still near the SFT run and writes answers
            # of about the same length (a later policy may write shorter or longer answers)
            early = [r for r in logs if r["step"] <= 11]
            per_step = (early[-1]["time"] - early[0]["time"]) / max(1, early[-1]["step"] - early[0]["step"])
            out[f"{algo} ({name})"] = (score(run_dir.name)[name], logs[-1]["kl"], per_step)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--sft-steps", type=int, default=30)
    ap.add_argument("--rewards", nargs="+", default=["overlap", "model"], choices=["overlap", "model"])
    ap.add_argument("--set", nargs="*", default=[], help="more settings for the RL runs, e.g. train.learning_rate=3e-4")
    ap.add_argument("--algorithms", nargs="+", default=list(PRESET_OF), choices=list(PRESET_OF))
    args = ap.parse_args()
    rows = held_out()
    results = []
    print(f"| seed | policy (reward) | held-out mean reward ({len(rows)} prompts) | KL, last log | s/step (steps 1-11) |\n"
          "|---:|---|---:|---:|---:|", flush=True)
    for seed in args.seeds:
        result = one_seed(seed, args, rows)
        results.append(result)
        for name, (value, kl, per_step) in result.items():
            extra = "" if name.startswith("SFT") else f"{kl:.3f} | {per_step:.2f}"
            print(f"| {seed} | {name} | {value:.3f} | {extra or ' | '} |", flush=True)
    for name in results[0]:
        values = [r[name][0] for r in results]
        print(f"| mean | {name} | {statistics.mean(values):.3f} (range {min(values):.3f}-{max(values):.3f}) | | |")
    for reward in args.rewards:
        if "GRPO" in args.algorithms and "PPO" in args.algorithms:
            ratio = [r[f"PPO ({reward})"][2] / r[f"GRPO ({reward})"][2] for r in results]
            print(f"PPO / GRPO seconds per step ({reward}): {statistics.mean(ratio):.2f} "
                  f"(range {min(ratio):.2f}-{max(ratio):.2f})")


if __name__ == "__main__":
    main()
