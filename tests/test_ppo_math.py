"""PPO's arithmetic against values worked out by hand, and the rule rewards on their edge cases."""

from __future__ import annotations

import math

import pytest
import torch

from studio.config import RunConfig
from studio.errors import StudioError
from studio.methods import ppo_math, rewards
from studio.methods.rl_common import prompt_rows


def close(tensor, expected):
    assert torch.allclose(tensor, torch.tensor(expected, dtype=tensor.dtype), atol=1e-6), tensor.tolist()


def test_gae_matches_the_hand_computed_example():
    # gamma 1, lambda 0.5: d2 = 1 - 0.7 = 0.3; d1 = 0.7 - 0.6 = 0.1, A1 = 0.1 + 0.5 * 0.3; d0 = 0.1, A0 = 0.1 + 0.5 * 0.25
    adv, ret = ppo_math.gae(torch.tensor([[0.0, 0.0, 1.0]]), torch.tensor([[0.5, 0.6, 0.7]]), torch.ones(1, 3),
                            gamma=1.0, lam=0.5)
    close(adv, [[0.225, 0.25, 0.3]])
    close(ret, [[0.725, 0.85, 1.0]])


def test_gae_ignores_what_follows_the_end_of_an_answer():
    # gamma 0.9, lambda 1, third token padding: A1 = 2 + 0 - 0.6 = 1.4; A0 = 0 + 0.9 * 0.6 - 0.5 + 0.9 * 1.4 = 1.3
    adv, ret = ppo_math.gae(torch.tensor([[0.0, 2.0, 5.0]]), torch.tensor([[0.5, 0.6, 9.0]]),
                            torch.tensor([[1.0, 1.0, 0.0]]), gamma=0.9, lam=1.0)
    close(adv, [[1.3, 1.4, 0.0]])
    close(ret, [[1.8, 2.0, 0.0]])


def test_token_rewards_put_the_kl_penalty_on_every_token_and_the_score_on_the_last():
    rewards_, kl = ppo_math.token_rewards(torch.tensor([2.0, -1.0]),
                                          torch.tensor([[-1.0, -2.0, -3.0], [-1.0, -1.0, -1.0]]),
                                          torch.tensor([[-1.5, -2.0, -2.0], [-1.0, -1.2, -1.0]]),
                                          torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]]), kl_coef=0.1)
    close(kl, [[0.5, 0.0, 0.0], [0.0, 0.2, 0.0]])
    close(rewards_, [[-0.05, 2.0, 0.0], [0.0, -0.02, -1.0]])


def test_the_clipped_policy_loss_takes_the_pessimistic_side():
    mask = torch.ones(1, 3)
    new = torch.log(torch.tensor([[1.5, 0.5, 1.1]]))
    loss, stats = ppo_math.policy_loss(new, torch.zeros(1, 3), torch.tensor([[1.0, -1.0, 1.0]]), mask, 0.2)
    # token 0: max(-1.5, -1.2) = -1.2 (clipped); token 1: max(0.5, 0.8) = 0.8 (clipped); token 2: -1.1 (inside)
    assert math.isclose(float(loss), (-1.2 + 0.8 - 1.1) / 3, abs_tol=1e-6)
    assert math.isclose(stats["clipfrac"], 2 / 3, abs_tol=1e-6)
    at_start, _ = ppo_math.policy_loss(torch.zeros(1, 2), torch.zeros(1, 2), torch.tensor([[2.0, -4.0]]),
                                       torch.tensor([[1.0, 0.0]]), 0.2)
    assert math.isclose(float(at_start), -2.0)  # ratio 1: the loss is minus the (masked) mean advantage


def test_the_clipped_value_loss():
    loss, stats = ppo_math.value_loss(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.5, 0.5]]),
                                      torch.tensor([[1.0, 1.0]]), torch.ones(1, 2), 0.2)
    # token 0: max(0, (0.7 - 1)^2) = 0.09; token 1: max(1, (0.3 - 1)^2) = 1; half their mean
    assert math.isclose(float(loss), 0.5 * (0.09 + 1.0) / 2, abs_tol=1e-6)
    assert stats["value_clipfrac"] == 0.5


def test_whitening_and_the_adaptive_kl_coefficient():
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    out = ppo_math.whiten(torch.tensor([[1.0, 2.0, 3.0, 100.0]]), mask)
    close(out[:, :3].mean(1), [0.0])
    assert math.isclose(float((out[:, :3] ** 2).mean()), 1.0, rel_tol=1e-4) and float(out[0, 3]) == 0.0
    fixed = ppo_math.KlController(0.1)
    assert fixed.update(50.0, 8) == 0.1
    adaptive = ppo_math.KlController(0.1, target=6.0)
    assert math.isclose(adaptive.update(12.0, 8), 0.1 * (1 + 0.2 * 8 / 10_000))  # error clipped to +0.2
    assert math.isclose(adaptive.update(5.4, 8), 0.1 * (1 + 0.2 * 8 / 10_000) * (1 - 0.1 * 8 / 10_000))


def call(fn, answers, references=None):
    return fn(prompts=[[{"role": "user", "content": "q"}]] * len(answers),
              completions=[[{"role": "assistant", "content": a}] for a in answers],
              reference=references or [""] * len(answers))


def test_rule_rewards():
    assert call(rewards.rule("exact_match"), ["Yes.", " yes.  ", "No"], ["Yes."] * 3) == [1.0, 1.0, 0.0]
    assert call(rewards.rule("overlap"), ["the cat sat", "dog", ""], ["The cat!"] * 3) == [pytest.approx(0.8), 0.0, 0.0]
    assert call(rewards.rule("contains"), ["I said: the cat. OK", "cat"], ["The cat."] * 2) == [1.0, 0.0]
    assert call(rewards.rule("regex", pattern=r"^Dear \w+"), ["Dear Ann, hi", "Hi Dear Ann"]) == [1.0, 0.0]
    assert call(rewards.rule("json_valid"), ['{"a": 1}', "{a: 1}", " [1, 2] "]) == [1.0, 0.0, 1.0]
    assert call(rewards.rule("length", max_chars=10), ["x" * 10, "x" * 15, "x" * 40]) == [0.0, -0.5, -1.0]
    with pytest.raises(StudioError, match="needs a pattern"):
        rewards.rule("regex")
    with pytest.raises(StudioError, match="not a valid regular expression"):
        rewards.rule("regex", pattern="(")


def test_a_reward_written_as_code():
    fn = rewards.code_reward("def reward(prompt, completion, **row):\n    return len(completion) / len(row['reference'])")
    assert call(fn, ["abcd", "ab"], ["abcd", "abcd"]) == [1.0, 0.5]
    with pytest.raises(StudioError, match="line 2"):
        rewards.code_reward("def reward(prompt, completion):\n    return (")
    with pytest.raises(StudioError, match="must define a function `reward"):
        rewards.code_reward("def score(p, c):\n    return 1")
    broken = rewards.code_reward("def reward(prompt, completion, **row):\n    return 1 / 0")
    with pytest.raises(StudioError, match="answer 1 of a batch: ZeroDivisionError"):
        call(broken, ["x"])
    words = rewards.code_reward("def reward(prompt, completion, **row):\n    return 'many'")
    with pytest.raises(StudioError, match="ValueError"):
        call(words, ["x"])


def test_prompts_and_references_from_every_kind_of_data():
    chat = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                         {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Order 7?"},
                         {"role": "assistant", "content": "Shipped."}]}
    pref = {"prompt": [{"role": "user", "content": "Q"}], "chosen": [{"role": "assistant", "content": "Good"}],
            "rejected": [{"role": "assistant", "content": "Bad"}]}
    plain = {"prompt": "Plain?", "chosen": "A", "rejected": "B"}
    only = {"prompt": [{"role": "user", "content": "Just asking"}]}
    rows = prompt_rows([chat, pref, plain, only, {"messages": [{"role": "assistant", "content": "x"}]}])
    assert [r["reference"] for r in rows] == ["Shipped.", "Good", "A", ""]
    assert rows[0]["prompt"] == chat["messages"][:4] and rows[2]["prompt"] == [{"role": "user", "content": "Plain?"}]


@pytest.mark.parametrize(("rl", "said"), [
    ({"rewards": ["vibes"]}, "unknown reward 'vibes'"),
    ({"rewards": []}, "rl.rewards is empty"),
    ({"rewards": ["model"], "reward_model": None}, "names no reward-model run"),
    ({"rewards": ["code"]}, "rl.reward_code is empty"),
    ({"rewards": ["overlap"], "algorithm": "ppo"}, "rl.algorithm must be one of grpo, rloo"),
    ({"rewards": ["overlap"], "clip_range": 1.5}, "clip_range must be between 0 and 1"),
    ({"rewards": ["overlap"], "target_kl": 0}, "target_kl must be above 0"),
    ({"rewards": ["overlap"], "temperature": 0}, "rl.temperature must be above 0"),
    ({"rewards": ["overlap"], "train": {"num_processes": 2}}, "PPO runs in one process"),
])
def test_rl_settings_are_checked(rl, said):
    with pytest.raises(ValueError, match=said):
        train = rl.pop("train", {})
        RunConfig.from_dict({"method": {"stage": "ppo"}, "rl": rl, "train": train}).validate()


def test_an_rl_run_gets_a_reward_panel_with_its_spread():
    from studio.train.runs import curves
    from studio.ui.plots import training_curves

    logs = [{"step": s, "loss": 0.1, "reward": r, "reward_std": 0.5, "kl": 0.01 * s, "rewards/overlap/mean": r / 2}
            for s, r in ((1, 0.2), (2, 0.6))]
    fig = training_curves({"run-a": curves(logs)})
    titles = [a.text for a in fig.layout.annotations]
    assert titles == ["loss", "learning rate", "stage metrics", "reward (mean ± spread)"]
    band = next(t for t in fig.data if t.name == "run-a reward ± spread")
    assert list(band.y) == pytest.approx([0.7, 1.1, 0.1, -0.3])  # upper edge left to right, then lower back
    assert {t.name for t in fig.data} >= {"run-a reward", "run-a overlap", "run-a kl"}
    assert len(training_curves({"sft": curves([{"step": 1, "loss": 1.0}])}).layout.annotations) == 3


def test_a_reward_named_by_its_file(tmp_path):
    path = tmp_path / "my_reward.py"
    path.write_text("def reward(prompt, completion, **row):\n    return float('sorry' not in completion.lower())\n")
    assert call(rewards.code_reward(str(path)), ["Sorry!", "Fine."]) == [0.0, 1.0]
    with pytest.raises(StudioError, match="does not exist"):
        rewards.code_reward(str(tmp_path / "missing.py"))
    (tmp_path / "bad.py").write_text("def reward(p, c, **row):\n    return )\n")
    with pytest.raises(StudioError, match="bad.py, line 2"):
        rewards.code_reward(str(tmp_path / "bad.py"))
