"""The DPO-Positive loss (Pal et al. 2024, "Smaug", arXiv 2402.13228, eq. 3),
as a pure function of log-probabilities.

DPO only asks that the chosen completion gain on the rejected one relative to the reference, so both may lose
probability at once. DPOP adds a penalty, inside the sigmoid, whenever the policy's log-probability of the
chosen completion falls below the reference's::

    loss = -log σ(β · [(log π(y_w) − log π_ref(y_w)) − (log π(y_l) − log π_ref(y_l))
                       − λ · max(0, log π_ref(y_w) − log π(y_w))])

With λ = 0, or while log π(y_w) ≥ log π_ref(y_w), it is DPO's sigmoid loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def dpop_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    reference_chosen_logps: torch.Tensor,
    reference_rejected_logps: torch.Tensor,
    *,
    beta: float,
    lam: float,
) -> torch.Tensor:
    """Mean DPOP loss over a batch.

    Args:
        policy_chosen_logps: [batch] summed log-probabilities of the chosen completions under the policy
            (with gradient).
        policy_rejected_logps: [batch] the same for the rejected completions.
        reference_chosen_logps: [batch] summed log-probabilities of the chosen completions under the frozen
            reference (no gradient needed).
        reference_rejected_logps: [batch] the same for the rejected completions.
        beta: β > 0, the inverse temperature of the implicit reward (DPO's KL strength).
        lam: λ ≥ 0, the weight of the penalty on the chosen completion losing log-probability.

    Returns:
        A scalar tensor (shape []): the loss averaged over the batch.
    """
    chosen = policy_chosen_logps - reference_chosen_logps  # implicit reward of y_w, divided by β
    rejected = policy_rejected_logps - reference_rejected_logps
    penalty = torch.clamp(-chosen, min=0)  # max(0, log π_ref(y_w) − log π(y_w))
    return -F.logsigmoid(beta * (chosen - rejected - lam * penalty)).mean()
