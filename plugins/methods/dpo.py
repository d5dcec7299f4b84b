"""DPO and IPO, on ``trl.DPOTrainer`` (IPO is DPO's trainer with ``loss_type="ipo"``).

The pure loss functions below restate what the configured loss must compute from per-sequence
log-probabilities; the loss-fidelity test checks TRL's computed loss against them, so a configured ``hinge``
or ``ipo`` can never silently train as sigmoid DPO.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from omegaconf import DictConfig

from harness.plugin import ConfigError, Hyperparameter, MethodSpec, Profile, hookimpl, separate_reference

if TYPE_CHECKING:
    from transformers import PreTrainedModel, Trainer

    from harness.plugin import TrainContext


def dpo_loss(
    chosen_logps: torch.Tensor,
    rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    *,
    beta: float,
    loss_type: str = "sigmoid",
    chosen_lengths: torch.Tensor | None = None,
    rejected_lengths: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean DPO-family loss over a batch.

    All inputs have shape [batch]: summed completion log-probabilities under the policy and the reference;
    ``*_lengths`` are completion token counts (IPO averages per token, as TRL does after confirming it with
    the IPO authors).

    - sigmoid (DPO, Rafailov et al. eq. 7): -log sigma(beta * (Δ_chosen - Δ_rejected)), Δ = logπ - logπ_ref
    - hinge (SLiC): max(0, 1 - beta * (Δ_chosen - Δ_rejected))
    - ipo (Azar et al. eq. 17): (Δ_chosen/len_c - Δ_rejected/len_r - 1/(2 beta))^2
    """
    chosen = chosen_logps - ref_chosen_logps
    rejected = rejected_logps - ref_rejected_logps
    if loss_type == "sigmoid":
        losses = -F.logsigmoid(beta * (chosen - rejected))
    elif loss_type == "hinge":
        losses = torch.relu(1 - beta * (chosen - rejected))
    elif loss_type == "ipo":
        if chosen_lengths is None or rejected_lengths is None:
            raise ValueError("ipo needs completion lengths")
        delta = chosen / chosen_lengths.clamp(min=1) - rejected / rejected_lengths.clamp(min=1)
        losses = (delta - 1 / (2 * beta)) ** 2
    else:
        raise ValueError(f"no reference formula for loss_type {loss_type!r}")
    return losses.mean()


def build_trainer(ctx: TrainContext) -> Trainer:
    """TRL's DPOTrainer for ``ctx``: the policy against ``ctx.reference`` (or the LoRA-disabled base)."""
    return ctx.trl_trainer(ref_model=ctx.reference)


def train(ctx: TrainContext) -> PreTrainedModel:
    """Train with DPOTrainer; returns the trained model."""
    return ctx.run_trainer(build_trainer(ctx))


def _loss_types(method_cfg: DictConfig) -> list[str]:
    value = (method_cfg.get("trl") or {}).get("loss_type", "sigmoid")
    return [value] if isinstance(value, str) else list(value)


def _validate_ipo(method_cfg: DictConfig) -> None:
    if _loss_types(method_cfg) != ["ipo"]:
        raise ConfigError(
            f"method ipo trains with loss_type ipo, not {_loss_types(method_cfg)}; drop "
            "method.trl.loss_type, or use method=dpo method.trl.loss_type=<type> for other losses."
        )


def policy_and_reference(cfg: DictConfig) -> int:
    """The policy and, without LoRA, the frozen reference: the models DPO-style methods hold."""
    return 1 + separate_reference(cfg)


# Real models (the seed's values): full fine-tuning at 5e-7, one epoch, 1024 tokens; the toy world's tuning is
# its profile. The frozen reference's log-probs are computed once, not every epoch (the same loss).
_TRL = {"max_length": 1024, "precompute_ref_log_probs": True}
_TOY = {"learning_rate": 3e-4, "epochs": 3, "batch_size": 16, "grad_accum": 1, "trl": {"max_length": 64}}
# The toy suggested range: the tuning grid's learning rates (1e-4 to 9e-4) widened by half a grid step.
_TOY_SPACE = {"learning_rate": "tag(log, interval(5e-5, 1.6e-3))"}
# What TRL's DPOTrainer computes (trl/trainer/dpo_trainer.py, DPOTrainer._compute_loss).
DPO_LOSS = (
    "DPOTrainer, loss_type=sigmoid: -log σ(beta·(Δ_chosen − Δ_rejected)) with Δ = log π − log π_ref "
    "summed over the completion's tokens (prompt masked); mean over pairs. With precompute_ref_log_probs the "
    "reference's log-probs are computed once, before training."
)
IPO_LOSS = (
    "DPOTrainer, loss_type=ipo: (Δ_chosen/|y_chosen| − Δ_rejected/|y_rejected| − "
    "1/(2·beta))², the log-ratios averaged per completion token (TRL's "
    "normalisation, unlike DPO's sums); beta is the paper's tau."
)


@hookimpl
def harness_methods_register() -> list[MethodSpec]:
    """DPO (sigmoid loss by default; any TRL DPO loss via method.trl.loss_type) and IPO."""
    common = dict(
        train=train,
        data_kind="pairwise",
        models_in_memory=policy_and_reference,
        needs_reference=True,
        lr_range=(5e-7, 5e-6),
        trainer="trl:DPOTrainer",
    )
    return [
        MethodSpec(
            name="dpo",
            description="Direct Preference Optimization (Rafailov et al. 2023)",
            hyperparameters=[
                Hyperparameter(
                    "beta",
                    0.1,
                    "KL strength; real models: 0.05 weak, 0.1 standard, 0.3 conservative, 0.5+ very "
                    "conservative",
                    bounds="(0, inf)",
                    field="beta",
                )
            ],
            defaults={"learning_rate": 5e-7, "trl": {"loss_type": "sigmoid", **_TRL}},
            # Toy world: the tuning on worlds 0-2 (benchmarks/toy_defaults.py, leaderboards/toy-defaults/).
            profiles={"toy": Profile({**_TOY, "learning_rate": 9e-4, "beta": 0.5}, _TOY_SPACE)},
            search_space={
                "beta": "tag(log, interval(0.02, 0.5))",
                "learning_rate": "tag(log, interval(1e-7, 1e-5))",
            },
            loss_notes=DPO_LOSS,
            **common,
        ),
        MethodSpec(
            name="ipo",
            description="Identity Preference Optimization (Azar et al. 2023; DPOTrainer, loss ipo)",
            hyperparameters=[
                Hyperparameter(
                    "beta",
                    0.1,
                    "regularisation tau of the IPO paper (the loss targets a margin of 1/(2 tau)); "
                    "real models: 0.01 to 0.5",
                    bounds="(0, inf)",
                    field="beta",
                    paper_name="tau",
                )
            ],
            defaults={"learning_rate": 5e-7, "trl": {"loss_type": "ipo", **_TRL}},
            profiles={"toy": Profile({**_TOY, "beta": 0.5}, _TOY_SPACE)},
            search_space={
                "beta": "tag(log, interval(0.01, 1.0))",
                "learning_rate": "tag(log, interval(1e-7, 1e-5))",
            },
            validate=_validate_ipo,
            loss_notes=IPO_LOSS,
            **common,
        ),
    ]
