"""ORPO on ``trl.experimental.orpo.ORPOTrainer``: NLL plus an odds-ratio term, no reference model.

Note: TRL's ORPOTrainer computes the NLL term over the prompt *and* the chosen completion, where the ORPO
paper uses the completion only; the loss-fidelity test pins TRL's behaviour so a change in either direction
shows.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from harness.plugin import Hyperparameter, MethodSpec, Profile, hookimpl

if TYPE_CHECKING:
    from transformers import PreTrainedModel, Trainer

    from harness.plugin import TrainContext

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


def build_trainer(ctx: TrainContext) -> Trainer:
    """TRL's ORPOTrainer for ``ctx`` (policy only)."""
    return ctx.trl_trainer()


def train(ctx: TrainContext) -> PreTrainedModel:
    """Train with ORPOTrainer; returns the trained model."""
    return ctx.run_trainer(build_trainer(ctx))


@hookimpl
def harness_methods_register() -> list[MethodSpec]:
    """ORPO: Odds Ratio Preference Optimization (Hong et al. 2024)."""
    return [
        MethodSpec(
            name="orpo",
            train=train,
            data_kind="pairwise",
            models_in_memory=1,
            needs_reference=False,
            trainer="trl.experimental.orpo:ORPOTrainer",
            lr_range=(1e-6, 1e-5),
            description="Odds Ratio Preference Optimization (reference-free, SFT + preference)",
            hyperparameters=[
                Hyperparameter(
                    "beta",
                    0.1,
                    "weight lambda of the odds-ratio term against the SFT (NLL) term; real models: 0.05 "
                    "to 0.5",
                    bounds="(0, inf)",
                    field="beta",
                    paper_name="lambda",
                )
            ],
            # Real models (the seed's values; ORPO trains from the base model, like SFT,
            # so its rate is higher).
            defaults={"learning_rate": 8e-6, "trl": {"max_length": 1024}},
            # Toy world: the tuning on worlds 0-2 (benchmarks/toy_defaults.py, leaderboards/toy-defaults/).
            profiles={
                "toy": Profile(
                    {
                        "learning_rate": 2e-3,
                        "epochs": 3,
                        "batch_size": 16,
                        "grad_accum": 1,
                        "beta": 1.0,
                        "trl": {"max_length": 64},
                    },
                    {
                        "learning_rate": "tag(log, interval(4e-4, 1e-2))",  # the tuning grid's, widened
                        "beta": "tag(log, interval(0.1, 3.0))",
                    },
                )
            },
            search_space={
                "beta": "tag(log, interval(0.02, 1.0))",
                "learning_rate": "tag(log, interval(1e-6, 3e-5))",
            },
            # trl/experimental/orpo/orpo_trainer.py: odds_ratio_loss, concatenated_forward,
            # get_batch_loss_metrics
            loss_notes="ORPOTrainer: NLL − beta·mean log σ(log odds(y_chosen) − log "
            "odds(y_rejected)), the odds from log-probs averaged per completion token; the NLL is "
            "a per-token mean over the prompt AND the chosen completion (TRL; the paper's covers "
            "the completion only). beta is the paper's lambda.",
        )
    ]
