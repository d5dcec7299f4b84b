"""Checking a pairwise-loss method: the loss its trainer computes, against a plain forward pass.

:func:`check_pairwise_loss` is what a plugin author calls from their own tests: it builds the method's trainer
(:class:`~harness.trial.pairwise_loss.PairwiseLossTrainer`, as a trial would) on a few pairs, takes the loss
the trainer computes on them, and computes the same loss independently: the summed log-probabilities of every
completion under the policy and the reference with plain ``model(...)`` calls
(:func:`~harness.evaluation.sampling.completion_logprobs`, which lays the texts out as TRL's DPOTrainer does),
the completions' token counts, and the plugin's loss function (or an independent formula, ``expected``)
applied to them. The two must agree to float tolerance.
"""

from __future__ import annotations

import copy
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import TYPE_CHECKING, Any

import torch

from harness.evaluation.sampling import completion_logprobs, encode_completions
from harness.plugin.pairwise import (
    PairwiseBatch,
    PairwiseLoss,
    method_settings,
    pair_losses,
    pairwise_loss_of,
)
from harness.plugin.specs import MethodSpec
from harness.trial.pairwise_loss import PairwiseLossTrainer
from harness.trial.trainer_cache import temporary_dataset_files

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


def _pairwise_spec(method: MethodSpec | str) -> tuple[MethodSpec, PairwiseLoss]:
    """The method's spec (looked up when given by name) and its pairwise loss (a TypeError when it has
    none)."""
    if isinstance(method, MethodSpec):
        spec = method
    else:
        from harness.plugin.manager import get_plugin_manager

        spec = get_plugin_manager().method(str(method))
    loss = pairwise_loss_of(spec)
    if loss is None:
        raise TypeError(f"method {spec.name} is not declared with harness.plugin.pairwise_loss_method.")
    return spec, loss


def _settings(spec: MethodSpec, settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """The method's hyperparameters: defaults, replaced by ``settings``,
    each checked against its declaration."""
    given = dict(settings or {})
    unknown = sorted(set(given) - {h.name for h in spec.hyperparameters})
    if unknown:
        raise ValueError(
            f"method {spec.name} has no hyperparameter {unknown[0]!r}; its hyperparameters: "
            f"{', '.join(h.name for h in spec.hyperparameters) or 'none'}."
        )
    values = method_settings(spec, given)
    for h in spec.hyperparameters:
        problem = h.problem(values[h.name])
        if problem is not None:
            raise ValueError(f"{h.name}={values[h.name]!r} is invalid for method {spec.name}: {problem}.")
    return values


def _models(
    model: str | os.PathLike[str] | torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase | str | os.PathLike[str] | None,
    reference: torch.nn.Module | None,
    nudge: float,
    seed: int,
) -> tuple[Any, Any, Any]:
    """(policy, reference, tokenizer): copies, the policy's weights moved by ``nudge`` standard normals
    (seeded) so that it differs from the reference."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if isinstance(model, (str, os.PathLike)):
        path, model = model, AutoModelForCausalLM.from_pretrained(model)
        tokenizer = tokenizer if tokenizer is not None else path
    if isinstance(tokenizer, (str, os.PathLike)):
        tokenizer = AutoTokenizer.from_pretrained(tokenizer)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    policy = copy.deepcopy(model).eval()
    reference = copy.deepcopy(reference if reference is not None else model).eval()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(nudge * torch.randn(p.shape, generator=generator).to(p))
    return policy, reference, tokenizer


def _rows(pairs: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    rows = [{k: pair.get(k) for k in ("prompt", "chosen", "rejected")} for pair in pairs]
    if not rows or not all(isinstance(v, str) for row in rows for v in row.values()):
        raise ValueError("pairs must be a non-empty list of {'prompt', 'chosen', 'rejected'} strings.")
    return rows


class _Recorded:
    """The plugin's loss, keeping the batch the trainer passed it."""

    def __init__(self, loss: PairwiseLoss) -> None:
        self.loss, self.batch = loss, None

    def __call__(self, batch: PairwiseBatch, settings: Mapping[str, Any]) -> torch.Tensor:
        self.batch = batch
        return self.loss(batch, settings)


def _trainer_loss(
    spec: MethodSpec,
    loss: _Recorded,
    settings: dict[str, Any],
    models: tuple[Any, Any, Any],
    rows: list[dict[str, str]],
    trl: Mapping[str, Any],
    seed: int,
) -> float:
    """The loss the method's trainer computes on ``rows``, in one batch, in their order."""
    from datasets import Dataset
    from trl import DPOConfig

    policy, reference, tokenizer = models
    fields_ = {**dict(spec.defaults.get("trl") or {}), **dict(trl)}
    fields_.update({h.field: settings[h.name] for h in spec.hyperparameters if h.field is not None})
    device = next(policy.parameters()).device
    with tempfile.TemporaryDirectory() as scratch, temporary_dataset_files():
        config = DPOConfig(
            output_dir=scratch,
            per_device_train_batch_size=len(rows),
            seed=seed,
            report_to=[],
            bf16=False,
            fp16=False,
            use_cpu=device.type == "cpu",
            disable_tqdm=True,
            **fields_,
        )
        trainer = PairwiseLossTrainer(
            model=policy,
            ref_model=reference,
            args=config,
            train_dataset=Dataset.from_list(rows),
            processing_class=tokenizer,
            pairwise_loss=loss,
            loss_settings=settings,
            method_name=spec.name,
        )
        prepared = trainer.train_dataset
        if len(prepared) != len(rows):
            raise ValueError(
                f"TRL dropped {len(rows) - len(prepared)} of the pairs (a prompt of "
                "max_length tokens or more); give shorter pairs."
            )
        inputs = trainer.data_collator([prepared[i] for i in range(len(prepared))])
        inputs = {k: v.to(trainer.accelerator.device) for k, v in inputs.items()}
        trainer.model.eval()
        with torch.no_grad():
            return float(trainer.compute_loss(trainer.model, inputs))


def _plain_batch(
    policy: torch.nn.Module,
    reference: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    rows: list[dict[str, str]],
) -> PairwiseBatch:
    """The per-pair tensors from plain forward passes (:func:`completion_logprobs`) of each completion."""
    prompts = [r["prompt"] for r in rows]
    side = {s: [r[s] for r in rows] for s in ("chosen", "rejected")}
    with torch.no_grad():
        logps = {
            (name, s): completion_logprobs(model, tokenizer, prompts, side[s])
            for name, model in (("policy", policy), ("reference", reference))
            for s in side
        }
    lengths = {s: encode_completions(tokenizer, prompts, side[s]).completion_lengths for s in side}
    device = logps["policy", "chosen"].device
    return PairwiseBatch(
        policy_chosen_logps=logps["policy", "chosen"],
        policy_rejected_logps=logps["policy", "rejected"],
        reference_chosen_logps=logps["reference", "chosen"],
        reference_rejected_logps=logps["reference", "rejected"],
        chosen_lengths=lengths["chosen"].to(device),
        rejected_lengths=lengths["rejected"].to(device),
    )


def _largest_differences(trained: PairwiseBatch | None, plain: PairwiseBatch) -> str:
    """Per field, the largest difference between the trainer's and the plain pass's per-pair inputs."""
    if trained is None:
        return "the trainer never called the loss"
    parts = []
    for f in fields(PairwiseBatch):
        a, b = getattr(trained, f.name).detach(), getattr(plain, f.name).detach()
        parts.append(f"{f.name} {float((a.double().cpu() - b.double().cpu()).abs().max()):.3g}")
    return ", ".join(parts)


def _check_lengths(method: str, trained: PairwiseBatch | None, plain: PairwiseBatch) -> None:
    """The trainer scored completions of the plain pass's lengths
    (else it saw other tokens: an AssertionError)."""
    for side in ("chosen", "rejected") if trained is not None else ():
        ours, theirs = getattr(trained, f"{side}_lengths"), getattr(plain, f"{side}_lengths")
        if not torch.equal(ours.cpu().long(), theirs.cpu().long()):
            raise AssertionError(
                f"method {method}: the trainer scored {side} completions of {ours.tolist()} tokens, the "
                f"plain forward pass {theirs.tolist()}: truncated by max_length, or laid out otherwise."
            )


def _check_close(
    method: str,
    got: float,
    want: float,
    formula: str,
    atol: float,
    rtol: float,
    trained: PairwiseBatch | None,
    plain: PairwiseBatch,
) -> None:
    """The trainer's loss ``got`` equals ``want``, the ``formula`` on the plain pass, within the tolerance;
    else an AssertionError naming both and the largest per-pair differences of the inputs."""
    if not math.isclose(got, want, rel_tol=rtol, abs_tol=atol):
        raise AssertionError(
            f"method {method}: the trainer's loss {got!r} differs from {want!r}, the {formula} on a plain "
            f"forward pass (atol {atol}, rtol {rtol}); largest per-pair differences of the inputs: "
            f"{_largest_differences(trained, plain)}."
        )


def check_pairwise_loss(
    method: MethodSpec | str,
    model: str | os.PathLike[str] | torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase | str | os.PathLike[str] | None,
    pairs: Sequence[Mapping[str, Any]],
    settings: Mapping[str, Any] | None = None,
    *,
    expected: PairwiseLoss | None = None,
    reference: torch.nn.Module | None = None,
    trl: Mapping[str, Any] | None = None,
    nudge: float = 0.02,
    seed: int = 0,
    atol: float = 1e-5,
    rtol: float = 1e-4,
) -> tuple[float, float]:
    """Check that the trainer of a pairwise-loss method computes its loss: ``(trainer's loss, plain loss)``.

    Args:
        method: the :class:`MethodSpec` from :func:`harness.plugin.pairwise_loss_method`,
            or its registered name.
        model: the model (a causal LM) or its directory; it is copied, never changed.
        tokenizer: its tokenizer, or the tokenizer's directory (None: the model's directory).
        pairs: a few preference pairs, ``{"prompt", "chosen", "rejected"}`` strings, scored as one batch.
        settings: hyperparameter values (the method's defaults for the others),
            as ``method.<name>`` in a trial.
        expected: the loss formula to compare with (``expected(batch, settings) -> per-pair losses``), e.g.
            written independently from the paper; default: the method's own loss function (then the check is
            of the harness's plumbing: what the trainer feeds the loss and that it trains on it).
        reference: the reference model (default: ``model`` as given).
        trl: extra ``DPOConfig`` fields (e.g. ``{"precompute_ref_log_probs": False}`` for the reference
            forward pass in the loss rather than before training); the spec's ``defaults["trl"]`` apply first.
        nudge: the policy is ``model`` with each weight moved by ``nudge`` times a standard normal draw
            (seeded by ``seed``), so that it differs from the reference and the losses are not at their
            starting values.
        atol, rtol: the tolerance of the comparison (``math.isclose``); the two layouts (right- and
            left-padded) round differently, so the numbers agree to float precision, not bit for bit.

    Raises:
        AssertionError: the two losses differ beyond the tolerance, or the trainer scored completions of
            another length than the plain pass (the message names both numbers and the largest per-pair
            differences).
        TypeError: ``method`` is not declared with :func:`~harness.plugin.pairwise_loss_method`, or its loss
            does not return one loss per pair.
    """
    spec, loss = _pairwise_spec(method)
    values = _settings(spec, settings)
    rows = _rows(pairs)
    models = _models(model, tokenizer, reference, nudge, seed)
    recorded = _Recorded(loss)
    got = _trainer_loss(spec, recorded, values, models, rows, trl or {}, seed)
    plain = _plain_batch(models[0], models[1], models[2], rows)
    want = float(pair_losses(expected or loss, plain, values, spec.name).mean())
    _check_lengths(spec.name, recorded.batch, plain)
    formula = "expected formula" if expected else "loss function"
    _check_close(spec.name, got, want, formula, atol, rtol, recorded.batch, plain)
    return got, want
