"""Classic PPO for RLHF, the studio's own (TRL 1.x no longer ships one): a policy with a value head,
rollouts, a per-token KL penalty to the frozen reference, GAE, and clipped policy and value losses over
several minibatch passes per rollout. The arithmetic lives in ppo_math.py; this module runs it.

    studio train presets/tiny-ppo.yaml --set model.parent_run=<an SFT run>

One training step is one rollout: train.batch_size answers (train.batch_size / rl.num_generations prompts,
each answered rl.num_generations times), scored by the rewards rl.rewards names; then rl.ppo_epochs passes
over them in rl.minibatches minibatches, one optimiser step each. The value head is a linear layer on the
policy's last hidden state (the trunk is shared, so with LoRA the adapter serves both). With LoRA the
reference is the policy with its adapter switched off; full fine-tuning keeps a frozen copy.
"""

from __future__ import annotations

import copy
import math
import random
from contextlib import nullcontext
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from studio.config import RunConfig
from studio.methods import common, ppo_math, rl_common
from studio.methods.rlhf import prompt_data
from studio.models.loading import load_tokenizer

EVAL_PROMPTS = 32
"""Held-out prompts answered greedily for eval_reward."""


class PpoTrainer:
    """Trains the policy by PPO; the worker drives it like a transformers Trainer (train, save_model)."""

    def __init__(self, cfg: RunConfig, run_dir: Path | None, model: Any, tokenizer: Any, train: list[dict[str, Any]],
                 evaluation: list[dict[str, Any]] | None, reward_funcs: list[Any], callbacks: list[Any],
                 args: Any):
        import torch
        from transformers import get_scheduler
        from transformers.trainer_callback import CallbackHandler, TrainerControl, TrainerState

        self.cfg, self.rl, self.run_dir = cfg, cfg.rl, run_dir
        self.model, self.processing_class, self.args = model, tokenizer, args
        self.rows, self.eval_rows, self.reward_funcs = train, evaluation, reward_funcs
        self.per_rollout = max(1, cfg.train.batch_size // self.rl.num_generations)
        per_epoch = math.ceil(len(train) / self.per_rollout)
        self.max_steps = cfg.train.max_steps if cfg.train.max_steps > 0 else max(1, int(cfg.train.epochs * per_epoch))
        self.adapter = hasattr(model, "disable_adapter")
        self.ref = None if self.adapter else copy.deepcopy(model).eval().requires_grad_(False)
        hidden = model.config.get_text_config().hidden_size if hasattr(model.config, "get_text_config") else \
            model.config.hidden_size
        self.value_head = torch.nn.Linear(hidden, 1).to(model.device, torch.float32)
        torch.nn.init.normal_(self.value_head.weight, std=1.0 / math.sqrt(hidden + 1))
        torch.nn.init.zeros_(self.value_head.bias)
        params = [p for p in model.parameters() if p.requires_grad] + list(self.value_head.parameters())
        self.optimizer = torch.optim.AdamW(params, lr=cfg.train.learning_rate, weight_decay=cfg.train.weight_decay)
        updates = self.max_steps * self.rl.ppo_epochs * self.rl.minibatches
        warmup = cfg.train.warmup_ratio if cfg.train.warmup_ratio >= 1 else int(cfg.train.warmup_ratio * updates)
        self.lr_scheduler = get_scheduler(cfg.train.scheduler, self.optimizer, num_warmup_steps=int(warmup),
                                          num_training_steps=updates)
        self.kl = ppo_math.KlController(self.rl.kl_coef, self.rl.target_kl)
        self.state = TrainerState(max_steps=self.max_steps, logging_steps=cfg.train.logging_steps,
                                  save_steps=cfg.train.save_steps)
        self.control = TrainerControl()
        self.callback_handler = CallbackHandler(callbacks, model, tokenizer, self.optimizer, self.lr_scheduler)

    def remove_callback(self, callback: Any) -> None:
        self.callback_handler.remove_callback(callback)

    # ---- the rollout ------------------------------------------------------------------------------------
    def batch_rows(self, step: int) -> list[dict[str, Any]]:
        """The prompts of rollout `step`: the data in a seeded order per epoch, so a resumed run goes on."""
        start = step * self.per_rollout
        epoch, offset = divmod(start, len(self.rows))
        order = list(range(len(self.rows)))
        random.Random(self.cfg.train.seed + epoch).shuffle(order)
        picked = [self.rows[order[(offset + i) % len(order)]] for i in range(self.per_rollout)]
        return [r for r in picked for _ in range(self.rl.num_generations)]

    def forward(self, model: Any, ids: Any, attention: Any, start: int, values: bool = False) -> tuple[Any, ...]:
        """Log-probabilities of tokens start… under `model`, with their entropies (and value estimates)."""
        import torch

        positions = (attention.cumsum(1) - 1).clamp(min=0)
        out = model(input_ids=ids, attention_mask=attention, position_ids=positions, output_hidden_states=values)
        logits = out.logits[:, start - 1:-1].float() / self.rl.temperature  # the distribution answers came from
        logp = torch.log_softmax(logits, dim=-1).gather(-1, ids[:, start:].unsqueeze(-1)).squeeze(-1)
        entropy = ppo_math.entropy_from_logits(logits)
        if not values:
            return logp, entropy
        hidden = out.hidden_states[-1][:, start - 1:-1].float()
        return logp, entropy, self.value_head(hidden).squeeze(-1)

    def rollout(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        tok, model = self.processing_class, self.model
        texts = [tok.apply_chat_template(r["prompt"], tokenize=False, add_generation_prompt=True) for r in rows]
        side, tok.padding_side = tok.padding_side, "left"
        try:
            batch = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
        finally:
            tok.padding_side = side
        start = batch["input_ids"].shape[1]
        model.eval()
        with torch.no_grad():
            ids = model.generate(**batch, do_sample=True, temperature=self.rl.temperature, top_p=1.0, top_k=0,
                                 max_new_tokens=self.rl.max_new_tokens, eos_token_id=tok.eos_token_id,
                                 pad_token_id=tok.pad_token_id)
            answer = ids[:, start:]
            ended = (answer == tok.eos_token_id).int()
            after_end = (ended.cumsum(1) - ended) > 0  # tokens after the first end-of-text are padding
            mask = (~after_end).float()
            attention = torch.cat([batch["attention_mask"], mask.long()], dim=1)
            logp, entropy, values = self.forward(model, ids, attention, start, values=True)
            with (model.disable_adapter() if self.adapter else nullcontext()):
                ref_logp, _ = self.forward(model if self.adapter else self.ref, ids, attention, start)
        answers = [tok.decode(a[m.bool()], skip_special_tokens=True).strip() for a, m in zip(answer, mask)]
        scores, by_name = self.score(rows, answers)
        return {"ids": ids, "attention": attention, "start": start, "mask": mask, "logp": logp, "ref_logp": ref_logp,
                "values": values, "scores": scores, "by_name": by_name, "entropy": entropy, "answers": answers}

    def score(self, rows: list[dict[str, Any]], answers: list[str]) -> tuple[Any, dict[str, list[float]]]:
        import torch

        prompts = [r["prompt"] for r in rows]
        completions = [[{"role": "assistant", "content": a}] for a in answers]
        columns = {"reference": [r.get("reference", "") for r in rows],
                   "trainer_state": SimpleNamespace(global_step=self.state.global_step)}
        by_name = {f.__name__: f(prompts=prompts, completions=completions, **columns) for f in self.reward_funcs}
        total = [sum(values) for values in zip(*by_name.values())]
        return torch.tensor(total, dtype=torch.float32, device=self.model.device), by_name

    # ---- the update -------------------------------------------------------------------------------------
    def step(self, rows: list[dict[str, Any]]) -> dict[str, float]:
        import torch

        r = self.rollout(rows)
        mask, scores = r["mask"], r["scores"]
        if self.rl.whiten_rewards:
            scores = (scores - scores.mean()) / (scores.std() + 1e-8) if len(scores) > 1 else scores
        rewards, kl = ppo_math.token_rewards(scores, r["logp"], r["ref_logp"], mask, self.kl.value)
        advantages, returns = ppo_math.gae(rewards, r["values"], mask, self.rl.gamma, self.rl.lam)
        advantages = ppo_math.whiten(advantages, mask)
        self.model.train()
        stats: dict[str, list[float]] = {}
        size = len(rows)
        per_mb = max(1, math.ceil(size / self.rl.minibatches))
        for _ in range(self.rl.ppo_epochs):
            order = torch.randperm(size, device=mask.device)
            for first in range(0, size, per_mb):
                idx = order[first:first + per_mb]
                logp, _, values = self.forward(self.model, r["ids"][idx], r["attention"][idx], r["start"], values=True)
                pg, pg_stats = ppo_math.policy_loss(logp, r["logp"][idx], advantages[idx], mask[idx],
                                                    self.rl.clip_range)
                vf, vf_stats = ppo_math.value_loss(values, r["values"][idx], returns[idx], mask[idx],
                                                   self.rl.clip_range)
                loss = pg + self.rl.vf_coef * vf
                loss.backward()
                params = [p for g in self.optimizer.param_groups for p in g["params"]]
                norm = torch.nn.utils.clip_grad_norm_(params, self.cfg.train.max_grad_norm)
                self.optimizer.step()
                self.lr_scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
                for key, value in {"loss": loss.item(), "policy_loss": pg.item(), "value_loss": vf.item(),
                                   "grad_norm": float(norm), **pg_stats, **vf_stats}.items():
                    stats.setdefault(key, []).append(value)
        kl_sum = float(kl.sum(1).mean())
        logs = {key: sum(v) / len(v) for key, v in stats.items()}
        logs.update({
            "reward": float(r["scores"].mean()), "reward_std": float(r["scores"].std()) if size > 1 else 0.0,
            "kl": kl_sum, "kl_coef": self.kl.value,
            "entropy": float(ppo_math.masked_mean(r["entropy"], mask)),
            "completions/mean_length": float(mask.sum(1).mean()),
            "value_mean": float(ppo_math.masked_mean(r["values"], mask)),
            "learning_rate": self.lr_scheduler.get_last_lr()[0],
            "num_tokens": float(r["attention"].sum()),
        })
        for name, values in r["by_name"].items():
            mean = sum(values) / len(values)
            logs[f"rewards/{name}/mean"] = mean
            logs[f"rewards/{name}/std"] = math.sqrt(sum((v - mean) ** 2 for v in values) / max(1, len(values) - 1))
        self.kl.update(kl_sum, size)
        self.samples(rows, r)
        return logs

    def samples(self, rows: list[dict[str, Any]], r: dict[str, Any]) -> None:
        every = max(1, self.cfg.train.logging_steps)
        if self.run_dir is None or self.state.global_step % every:
            return
        log = rl_common.SampleLog(self.run_dir, every)
        log.step = self.state.global_step
        prompts = [x["prompt"] for x in rows]
        log.record(prompts, r["answers"], r["by_name"], [x.get("reference", "") for x in rows])

    def evaluate(self) -> dict[str, float]:
        rows = (self.eval_rows or [])[:EVAL_PROMPTS]
        if not rows:
            return {}
        self.model.eval()
        means = rl_common.mean_reward(self.model, self.processing_class, rows, self.reward_funcs,
                                      self.rl.max_new_tokens)
        return {"eval_reward": means["total"]}

    # ---- the loop the worker runs -----------------------------------------------------------------------
    def train(self, resume_from_checkpoint: str | None = None) -> None:
        import torch

        torch.manual_seed(self.cfg.train.seed)
        if resume_from_checkpoint:
            self.load_checkpoint(Path(resume_from_checkpoint))
        self.control = self.callback_handler.on_train_begin(self.args, self.state, self.control)
        eval_every = self.cfg.train.eval_steps
        while self.state.global_step < self.max_steps:
            self.control = self.callback_handler.on_step_begin(self.args, self.state, self.control)
            logs = self.step(self.batch_rows(self.state.global_step))
            self.state.global_step += 1
            self.state.epoch = self.state.global_step * self.per_rollout / len(self.rows)
            last = self.state.global_step >= self.max_steps
            if eval_every > 0 and (self.state.global_step % eval_every == 0 or last) or (last and eval_every == 0):
                logs.update(self.evaluate())
            if self.state.global_step % max(1, self.cfg.train.logging_steps) == 0 or last or \
                    self.state.global_step == 1:
                self.state.log_history.append({**logs, "step": self.state.global_step})
                self.control = self.callback_handler.on_log(self.args, self.state, self.control, logs=logs)
            self.control = self.callback_handler.on_step_end(self.args, self.state, self.control)
            save_every = self.cfg.train.save_steps
            if self.control.should_save or (save_every > 0 and self.state.global_step % save_every == 0):
                self.save_checkpoint()
                self.control.should_save = False
            if self.control.should_training_stop:
                break
        self.control = self.callback_handler.on_train_end(self.args, self.state, self.control)

    def save_model(self, out: str) -> None:
        self.model.save_pretrained(out)

    def checkpoint_dir(self) -> Path:
        return Path(self.args.output_dir) / f"checkpoint-{self.state.global_step}"

    def save_checkpoint(self) -> None:
        import torch

        folder = self.checkpoint_dir()
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(str(folder))
        torch.save({"value_head": self.value_head.state_dict(), "optimizer": self.optimizer.state_dict(),
                    "scheduler": self.lr_scheduler.state_dict(), "kl_coef": self.kl.value}, folder / "ppo.pt")
        self.state.save_to_json(str(folder / "trainer_state.json"))  # written last: the checkpoint is whole
        limit = self.cfg.train.save_total_limit
        if limit:
            older = sorted(Path(self.args.output_dir).glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
            for stale in older[:-limit]:
                import shutil

                shutil.rmtree(stale, ignore_errors=True)

    def load_checkpoint(self, folder: Path) -> None:
        import torch
        from transformers.trainer_callback import TrainerState

        if self.adapter:
            from peft import set_peft_model_state_dict
            from safetensors.torch import load_file

            set_peft_model_state_dict(self.model, load_file(str(folder / "adapter_model.safetensors")))
        else:
            from safetensors.torch import load_file

            self.model.load_state_dict(load_file(str(folder / "model.safetensors")), strict=False)
        saved = torch.load(folder / "ppo.pt", map_location=self.model.device, weights_only=True)
        self.value_head.load_state_dict(saved["value_head"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.lr_scheduler.load_state_dict(saved["scheduler"])
        self.kl.value = float(saved["kl_coef"])
        self.state = TrainerState.load_from_json(str(folder / "trainer_state.json"))
        self.state.max_steps = self.max_steps


def build_trainer(cfg: RunConfig, run_dir: Path, callbacks: list[Any]) -> PpoTrainer:
    from transformers import TrainingArguments

    precision = common.resolve_precision(cfg.train.precision)
    tokenizer = load_tokenizer(cfg.model.name, cfg.model.revision, cfg.model.trust_remote_code)
    train, evaluation = prompt_data(cfg, run_dir)
    funcs = rl_common.reward_functions(cfg, run_dir, tokenizer)
    model = common.load_causal_lm(cfg, precision, run_dir=run_dir)
    peft = common.lora_config(cfg)
    if peft is not None:
        from peft import get_peft_model, prepare_model_for_kbit_training

        if cfg.method.name == "qlora":
            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
        model = get_peft_model(model, peft)
    args = TrainingArguments(**common.training_arguments(cfg, run_dir, precision, has_eval=evaluation is not None))
    return PpoTrainer(cfg, run_dir, model, tokenizer, list(train), list(evaluation) if evaluation is not None else None,
                      funcs, callbacks, args)
