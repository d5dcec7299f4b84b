"""Evaluator ``preference_accuracy``: does the checkpoint's implicit reward rank held-out pairs correctly?

The implicit reward of a completion is log π(y|x) − log π_ref(y|x) (DPO's, up to β). On up to
``eval.preference_pairs`` held-out pairs (the pairwise eval split, standard or conversational; for KTO the
pairs before unpairing), ``preference_accuracy`` is the fraction whose chosen completion gets the higher
implicit reward (ties 1/2), with ``preference_accuracy_se``; ``preference_margin`` is the mean difference
chosen − rejected, in nats. Completions are tokenized as TRL's DPO trainer does (EOS appended to standard
completions), once per trial; each checkpoint scores the chosen and the rejected completions together in
length-sorted batches of ``eval.logprob_batch_size`` (null: ``eval.batch_size``), one forward pass per batch.
The reference's log-probabilities are computed when the reference itself is evaluated (step 0) and kept in the
reference-evaluation cache. For the reference every margin is 0, so the accuracy is 0.5 by definition. No
held-out pairs: no metric.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from omegaconf import DictConfig

from harness.plugin import (
    ConfigError,
    EvaluatorSpec,
    Metric,
    Samples,
    encode_completions,
    hookimpl,
    mean_and_se,
)

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from harness.plugin import EvalContext

DEFAULT_PAIRS = 256


def _render(tokenizer: PreTrainedTokenizerBase, prompt: Any, completion: Any) -> tuple[str, str]:
    """(prompt text, completion text) of a conversational example, split where the rendered texts diverge."""
    prompt_text = tokenizer.apply_chat_template(list(prompt), add_generation_prompt=True, tokenize=False)
    full = tokenizer.apply_chat_template(list(prompt) + list(completion), tokenize=False)
    cut = len(os.path.commonprefix([prompt_text, full]))
    return full[:cut], full[cut:]


def encode_pairs(
    tokenizer: PreTrainedTokenizerBase, pairs: Sequence[Mapping[str, Any]], batch_size: int
) -> tuple[Samples, Samples]:
    """The chosen and the rejected completions of ``pairs``,
    laid out for scoring (see ``encode_completions``)."""
    conversational = not isinstance(pairs[0]["prompt"], str)
    encoded = []
    for column in ("chosen", "rejected"):
        if conversational:
            texts = [_render(tokenizer, row["prompt"], row[column]) for row in pairs]
            encoded.append(
                encode_completions(
                    tokenizer,
                    [p for p, _ in texts],
                    [c for _, c in texts],
                    batch_size=batch_size,
                    add_special_tokens=False,
                    append_eos=False,
                )
            )
        else:
            encoded.append(
                encode_completions(
                    tokenizer,
                    [row["prompt"] for row in pairs],
                    [row[column] for row in pairs],
                    batch_size=batch_size,
                )
            )
    return encoded[0], encoded[1]


def encoded_pairs(ctx: EvalContext, pairs: Sequence[Mapping[str, Any]]) -> Samples:
    """The chosen completions of ``pairs`` then the rejected ones, as one :class:`Samples`: encoded once per
    trial (and prompt set), then reused by every checkpoint."""
    return ctx.trial_memo(
        f"preference_accuracy/pairs/{len(pairs)}",
        lambda: Samples.concat(*encode_pairs(ctx.tokenizer, pairs, int(ctx.eval_cfg.batch_size))),
    )


def pair_logprobs(ctx: EvalContext, model: torch.nn.Module, encoded: Samples) -> torch.Tensor:
    """log π(chosen|x) and log π(rejected|x) under ``model``, shape [2, pairs], from one pass over ``encoded``
    (:func:`encoded_pairs`) in length-sorted batches of ``eval.logprob_batch_size``."""
    return ctx.token_logprobs(model, encoded).sequence().double().view(2, -1)


def held_out_pairs(ctx: EvalContext) -> list[Mapping[str, Any]]:
    """The first ``eval.preference_pairs`` held-out pairs that have prompt,
    chosen and rejected (maybe none)."""
    pairs = ctx.preference_pairs
    if not pairs or not {"prompt", "chosen", "rejected"} <= set(pairs[0]):
        return []
    return list(pairs[: int(ctx.eval_cfg.get("preference_pairs", DEFAULT_PAIRS))])


def reference_pair_logprobs(ctx: EvalContext, encoded: Samples) -> torch.Tensor:
    """The reference's :func:`pair_logprobs`, from the reference cache, else computed and stored there (at
    step 0 the policy is the reference: computed then, so that no checkpoint pays for it)."""

    def compute() -> torch.Tensor:
        if ctx.is_reference:
            return pair_logprobs(ctx, ctx.policy, encoded)
        with ctx.reference.use(ctx.policy) as ref:
            return pair_logprobs(ctx, ref, encoded)

    return ctx.reference_tensor("pair_logprobs", compute)


def evaluate(ctx: EvalContext) -> dict[str, float]:
    """``preference_accuracy``, ``preference_accuracy_se`` and ``preference_margin``; {} without pairs."""
    pairs = held_out_pairs(ctx)
    if not pairs:
        return {}
    encoded = encoded_pairs(ctx, pairs)
    reference = reference_pair_logprobs(ctx, encoded)
    if ctx.is_reference:
        return {"preference_accuracy": 0.5, "preference_accuracy_se": 0.0, "preference_margin": 0.0}
    implicit = pair_logprobs(ctx, ctx.policy, encoded) - reference  # [2, pairs]
    margin = implicit[0] - implicit[1]
    correct = (margin > 0).double() + 0.5 * (margin == 0).double()
    accuracy, se = mean_and_se(correct)
    return {
        "preference_accuracy": accuracy,
        "preference_accuracy_se": se,
        "preference_margin": float(margin.mean()),
    }


@hookimpl
def harness_config_validate(cfg: DictConfig) -> None:
    """``eval.preference_pairs`` must be a positive integer."""
    value = cfg.eval.get("preference_pairs", DEFAULT_PAIRS)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(
            f"eval.preference_pairs={value!r} is invalid; use a positive number of held-out pairs "
            f"(default {DEFAULT_PAIRS})."
        )


@hookimpl
def harness_evaluators_register() -> list[EvaluatorSpec]:
    """The held-out preference-accuracy evaluator."""
    return [
        EvaluatorSpec(
            name="preference_accuracy",
            evaluate=evaluate,
            description="held-out pairs ranked correctly by the implicit reward log π/π_ref",
            metrics=[
                Metric(
                    "preference_accuracy",
                    "fraction of held-out preference pairs the policy's implicit reward "
                    "log π/π_ref orders correctly (ties 1/2)",
                    "maximize",
                    column="pref_acc",
                    headline=True,
                    se="preference_accuracy_se",
                    objective_priority=30,
                ),
                Metric("preference_accuracy_se", "standard error of preference_accuracy"),
                Metric(
                    "preference_margin",
                    "mean implicit-reward margin chosen − rejected on held-out pairs, nats",
                ),
            ],
        )
    ]
