"""KTO on ``trl.KTOTrainer``: unpaired (thumbs up/down) data; pairwise data is unpaired by the harness."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from harness_plugins.methods.dpo import policy_and_reference

from harness.plugin import Hyperparameter, MethodSpec, Profile, hookimpl

if TYPE_CHECKING:
    from transformers import PreTrainedModel, Trainer

    from harness.plugin import TrainContext


def kto_loss(
    chosen_logratios: torch.Tensor,
    rejected_logratios: torch.Tensor,
    kl: torch.Tensor,
    *,
    beta: float,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
) -> torch.Tensor:
    """Mean KTO loss (Ethayarajh et al. 2024, eq. 7) over the desirable and undesirable examples of a batch.

    ``*_logratios`` have shape [n_desirable] / [n_undesirable]: logπ(y|x) - logπ_ref(y|x) summed over the
    completion. ``kl`` is the batch's reference point z0: the mean log-ratio of mismatched (prompt,
    completion) pairs, clamped at 0. Desirable: 1 - σ(β(r - z0)); undesirable: 1 - σ(β(z0 - r)).
    """
    chosen = desirable_weight * (1 - torch.sigmoid(beta * (chosen_logratios - kl)))
    rejected = undesirable_weight * (1 - torch.sigmoid(beta * (kl - rejected_logratios)))
    return torch.cat([chosen, rejected]).nanmean()


def build_trainer(ctx: TrainContext) -> Trainer:
    """TRL's KTOTrainer for ``ctx``. The data is shuffled first (seeded): KTO samples sequentially and takes
    the KL reference completions from neighbouring rows, so unpaired rows of one pair must not sit
    together."""
    return ctx.trl_trainer(
        ref_model=ctx.reference, train_dataset=ctx.train_data.shuffle(seed=int(ctx.cfg.seed))
    )


def train(ctx: TrainContext) -> PreTrainedModel:
    """Train with KTOTrainer; returns the trained model."""
    return ctx.run_trainer(build_trainer(ctx))


@hookimpl
def harness_methods_register() -> list[MethodSpec]:
    """KTO: Kahneman-Tversky Optimization (Ethayarajh et al. 2024)."""
    return [
        MethodSpec(
            name="kto",
            train=train,
            data_kind="unpaired",
            models_in_memory=policy_and_reference,
            needs_reference=True,
            trainer="trl:KTOTrainer",
            lr_range=(5e-7, 5e-6),
            description="Kahneman-Tversky Optimization (unpaired thumbs up/down)",
            hyperparameters=[
                Hyperparameter(
                    "beta", 0.1, "KL strength; real models: 0.05 to 0.5", bounds="(0, inf)", field="beta"
                )
            ],
            # Real models (the seed's values). Pairwise data gives two unpaired examples per pair.
            defaults={
                "learning_rate": 5e-7,
                "trl": {
                    "desirable_weight": 1.0,  # raise it if desirable examples are rarer than undesirable
                    "undesirable_weight": 1.0,
                    "max_length": 1024,
                },
            },  # prompt + completion tokens
            # Toy world: 1.5 epochs of the unpaired rows (two per pair) is 375 steps of 16, every method's toy
            # budget; rate and beta from the tuning on worlds 0-2 (leaderboards/toy-defaults/).
            profiles={
                "toy": Profile(
                    {
                        "learning_rate": 6e-4,
                        "epochs": 1.5,
                        "batch_size": 16,
                        "grad_accum": 1,
                        "beta": 0.3,
                        "trl": {"max_length": 64},
                    },
                    {"learning_rate": "tag(log, interval(4e-5, 1e-3))"},  # the tuning grid's, widened
                )
            },
            search_space={
                "beta": "tag(log, interval(0.02, 0.5))",
                "learning_rate": "tag(log, interval(1e-7, 1e-5))",
            },
            # trl/trainer/kto_trainer.py: KTOTrainer.get_batch_loss_metrics
            loss_notes="KTOTrainer, loss_type=kto: 1 − σ(beta·(r − z0)) per desirable and 1 − "
            "σ(beta·(z0 − r)) per undesirable example, r = log π − log π_ref summed over "
            "completion tokens, z0 = the batch's mean log-ratio on mismatched prompt/completion "
            "pairs (detached, clamped at 0); weighted by desirable_weight / undesirable_weight, "
            "mean over examples. One pair gives two examples.",
        )
    ]
