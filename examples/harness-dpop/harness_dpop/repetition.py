"""Evaluator ``repetition``: how much the policy's samples repeat themselves (a degeneration signal).

``rep_ngram`` is, per sampled completion, the fraction of its token n-grams that repeat an n-gram seen earlier
in the same completion, averaged over completions (``rep_ngram_se``: its standard error over completions). The
trailing EOS token is not counted; a completion shorter than n tokens has no n-gram and counts as 0. The
n-gram size is the evaluator's option ``eval.repetition.n`` (default 2).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from harness.plugin import EvaluatorSpec, Metric, Option, mean_and_se

if TYPE_CHECKING:
    from harness.plugin import EvalContext


def repeated_fraction(tokens: Sequence[int], n: int) -> float:
    """The fraction of ``tokens``' n-grams that repeat an earlier n-gram of the same sequence
    (0.0 without any).

    ``[1, 2, 1, 2, 1]`` with n=2 has the bigrams 12, 21, 12, 21: the last two repeat, so 0.5.
    """
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return (len(grams) - len(set(grams))) / len(grams) if grams else 0.0


def repetition_values(
    completions: Sequence[Sequence[int]], n: int, eos_token_id: int | None = None
) -> torch.Tensor:
    """:func:`repeated_fraction` of each completion's tokens
    (a trailing ``eos_token_id`` dropped), shape [n]."""
    values = [
        repeated_fraction(ids[:-1] if ids and ids[-1] == eos_token_id else ids, n) for ids in completions
    ]
    return torch.tensor(values, dtype=torch.float64)


def evaluate(ctx: EvalContext) -> dict[str, float]:
    """``rep_ngram`` and ``rep_ngram_se`` of the policy's samples (shared with the other evaluators)."""
    values = repetition_values(
        ctx.policy_samples.completion_token_ids(), int(ctx.options.n), ctx.tokenizer.eos_token_id
    )
    mean, se = mean_and_se(values)
    return {"rep_ngram": mean, "rep_ngram_se": se}


def evaluator_spec() -> EvaluatorSpec:
    """The ``repetition`` evaluator's declaration: its metrics and its option."""
    return EvaluatorSpec(
        name="repetition",
        evaluate=evaluate,
        description="fraction of each sample's token n-grams that repeat an earlier one (example plugin)",
        metrics=[
            Metric(
                "rep_ngram",
                "fraction of a completion's token n-grams (n = eval.repetition.n) that repeat "
                "an earlier n-gram of it, mean over sampled completions",
                "minimize",
                headline=True,
                se="rep_ngram_se",
            ),
            Metric("rep_ngram_se", "standard error of rep_ngram"),
        ],
        options=[
            Option(
                "n",
                2,
                "n-gram size in tokens (1: repeated tokens, 2: repeated bigrams, ...)",
                bounds="[1, inf)",
            )
        ],
    )
