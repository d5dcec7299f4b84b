"""CPO and SimPO on ``trl.experimental.cpo.CPOTrainer`` (reference-free: one model in memory).

SimPO is CPOTrainer with ``loss_type="simpo"`` and no NLL term (``cpo_alpha=0``); ``method.gamma`` is its
target margin. The pure loss function restates what each configured loss computes, for the loss-fidelity test.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from omegaconf import DictConfig

from harness.plugin import ConfigError, Hyperparameter, MethodSpec, Profile, hookimpl

if TYPE_CHECKING:
    from transformers import PreTrainedModel, Trainer

    from harness.plugin import TrainContext

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # we use trl.experimental on purpose


def cpo_loss(
    chosen_logps: torch.Tensor,
    rejected_logps: torch.Tensor,
    chosen_nll: torch.Tensor,
    *,
    beta: float,
    loss_type: str = "sigmoid",
    cpo_alpha: float = 1.0,
    simpo_gamma: float = 0.5,
) -> torch.Tensor:
    """Mean CPO/SimPO loss over a batch.

    ``chosen_logps``/``rejected_logps`` [batch]: policy log-probabilities of the completions, summed over
    tokens for sigmoid/hinge and averaged per token for simpo/ipo (as TRL computes them). ``chosen_nll`` is
    the scalar token-mean NLL of the chosen completions.

    - sigmoid (CPO, Xu et al. eq. 3): -log σ(β(c - r)) + α·NLL
    - hinge: max(0, 1 - β(c - r)) + α·NLL
    - simpo (Meng et al. eq. 6): -log σ(β(c̄ - r̄) - γ) + α·NLL (α = 0 for SimPO)
    """
    logits = chosen_logps - rejected_logps
    if loss_type == "sigmoid":
        losses = -F.logsigmoid(beta * logits)
    elif loss_type == "hinge":
        losses = torch.relu(1 - beta * logits)
    elif loss_type == "simpo":
        losses = -F.logsigmoid(beta * logits - simpo_gamma)
    else:
        raise ValueError(f"no reference formula for loss_type {loss_type!r}")
    return losses.mean() + cpo_alpha * chosen_nll


def build_trainer(ctx: TrainContext) -> Trainer:
    """TRL's CPOTrainer for ``ctx`` (``method.gamma`` of SimPO reaches it as ``simpo_gamma``)."""
    return ctx.trl_trainer()


def train(ctx: TrainContext) -> PreTrainedModel:
    """Train with CPOTrainer (CPO or SimPO, as ``method.trl.loss_type`` says); returns the trained model."""
    return ctx.run_trainer(build_trainer(ctx))


def _loss_type(method_cfg: DictConfig) -> str:
    return str((method_cfg.get("trl") or {}).get("loss_type", "sigmoid"))


def _validate_simpo(method_cfg: DictConfig) -> None:
    if _loss_type(method_cfg) != "simpo":
        raise ConfigError(
            f"method simpo trains with loss_type simpo, not {_loss_type(method_cfg)!r}; drop "
            "method.trl.loss_type, or use method=cpo for the CPO losses."
        )


def _validate_cpo(method_cfg: DictConfig) -> None:
    if _loss_type(method_cfg) == "simpo":
        raise ConfigError(
            "method cpo with loss_type simpo is SimPO; use method=simpo (it sets cpo_alpha=0 and "
            "method.gamma)."
        )


_MAX_LENGTH = 1024  # prompt + completion tokens (the toy world's profile: 64)
_TOY = {"batch_size": 16, "grad_accum": 1, "trl": {"max_length": 64}}
_TOY_SPACE = {"learning_rate": "tag(log, interval(3e-5, 3e-3))"}
# What TRL's CPOTrainer computes (trl/experimental/cpo/cpo_trainer.py: cpo_loss, concatenated_forward,
# get_batch_loss_metrics).
CPO_LOSS = (
    "CPOTrainer, loss_type=sigmoid: -log σ(beta·(log π(y_chosen) − log π(y_rejected))), log-probs summed "
    "over completion tokens, no reference; plus cpo_alpha × NLL of the chosen completions, a per-token mean "
    "over the batch's completion tokens (prompt masked)."
)
SIMPO_LOSS = (
    "CPOTrainer, loss_type=simpo, cpo_alpha=0: -log σ(beta·(avg log π(y_chosen) − avg log π(y_rejected)) − "
    "gamma), log-probs averaged per completion token; no NLL term, no reference. While beta·margin is far "
    "below gamma the loss is nearly linear in beta, which Adam cancels: such betas train almost the same run."
)


@hookimpl
def harness_methods_register() -> list[MethodSpec]:
    """CPO and SimPO."""
    return [_cpo_spec(), _simpo_spec()]


def _common() -> dict[str, Any]:
    """What CPO and SimPO declare alike: CPOTrainer on pairs, one model in memory, no reference."""
    return dict(
        train=train,
        data_kind="pairwise",
        models_in_memory=1,
        needs_reference=False,
        trainer="trl.experimental.cpo:CPOTrainer",
    )


def _cpo_spec() -> MethodSpec:
    """CPO: the sigmoid (or hinge, ipo) preference loss plus cpo_alpha × NLL of the chosen completions."""
    return MethodSpec(
        name="cpo",
        validate=_validate_cpo,
        lr_range=(5e-7, 5e-6),
        description="Contrastive Preference Optimization (Xu et al. 2024)",
        hyperparameters=[
            Hyperparameter(
                "beta",
                0.1,
                "temperature of the preference term; real models: 0.1 to 0.5",
                bounds="(0, inf)",
                field="beta",
            )
        ],
        defaults={
            "learning_rate": 5e-7,  # real models (the seed's values)
            "trl": {
                "loss_type": "sigmoid",  # sigmoid | hinge | ipo (simpo: use method=simpo)
                "cpo_alpha": 1.0,  # weight of the NLL term on chosen completions
                "max_length": _MAX_LENGTH,
            },
        },
        # Toy world: from the tuning on worlds 0-2 (benchmarks/toy_defaults.py, leaderboards/toy-defaults/);
        # 3 epochs = 375 steps, every method's toy budget.
        profiles={"toy": Profile({**_TOY, "learning_rate": 2.4e-3, "epochs": 3, "beta": 0.2}, _TOY_SPACE)},
        search_space={
            "beta": "tag(log, interval(0.02, 0.5))",
            "learning_rate": "tag(log, interval(1e-7, 1e-5))",
        },
        loss_notes=CPO_LOSS,
        **_common(),
    )


def _simpo_spec() -> MethodSpec:
    """SimPO: CPOTrainer's simpo loss (length-normalised, target margin gamma), no NLL term."""
    return MethodSpec(
        name="simpo",
        validate=_validate_simpo,
        lr_range=(3e-7, 1e-6),
        description="Simple Preference Optimization (Meng et al. 2024; reference-free, length-normalised)",
        hyperparameters=[
            Hyperparameter(
                "beta",
                2.0,
                "reward scale on the average log-probability; real models: 2.0 to 10.0",
                bounds="(0, inf)",
                field="beta",
            ),
            Hyperparameter(
                "gamma",
                0.5,
                "target reward margin; real models: 0.5 to 1.5 (gamma/beta ~ 0.3-0.5)",
                bounds="[0, inf)",
                field="simpo_gamma",
            ),
        ],
        defaults={
            "learning_rate": 5e-7,  # real models (the seed's values)
            "trl": {
                "loss_type": "simpo",  # must stay simpo (method=cpo for the CPO losses)
                "cpo_alpha": 0.0,  # NLL weight; 0 is SimPO, > 0 is CPO-SimPO
                "max_length": _MAX_LENGTH,
            },
        },
        # Toy world: the tuning on worlds 0-2 (benchmarks/toy_defaults.py, leaderboards/toy-defaults/): beta 2
        # with gamma = 0.4 beta, the middle of the paper's gamma/beta.
        profiles={
            "toy": Profile(
                {**_TOY, "learning_rate": 2e-4, "epochs": 3, "beta": 2.0, "gamma": 0.8}, _TOY_SPACE
            )
        },
        search_space={
            "beta": "interval(1.0, 10.0)",
            "gamma": "interval(0.0, 1.5)",
            "learning_rate": "tag(log, interval(1e-7, 3e-6))",
        },
        loss_notes=SIMPO_LOSS,
        **_common(),
    )
