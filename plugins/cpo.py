"""CPO and SimPO on ``trl.experimental.cpo.CPOTrainer`` (reference-free: one model in memory).

SimPO is CPOTrainer with ``loss_type="simpo"`` and no NLL term (``cpo_alpha=0``); ``method.gamma`` is its target
margin. The pure loss function restates what each configured loss computes, for the loss-fidelity test.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.nn.functional as F
from harness_plugins._defaults import method_defaults

from harness import MethodSpec, hookimpl
from harness.errors import ConfigError

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

    ``chosen_logps``/``rejected_logps`` [batch]: policy log-probabilities of the completions, summed over tokens
    for sigmoid/hinge and averaged per token for simpo/ipo (as TRL computes them). ``chosen_nll`` is the scalar
    token-mean NLL of the chosen completions.

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


def build_trainer(ctx: Any) -> Any:
    """TRL's CPOTrainer for ``ctx``; ``method.gamma`` (SimPO) becomes ``simpo_gamma``."""
    from trl.experimental.cpo import CPOConfig, CPOTrainer

    renames = {"beta": "beta", "gamma": "simpo_gamma"} if "gamma" in ctx.method_cfg else {"beta": "beta"}
    return ctx.trl_trainer(CPOTrainer, CPOConfig, renames)


def train(ctx: Any) -> torch.nn.Module:
    """Train with CPOTrainer (CPO or SimPO, as ``method.trl.loss_type`` says); returns the trained model."""
    return ctx.run_trainer(build_trainer(ctx))


def _loss_type(method_cfg: Any) -> str:
    return str((method_cfg.get("trl") or {}).get("loss_type", "sigmoid"))


def _validate_simpo(method_cfg: Any) -> None:
    if _loss_type(method_cfg) != "simpo":
        raise ConfigError(f"method simpo trains with loss_type simpo, not {_loss_type(method_cfg)!r}; drop "
                          "method.trl.loss_type, or use method=cpo for the CPO losses.")
    if method_cfg.gamma < 0:
        raise ConfigError(f"method.gamma={method_cfg.gamma} is invalid: SimPO's target margin must be >= 0 "
                          "(the paper uses 0.5 to 1.5).")


def _validate_cpo(method_cfg: Any) -> None:
    if _loss_type(method_cfg) == "simpo":
        raise ConfigError("method cpo with loss_type simpo is SimPO; use method=simpo (it sets cpo_alpha=0 and "
                          "method.gamma).")


@hookimpl
def harness_methods_register() -> list[MethodSpec]:
    """CPO and SimPO."""
    common = dict(data_kind="pairwise", models_in_memory=1, needs_reference=False,
                  config_class="trl.experimental.cpo:CPOConfig")
    return [
        MethodSpec(name="cpo", train=train, defaults=method_defaults("cpo"), validate=_validate_cpo,
                   lr_range=(5e-7, 5e-6), description="Contrastive Preference Optimization",
                   search_space={"beta": "tag(log, interval(0.02, 0.5))",
                                 "learning_rate": "tag(log, interval(1e-5, 3e-4))"},
                   **common),
        MethodSpec(name="simpo", train=train, defaults=method_defaults("simpo"), validate=_validate_simpo,
                   lr_range=(3e-7, 1e-6), description="Simple Preference Optimization (reference-free)",
                   search_space={"beta": "interval(1.0, 10.0)", "gamma": "interval(0.0, 1.5)",
                                 "learning_rate": "tag(log, interval(1e-5, 3e-4))"},
                   **common),
    ]
