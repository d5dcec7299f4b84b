"""DPO and IPO, on ``trl.DPOTrainer`` (IPO is DPO's trainer with ``loss_type="ipo"``).

The pure loss functions below restate what the configured loss must compute from per-sequence
log-probabilities; the loss-fidelity test checks TRL's computed loss against them, so a configured ``hinge``
or ``ipo`` can never silently train as sigmoid DPO.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from harness_plugins._defaults import method_defaults

from harness import MethodSpec, hookimpl
from harness.errors import ConfigError
from harness.plugin.specs import separate_reference


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
    ``*_lengths`` are completion token counts (IPO averages per token, as TRL does after confirming it with the
    IPO authors).

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


def build_trainer(ctx: Any) -> Any:
    """TRL's DPOTrainer for ``ctx``: the policy against ``ctx.reference`` (or the LoRA-disabled base)."""
    from trl import DPOConfig, DPOTrainer

    return ctx.trl_trainer(DPOTrainer, DPOConfig, ref_model=ctx.reference)


def train(ctx: Any) -> torch.nn.Module:
    """Train with DPOTrainer; returns the trained model."""
    return ctx.run_trainer(build_trainer(ctx))


def _loss_types(method_cfg: Any) -> list[str]:
    value = (method_cfg.get("trl") or {}).get("loss_type", "sigmoid")
    return [value] if isinstance(value, str) else list(value)


def _validate_ipo(method_cfg: Any) -> None:
    if _loss_types(method_cfg) != ["ipo"]:
        raise ConfigError(f"method ipo trains with loss_type ipo, not {_loss_types(method_cfg)}; drop "
                          "method.trl.loss_type, or use method=dpo method.trl.loss_type=<type> for other losses.")


def policy_and_reference(cfg: Any) -> int:
    """The policy and, without LoRA, the frozen reference: the models DPO-style methods hold."""
    return 1 + separate_reference(cfg)


@hookimpl
def harness_methods_register() -> list[MethodSpec]:
    """DPO (sigmoid loss by default; any TRL DPO loss via method.trl.loss_type) and IPO."""
    common = dict(train=train, data_kind="pairwise", models_in_memory=policy_and_reference, needs_reference=True,
                  lr_range=(5e-7, 5e-6), config_class="trl:DPOConfig")
    return [
        MethodSpec(name="dpo", defaults=method_defaults("dpo"), description="Direct Preference Optimization",
                   search_space={"beta": "tag(log, interval(0.02, 0.5))",
                                 "learning_rate": "tag(log, interval(1e-5, 3e-4))"},
                   **common),
        MethodSpec(name="ipo", defaults=method_defaults("ipo"), description="Identity Preference Optimization",
                   search_space={"beta": "tag(log, interval(0.01, 1.0))",
                                 "learning_rate": "tag(log, interval(1e-5, 3e-4))"},
                   validate=_validate_ipo, **common),
    ]
