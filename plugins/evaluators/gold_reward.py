"""Evaluator ``gold_reward``: mean programmatic reward of policy samples on held-out prompts.

The reward comes from the data source (``harness_gold_reward``; the toy world defines one). Data without a
gold reward yields no metric rather than an error, so the same eval config works everywhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.plugin import EvaluatorSpec, Metric, gold_reward, hookimpl, mean_and_se

if TYPE_CHECKING:
    from harness.plugin import EvalContext


def evaluate(ctx: EvalContext) -> dict[str, float]:
    """``gold_reward`` (mean) and ``gold_reward_se`` (its standard error), or {} without a gold reward."""
    rewards = ctx.gold_rewards
    if rewards is None:
        return {}
    ctx.add_sample_scores("gold_reward", rewards.tolist(), ctx.reference_gold_rewards.tolist())
    mean, se = mean_and_se(rewards)
    return {"gold_reward": mean, "gold_reward_se": se}


@hookimpl
def harness_evaluators_register() -> list[EvaluatorSpec]:
    """The gold-reward evaluator."""
    return [
        EvaluatorSpec(
            name="gold_reward",
            evaluate=evaluate,
            active=lambda cfg: gold_reward(cfg) is not None,
            description="mean gold (programmatic) reward of policy samples on held-out prompts",
            metrics=[
                Metric(
                    "gold_reward",
                    "mean gold (true, programmatic) reward of sampled completions on held-out prompts",
                    "maximize",
                    headline=True,
                    se="gold_reward_se",
                    objective_priority=0,
                ),
                Metric("gold_reward_se", "standard error of gold_reward", column="gold_se", headline=True),
            ],
        )
    ]
