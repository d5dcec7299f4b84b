"""Method ``rdpo``: length-regularised DPO (Park et al. 2024, "Disentangling Length from Quality in Direct
Preference Optimization", arXiv 2403.19159), written on the harness's pairwise-loss extension point.

DPO's implicit reward grows with a completion's length, so a policy trained on data whose chosen answers are
the longer ones learns to be verbose. R-DPO puts a length penalty α·|y| into the RLHF objective; the implicit
reward then gains +α·|y|, and the loss becomes::

    loss = -log σ(β·(Δ_chosen − Δ_rejected) + α·(|y_chosen| − |y_rejected|)),
       Δ = log π(y|x) − log π_ref(y|x)

Where the chosen completion is the longer one, the length term already pays part of the margin, so the policy
is pushed less to raise its likelihood: the pairs where length decided the preference teach less. With α = 0
it is DPO.

The whole method is :func:`rdpo_loss`, a pure function of a :class:`harness.plugin.PairwiseBatch`, and the
declaration in :func:`method_spec`: the harness trains it on TRL's DPOTrainer with only the loss replaced, so
the reference pass, LoRA, precision and TRL's logged metrics are DPO's. No TRL import here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from harness.plugin import Hyperparameter, MethodSpec, PairwiseBatch, Profile, pairwise_loss_method

HYPERPARAMETERS = [
    Hyperparameter(
        "beta",
        0.1,
        "inverse temperature of the implicit reward (DPO's KL strength); real models: 0.05 to 0.5",
        bounds="(0, inf)",
        field="beta",  # also DPOConfig.beta, which scales the rewards TRL logs (rewards/chosen = β·Δ_chosen)
    ),
    Hyperparameter(
        "alpha",
        0.05,
        "α, the margin per token of length difference that the longer chosen completion gets for free "
        "(0 is DPO); larger values counter a length bias of the data more",
        bounds="[0, inf)",
    ),
]
# The toy world's tuning (model=toy): the built-in dpo's (a higher rate, more epochs, short sequences).
TOY = Profile(
    {"learning_rate": 3e-4, "epochs": 3, "batch_size": 16, "grad_accum": 1, "trl": {"max_length": 64}},
    {"learning_rate": "tag(log, interval(1e-5, 3e-4))"},
)
LOSS_NOTES = (
    "DPOTrainer with the plugin's loss: -log σ(beta·(Δ_chosen − Δ_rejected) + "
    "alpha·(|y_chosen| − |y_rejected|)), Δ = log π − log π_ref summed over the completion's "
    "tokens, |y| their count (EOS included); mean over pairs."
)


def rdpo_loss(batch: PairwiseBatch, settings: Mapping[str, Any]) -> torch.Tensor:
    """The R-DPO loss of each pair.

    Args:
        batch: the batch's per-pair tensors, each of shape [batch]: the policy's and the reference's summed
            log-probabilities of the chosen and rejected completions, and the completions' token counts.
        settings: the method's hyperparameters, ``beta`` (β > 0) and ``alpha`` (α ≥ 0).

    Returns:
        The per-pair losses, shape [batch] (the harness averages them).
    """
    margin = batch.chosen_logratios - batch.rejected_logratios
    length_gap = (batch.chosen_lengths - batch.rejected_lengths).to(margin.dtype)
    return -F.logsigmoid(settings["beta"] * margin + settings["alpha"] * length_gap)


def method_spec() -> MethodSpec:
    """The ``rdpo`` method's declaration: its loss, knobs, defaults and the toy world's profile."""
    return pairwise_loss_method(
        name="rdpo",
        loss=rdpo_loss,
        hyperparameters=HYPERPARAMETERS,
        defaults={
            "learning_rate": 5e-7
        },  # real models: DPO's rate; the other knobs keep base.yaml's defaults
        profiles={"toy": TOY},
        search_space={
            "beta": "tag(log, interval(0.02, 0.5))",
            "alpha": "interval(0.0, 0.5)",
            "learning_rate": "tag(log, interval(1e-7, 1e-5))",
        },
        description="R-DPO (Park et al. 2024): DPO with a length margin against verbosity "
        "(example plugin, pairwise-loss extension point)",
        loss_notes=LOSS_NOTES,
    )
