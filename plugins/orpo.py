"""ORPO on ``trl.experimental.orpo.ORPOTrainer``: NLL plus an odds-ratio term, no reference model.

Note: TRL's ORPOTrainer computes the NLL term over the prompt *and* the chosen completion, where the ORPO paper
uses the completion only; the loss-fidelity test pins TRL's behaviour so a change in either direction shows.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.nn.functional as F
from harness_plugins._defaults import method_defaults

from harness import MethodSpec, hookimpl

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # we use trl.experimental on purpose


def orpo_loss(
    chosen_avg_logps: torch.Tensor, rejected_avg_logps: torch.Tensor, chosen_nll: torch.Tensor, *, beta: float
) -> torch.Tensor:
    """ORPO loss (Hong et al. 2024, eq. 6-7): NLL(chosen) - β · mean log σ(log odds(c) - log odds(r)).

    ``*_avg_logps`` [batch]: per-token average log-probability of each completion under the policy;
    odds(y) = p / (1 - p) with p = exp(avg logp). ``chosen_nll`` is the scalar token-mean NLL of the chosen
    sequences (TRL: prompt and completion tokens).
    """
    log_odds = (chosen_avg_logps - rejected_avg_logps) - (
        torch.log1p(-torch.exp(chosen_avg_logps)) - torch.log1p(-torch.exp(rejected_avg_logps))
    )
    return chosen_nll - beta * F.logsigmoid(log_odds).mean()


def build_trainer(ctx: Any) -> Any:
    """TRL's ORPOTrainer for ``ctx`` (policy only)."""
    from trl.experimental.orpo import ORPOConfig, ORPOTrainer

    return ctx.trl_trainer(ORPOTrainer, ORPOConfig)


def train(ctx: Any) -> torch.nn.Module:
    """Train with ORPOTrainer; returns the trained model."""
    return ctx.run_trainer(build_trainer(ctx))


@hookimpl
def harness_methods_register() -> list[MethodSpec]:
    """ORPO: Odds Ratio Preference Optimization."""
    return [
        MethodSpec(
            name="orpo", train=train, data_kind="pairwise", models_in_memory=1, needs_reference=False,
            defaults=method_defaults("orpo"), lr_range=(1e-6, 1e-5),
            config_class="trl.experimental.orpo:ORPOConfig",
            description="Odds Ratio Preference Optimization (reference-free, SFT + preference)",
            search_space={"beta": "tag(log, interval(0.02, 1.0))",
                          "learning_rate": "tag(log, interval(1e-5, 3e-4))"},
        )
    ]
