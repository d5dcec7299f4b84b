"""The trainer of the pairwise-loss extension point: TRL's ``DPOTrainer`` with only its loss replaced.

A method declared with :func:`harness.plugin.pairwise_loss_method` trains on :class:`PairwiseLossTrainer`.
Everything but the loss is TRL's ``DPOTrainer``: tokenisation and batching, the reference pass (and the
harness's cache of it, :mod:`harness.trial.reference_pass`, and of the prepared data,
:mod:`harness.trial.prepared_data`, which wrap this class as they wrap ``DPOTrainer``), LoRA (the reference is
the policy with its adapter disabled), precision, and the metrics TRL logs (``rewards/*``, ``logps/*``,
``logits/*``, entropy, token accuracy); the trainer's ``loss`` is the plugin's.

Why this override point. TRL 1.16 has no public hook for a DPO-family loss: the per-sequence
log-probabilities, the loss (an inline chain of ``loss_type`` branches) and the logged metrics are all
computed in one private method, ``DPOTrainer._compute_loss`` (the public ``dpo_loss`` and
``concatenated_forward`` of earlier TRL versions are gone). Overriding it would copy its ~330 lines. So the
subclass overrides the public ``transformers.Trainer.compute_loss`` (which TRL's ``DPOTrainer.compute_loss``
forwards to ``_compute_loss``): TRL's ``_compute_loss`` runs unchanged, forward hooks record the outputs of
the forward passes it makes through TRL's fused LM head, and the plugin's loss replaces the one it returns
(TRL's own loss is computed and dropped: a few scalar operations). What this relies on in the private
``_compute_loss`` of TRL 1.16:

- the batch rows are ``[chosen..., rejected...]`` with a ``completion_mask``
  (TRL's ``DataCollatorForPreference``);
- the policy is called first, as ``model(..., labels=..., fused_lm_head=True)``, returning per-token
  ``log_probs`` (zero on the prompt) whose sum over the last ``completion_mask.size(1) - 1`` columns is the
  sequence's log-probability, exactly as ``_compute_loss`` sums it;
- the reference's summed log-probabilities are ``inputs["ref_chosen_logps"]``/``["ref_rejected_logps"]`` when
  precomputed (the trainer's ``precompute_ref_logps``), else the second such call (the reference model, or the
  policy with its adapter disabled);
- a mixture-of-experts router loss is added as ``router_aux_loss_coef * outputs.aux_loss`` when
  ``aux_loss_enabled`` (added here likewise).

:func:`harness.plugin.pairwise.trl_support_problem` checks at validation that the installed TRL has these
parts; a TRL whose ``_compute_loss`` calls its models otherwise fails the first step with one line naming this
module. The settings that shape TRL's own loss or sums (``ld_alpha``, ``use_weighting``, ``loss_type``, ...:
:data:`~harness.plugin.pairwise.REPLACED_FIELDS`) are refused at validation and here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import torch
from trl import DPOTrainer

from harness.plugin.pairwise import PairwiseBatch, PairwiseLoss, pair_losses, trl_support_problem

if TYPE_CHECKING:
    from trl import DPOConfig

# TRL's defaults of the DPOConfig fields that choose TRL's own loss or change the log-probabilities it sums: a
# pairwise-loss trainer refuses other values (validation refuses setting them at all,
# harness.plugin.pairwise).
_REPLACED_DEFAULTS = {
    "loss_weights": None,
    "ld_alpha": None,
    "use_weighting": False,
    "f_divergence_type": "reverse_kl",
}


def replaced_settings(args: DPOConfig) -> list[str]:
    """The ``DPOConfig`` fields of ``args`` that choose TRL's own loss, set away from TRL's defaults."""
    loss_type = getattr(args, "loss_type", ["sigmoid"])
    found = (
        [] if list([loss_type] if isinstance(loss_type, str) else loss_type) == ["sigmoid"] else ["loss_type"]
    )
    found += [key for key, default in _REPLACED_DEFAULTS.items() if getattr(args, key, default) != default]
    return [f"{key}={getattr(args, key)!r}" for key in found]


@contextlib.contextmanager
def fused_forwards(modules: list[torch.nn.Module]) -> Iterator[list[Any]]:
    """Within this block, the outputs of every call of ``modules`` with ``fused_lm_head=True``,
    in call order."""
    seen: list[Any] = []

    def record(module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
        if kwargs.get("fused_lm_head"):
            seen.append(output)

    handles = [m.register_forward_hook(record, with_kwargs=True) for m in dict.fromkeys(modules)]
    try:
        yield seen
    finally:
        for handle in handles:
            handle.remove()


class PairwiseLossTrainer(DPOTrainer):
    """TRL's ``DPOTrainer`` whose loss is a plugin's pairwise loss (see the module docstring).

    Takes ``DPOTrainer``'s arguments, and:

    Args:
        pairwise_loss: ``loss(batch: PairwiseBatch, settings) -> per-pair losses`` (shape [batch]).
        loss_settings: the ``settings`` passed to it (the method's hyperparameter values).
        method_name: the method's name, for error messages.
    """

    def __init__(
        self,
        *arguments: Any,
        pairwise_loss: PairwiseLoss,
        loss_settings: Mapping[str, Any] | None = None,
        method_name: str = "pairwise",
        **keywords: Any,
    ) -> None:
        problem = trl_support_problem()
        if problem is not None:
            raise RuntimeError(f"{type(self).__name__}: {problem} (see harness.trial.pairwise_loss).")
        self.pairwise_loss = pairwise_loss
        self.loss_settings = dict(loss_settings or {})
        self.method_name = method_name
        super().__init__(*arguments, **keywords)
        replaced = replaced_settings(self.args)
        if replaced:
            raise ValueError(
                f"method {method_name} computes its plugin's loss; the DPOConfig settings "
                f"{', '.join(replaced)} choose TRL's own loss: leave them at their defaults."
            )

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> Any:
        """TRL's ``compute_loss`` (forward passes, reference, logged metrics), returning the plugin's loss:
        the mean of its per-pair losses (plus the MoE router loss, where TRL adds it)."""
        models = [m for m in (self.model, self.ref_model) if m is not None]
        with fused_forwards(models) as outputs:
            result = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        batch = self.pairwise_batch(inputs, outputs)
        loss = pair_losses(self.pairwise_loss, batch, self.loss_settings, self.method_name).mean()
        if self.aux_loss_enabled:
            loss = loss + self.router_aux_loss_coef * outputs[0].aux_loss
        return (loss, result[1]) if return_outputs else loss

    def pairwise_batch(self, inputs: Mapping[str, Any], outputs: list[Any]) -> PairwiseBatch:
        """The per-pair tensors of the batch ``inputs``, from the fused forward ``outputs`` TRL's
        ``_compute_loss`` made (policy first, then the reference unless its log-probabilities were
        precomputed)."""
        expected = 1 if self.precompute_ref_logps else 2
        if len(outputs) != expected:
            raise RuntimeError(
                f"{type(self).__name__}: TRL's DPOTrainer._compute_loss made {len(outputs)} fused-LM-head "
                f"forward passes, not {expected}; this TRL computes its log-probabilities differently from "
                "TRL 1.16, which harness.trial.pairwise_loss reads: install trl 1.16."
            )
        mask = inputs["completion_mask"][:, 1:]  # the tokens whose log-probabilities are summed
        width = mask.size(1)
        sums = [out.log_probs[:, -width:].sum(dim=1) for out in outputs]  # as TRL sums them
        policy_chosen, policy_rejected = sums[0].chunk(2, dim=0)  # rows are [chosen..., rejected...]
        if self.precompute_ref_logps:
            reference_chosen, reference_rejected = inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]
        else:
            reference_chosen, reference_rejected = sums[1].chunk(2, dim=0)
        chosen_lengths, rejected_lengths = mask.sum(dim=1).chunk(2, dim=0)
        return PairwiseBatch(
            policy_chosen_logps=policy_chosen,
            policy_rejected_logps=policy_rejected,
            reference_chosen_logps=reference_chosen,
            reference_rejected_logps=reference_rejected,
            chosen_lengths=chosen_lengths,
            rejected_lengths=rejected_lengths,
        )
