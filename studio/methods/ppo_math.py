"""The arithmetic of classic PPO for language models, as pure functions on tensors (tested one by one).

Notation, per answer of T tokens (t = 0 … T-1), with a mask m_t that is 1 on the answer's tokens:
    log π(a_t)      the policy's log-probability of token t (π_old: at the rollout; π_ref: the frozen start)
    r_t             the reward of token t:  r_t = -β · (log π_old(a_t) - log π_ref(a_t))  +  [t = T-1] · R
                    (R: the answer's score from the rewards; β: the KL coefficient)
    V_t             the value estimate before token t; V_T = 0
    δ_t             = r_t + γ V_{t+1} - V_t
    A_t             = δ_t + γλ A_{t+1}         (GAE: generalised advantage estimation, A_T = 0)
    G_t             = A_t + V_t                (the return the value head learns)
    ρ_t             = exp(log π(a_t) - log π_old(a_t))
    policy loss     = mean_t max(-A_t ρ_t, -A_t clip(ρ_t, 1-ε, 1+ε))
    value loss      = ½ mean_t max((V'_t - G_t)², (clip(V'_t, V_t - ε, V_t + ε) - G_t)²)
Means are over the answer's tokens (the mask). Advantages are whitened over the rollout before the loss.
The adaptive KL coefficient follows Ziegler et al. (2019): β ← β (1 + clip(KL/target - 1, -0.2, 0.2) · n/H).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

KL_HORIZON = 10_000
"""H in the adaptive KL update: how many answers it takes to move β by the clipped error."""


def masked_mean(values: Any, mask: Any, dim: int | None = None) -> Any:
    if dim is None:
        return (values * mask).sum() / mask.sum().clamp(min=1)
    return (values * mask).sum(dim) / mask.sum(dim).clamp(min=1)


def whiten(values: Any, mask: Any, shift_mean: bool = True) -> Any:
    """Scale the masked values to unit variance (and zero mean unless shift_mean is False)."""
    import torch

    mean = masked_mean(values, mask)
    var = masked_mean((values - mean) ** 2, mask)
    out = (values - mean) * torch.rsqrt(var + 1e-8)
    if not shift_mean:
        out = out + mean
    return out * mask


def token_rewards(scores: Any, logprobs: Any, ref_logprobs: Any, mask: Any, kl_coef: float) -> tuple[Any, Any]:
    """(r_t, per-token KL): the KL penalty on every answer token, the score added on its last token."""
    import torch

    kl = (logprobs - ref_logprobs) * mask
    rewards = -kl_coef * kl
    lengths = mask.sum(1).long().clamp(min=1)
    last = torch.arange(mask.shape[1], device=mask.device).unsqueeze(0) == (lengths - 1).unsqueeze(1)
    rewards = rewards + last.float() * scores.unsqueeze(1)
    return rewards * mask, kl


def gae(rewards: Any, values: Any, mask: Any, gamma: float, lam: float) -> tuple[Any, Any]:
    """(advantages A_t, returns G_t) by generalised advantage estimation, right to left; masked tokens
    (after the answer's end) carry nothing back."""
    import torch

    values = values * mask
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[:, 0])
    steps = rewards.shape[1]
    for t in reversed(range(steps)):
        next_value = values[:, t + 1] if t + 1 < steps else torch.zeros_like(running)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        running = (delta + gamma * lam * running) * mask[:, t]
        advantages[:, t] = running
    return advantages, (advantages + values) * mask


def policy_loss(logprobs: Any, old_logprobs: Any, advantages: Any, mask: Any, clip_range: float
                ) -> tuple[Any, dict[str, float]]:
    """PPO's clipped surrogate loss, with the share of tokens clipped and the approximate KL to π_old."""
    import torch

    log_ratio = (logprobs - old_logprobs) * mask
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip_range, 1.0 + clip_range)
    loss = masked_mean(torch.maximum(unclipped, clipped), mask)
    stats = {"clipfrac": float(masked_mean((clipped > unclipped).float().detach(), mask)),
             "approx_kl": float(masked_mean(0.5 * log_ratio.detach() ** 2, mask))}
    return loss, stats


def value_loss(values: Any, old_values: Any, returns: Any, mask: Any, clip_range: float
               ) -> tuple[Any, dict[str, float]]:
    """The clipped value loss, with the share of tokens where clipping decided it."""
    import torch

    clipped_values = old_values + torch.clamp(values - old_values, -clip_range, clip_range)
    plain, clipped = (values - returns) ** 2, (clipped_values - returns) ** 2
    loss = 0.5 * masked_mean(torch.maximum(plain, clipped), mask)
    return loss, {"value_clipfrac": float(masked_mean((clipped > plain).float().detach(), mask))}


def entropy_from_logits(logits: Any) -> Any:
    import torch

    logp = torch.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(-1)


@dataclass
class KlController:
    """β, fixed, or adapted towards a target KL (per answer, summed over its tokens)."""

    value: float
    target: float | None = None
    horizon: int = KL_HORIZON

    def update(self, kl: float, answers: int) -> float:
        if self.target is not None:
            error = min(max(kl / self.target - 1.0, -0.2), 0.2)
            self.value *= 1.0 + error * answers / self.horizon
        return self.value
