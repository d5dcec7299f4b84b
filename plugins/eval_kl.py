"""Evaluator ``kl``: KL(policy || reference) in nats per sequence, estimated from policy samples.

For samples y ~ π(·|x), log π(y|x) - log π_ref(y|x) is an unbiased estimate of the sequence-level KL; the mean
over held-out prompts and its standard error are reported.
"""

from __future__ import annotations

from typing import Any

from harness import EvaluatorSpec, hookimpl
from harness.evaluation import mean_and_se


def evaluate(ctx: Any) -> dict[str, float]:
    """``kl`` (mean log-ratio of policy samples, nats per sequence) and ``kl_se``."""
    if ctx.is_reference:
        return {"kl": 0.0, "kl_se": 0.0}
    mean, se = mean_and_se(ctx.policy_logprobs - ctx.reference_logprobs)
    return {"kl": mean, "kl_se": se}


@hookimpl
def harness_evaluators_register() -> list[EvaluatorSpec]:
    """The KL evaluator."""
    return [EvaluatorSpec(name="kl", evaluate=evaluate,
                          description="KL(policy || reference), nats per sequence, from policy samples")]
