"""Evaluator ``win_rate``: how often the policy's completion beats the reference model's on the same prompt.

The reference's samples come from the same prompts and sampling seed (and from the reference-evaluation cache,
so they are drawn once per sweep). Completions are compared by the gold reward when the data source has one,
else by the reward model (``eval.reward_model``); with neither there is no metric. Per prompt, every policy
completion is compared with every reference completion of that prompt (one each by default): a win counts 1, a
tie 1/2. ``win_rate`` is the mean over prompts and ``win_rate_se`` its standard error over prompts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from harness.plugin import EvaluatorSpec, Metric, hookimpl, mean_and_se

if TYPE_CHECKING:
    from harness.plugin import EvalContext


def win_rates(policy: torch.Tensor, reference: torch.Tensor, samples_per_prompt: int) -> torch.Tensor:
    """Per-prompt win rate of ``policy`` rewards over ``reference`` rewards (ties 1/2), shape [prompts].

    Both tensors hold ``samples_per_prompt`` consecutive rewards per prompt, prompts in the same order.
    """
    p = policy.double().reshape(-1, samples_per_prompt, 1)
    r = reference.double().reshape(-1, 1, samples_per_prompt)
    outcome = (p > r).double() + 0.5 * (p == r).double()
    return outcome.mean(dim=(1, 2))


def _rewards(ctx: EvalContext) -> tuple[torch.Tensor, torch.Tensor] | None:
    if ctx.gold_reward is not None:
        return ctx.gold_rewards, ctx.reference_gold_rewards
    policy = ctx.reward_model_scores
    if policy is None:
        return None
    return policy, ctx.reference_reward_model_scores


def evaluate(ctx: EvalContext) -> dict[str, float]:
    """``win_rate`` and ``win_rate_se`` against the reference's samples,
    or {} with no reward to compare by."""
    if ctx.is_reference:  # the reference against its own samples: every comparison is a tie
        has_reward = ctx.gold_reward is not None or ctx.reward_model_path
        return {"win_rate": 0.5, "win_rate_se": 0.0} if has_reward else {}
    rewards = _rewards(ctx)
    if rewards is None:
        return {}
    mean, se = mean_and_se(win_rates(*rewards, int(ctx.eval_cfg.samples_per_prompt)))
    return {"win_rate": mean, "win_rate_se": se}


@hookimpl
def harness_evaluators_register() -> list[EvaluatorSpec]:
    """The win-rate evaluator."""
    return [
        EvaluatorSpec(
            name="win_rate",
            evaluate=evaluate,
            description="win rate of policy samples over the reference's (gold reward, else reward model)",
            metrics=[
                Metric(
                    "win_rate",
                    "fraction of prompts where the policy's completion beats the reference's (gold "
                    "reward, else reward model; ties 1/2)",
                    "maximize",
                    headline=True,
                    se="win_rate_se",
                ),
                Metric("win_rate_se", "standard error of win_rate"),
            ],
        )
    ]
