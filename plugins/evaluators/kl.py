"""Evaluator ``kl``: KL(policy || reference) in nats per sequence, estimated from policy samples.

Two estimators from the same samples y ~ π(·|x), each with the standard error of its mean over samples:

* ``kl``: the log-ratio Σ_t −r_t = log π(y|x) − log π_ref(y|x), unbiased but noisy (it can be negative);
* ``kl_k3``: Σ_t (exp(r_t) − 1 − r_t) with r_t = log π_ref(y_t|·) − log π(y_t|·), per token non-negative and
  unbiased for the sequence KL (its expectation given the prefix is the per-token KL, and the sequence KL is
  the expected sum of per-token KLs), with lower variance when the policy is close to the reference.

Both use the log-probabilities of the distribution actually sampled from (the sampling temperature).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from harness.plugin import EvaluatorSpec, Metric, hookimpl, mean_and_se

if TYPE_CHECKING:
    from harness.plugin import EvalContext


def kl_estimates(
    policy_logprobs: torch.Tensor, reference_logprobs: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sequence log-ratio and k3 KL estimates from per-token log-probabilities ([n, T] each).

    Returns two tensors of shape [n] (float64): Σ_t (log π − log π_ref) and Σ_t (exp(r_t) − 1 − r_t).
    """
    r = (reference_logprobs.double() - policy_logprobs.double()) * mask
    log_ratio = (-r).sum(dim=1)
    k3 = ((torch.expm1(r) - r) * mask).sum(dim=1)
    return log_ratio, k3


def evaluate(ctx: EvalContext) -> dict[str, float]:
    """``kl``, ``kl_se`` (log-ratio) and ``kl_k3``, ``kl_k3_se`` (k3), in nats per sequence."""
    if ctx.is_reference:
        return {"kl": 0.0, "kl_se": 0.0, "kl_k3": 0.0, "kl_k3_se": 0.0}
    policy, reference = ctx.policy_tokens, ctx.reference_tokens
    log_ratio, k3 = kl_estimates(policy.logprobs, reference.logprobs, policy.mask)
    kl, kl_se = mean_and_se(log_ratio)
    kl_k3, kl_k3_se = mean_and_se(k3)
    return {"kl": kl, "kl_se": kl_se, "kl_k3": kl_k3, "kl_k3_se": kl_k3_se}


@hookimpl
def harness_evaluators_register() -> list[EvaluatorSpec]:
    """The KL evaluator."""
    return [
        EvaluatorSpec(
            name="kl",
            evaluate=evaluate,
            description="KL(policy || reference), nats per sequence, "
            "from policy samples (log-ratio and k3 estimators)",
            metrics=[
                Metric(
                    "kl",
                    "KL(policy ‖ reference) in nats per sequence, estimated on sampled completions "
                    "(log-ratio estimator)",
                    "minimize",
                    headline=True,
                    se="kl_se",
                ),
                Metric("kl_se", "standard error of kl", headline=True),
                Metric(
                    "kl_k3",
                    "KL(policy ‖ reference) in nats per sequence, k3 estimator (lower variance)",
                    "minimize",
                    se="kl_k3_se",
                ),
                Metric("kl_k3_se", "standard error of kl_k3"),
            ],
        )
    ]
