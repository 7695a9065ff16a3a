"""The `rl:` section of a run config: settings of the stages that learn from their own answers
(rlhf: GRPO or RLOO through TRL; ppo: the studio's classic PPO).

    rl:
      rewards: [model, length]      # summed; see studio/methods/rewards.py for each
      reward_model: 20261127-reward # a reward-model run
      algorithm: grpo               # rlhf only: grpo or rloo
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

RL_ALGORITHMS = ("grpo", "rloo")
REWARDS = ("exact_match", "overlap", "contains", "final_answer", "regex", "json_valid", "length", "model", "code")


@dataclass
class RlSettings:
    rewards: list[str] = field(default_factory=lambda: ["model"])
    """What scores an answer, summed: model (the reward-model run below), exact_match or contains (against
    the row's reference answer), final_answer (its final answer against the reference's: maths), overlap (share of words in common with it), regex (rl.pattern), json_valid, length (rl.max_chars), code (rl.reward_code)."""
    reward_model: str | None = "latest"
    """Run id or folder of the reward model that scores answers (the 'model' reward); 'latest' (the default)
    takes the newest finished reward-model run when the run starts, and its config.yaml then names that run."""
    algorithm: str = "grpo"
    """rlhf stage: grpo (answers scored against their group's mean and spread) or rloo (against the mean of
    the other answers to the same prompt). The ppo stage uses its value estimate instead."""
    kl_coef: float = 0.05
    """Penalty on drifting from the starting policy (KL to the frozen reference)."""
    num_generations: int = 4
    """Answers sampled per prompt (rlhf compares them with each other; ppo uses them as its rollout)."""
    max_new_tokens: int = 64
    """Longest generated answer during training."""
    temperature: float = 1.0
    """Sampling temperature of the answers generated during training."""
    pattern: str = ""
    """The regular expression the regex reward looks for."""
    max_chars: int = 400
    """The length reward: no penalty up to this many characters, -1 at twice as many."""
    reward_code: str = ""
    """Python defining `reward(prompt, completion, **row) -> float`, or the path of a .py file holding it; run
    in the training worker (admins only)."""
    ppo_epochs: int = 4
    """ppo: passes over each rollout."""
    minibatches: int = 2
    """ppo: minibatches each rollout is split into per pass."""
    clip_range: float = 0.2
    """ppo: how far one update may move the probability ratio (and the value estimate) from the rollout's."""
    vf_coef: float = 0.1
    """ppo: weight of the value loss beside the policy loss."""
    gamma: float = 1.0
    """ppo: discount of future rewards within an answer."""
    lam: float = 0.95
    """ppo: GAE's lambda, trading bias (0) for variance (1) in the advantage."""
    target_kl: float | None = None
    """ppo: with a value, the KL coefficient adapts to keep the KL to the reference near it; None keeps it fixed."""
    whiten_rewards: bool = False
    """ppo: scale the rollout's rewards to unit variance before the advantages (advantages are always whitened)."""

    def check(self) -> None:
        from studio.methods.rewards import check_rewards

        if self.algorithm not in RL_ALGORITHMS:
            raise ValueError(f"rl.algorithm must be one of {', '.join(RL_ALGORITHMS)} (got {self.algorithm!r}).")
        check_rewards(list(self.rewards), self.reward_model, self.reward_code)
        if self.num_generations < 2:
            raise ValueError("Answers are compared with each other: rl.num_generations must be at least 2.")
        for key in ("kl_coef", "vf_coef"):
            if not (getattr(self, key) >= 0 and math.isfinite(getattr(self, key))):
                raise ValueError(f"rl.{key} cannot be negative (got {getattr(self, key)}).")
        for key in ("max_new_tokens", "max_chars", "ppo_epochs", "minibatches"):
            if getattr(self, key) < 1:
                raise ValueError(f"rl.{key} must be at least 1 (got {getattr(self, key)}).")
        if not self.temperature > 0:
            raise ValueError(f"rl.temperature must be above 0: answers are sampled (got {self.temperature}).")
        if not 0 < self.clip_range < 1:
            raise ValueError(f"rl.clip_range must be between 0 and 1 (got {self.clip_range}).")
        for key in ("gamma", "lam"):
            if not 0 <= getattr(self, key) <= 1:
                raise ValueError(f"rl.{key} must be between 0 and 1 (got {getattr(self, key)}).")
        if self.target_kl is not None and not self.target_kl > 0:
            raise ValueError(f"rl.target_kl must be above 0, or left out for a fixed KL coefficient "
                             f"(got {self.target_kl}).")
