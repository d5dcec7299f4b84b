"""Evaluator ``text_stats``: length, diversity and entropy of the policy's samples (signs of mode collapse).

* ``length``: mean completion length in tokens (EOS not counted);
* ``finished``: fraction of completions that ended with EOS before the token limit;
* ``distinct_1``, ``distinct_2``: unique token n-grams / all token n-grams, over all completions together;
* ``entropy``: mean per-token entropy (nats) of the policy's sampling distribution along its own samples,
  from the logits of the same forward pass that gives the KL evaluator its log-probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from harness.plugin import EvaluatorSpec, Metric, hookimpl

if TYPE_CHECKING:
    from harness.plugin import EvalContext


def distinct_n(sequences: Sequence[Sequence[int]], n: int) -> float:
    """Unique n-grams / total n-grams over all ``sequences`` (0.0 when there is no n-gram)."""
    grams = [tuple(seq[i : i + n]) for seq in sequences for i in range(len(seq) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def evaluate(ctx: EvalContext) -> dict[str, float]:
    """``length``, ``finished``, ``distinct_1``, ``distinct_2`` and ``entropy`` of the policy samples."""
    samples = ctx.policy_samples
    finished = (
        samples.finished
    )  # ended with one of the model's end-of-sequence tokens: not counted in the length
    tokens = [
        ids[:-1] if done and ids else ids
        for ids, done in zip(samples.completion_token_ids(), finished.tolist(), strict=True)
    ]
    scores = ctx.policy_tokens
    assert scores.entropy is not None
    return {
        "length": sum(map(len, tokens)) / max(len(tokens), 1),
        "finished": float(finished.double().mean()) if len(finished) else 0.0,
        "distinct_1": distinct_n(tokens, 1),
        "distinct_2": distinct_n(tokens, 2),
        "entropy": float(scores.entropy.sum() / scores.mask.sum().clamp(min=1)),
    }


@hookimpl
def harness_evaluators_register() -> list[EvaluatorSpec]:
    """The text-statistics evaluator."""
    return [
        EvaluatorSpec(
            name="text_stats",
            evaluate=evaluate,
            description="completion length, distinct-1/2 and per-token entropy of policy samples",
            metrics=[
                Metric("length", "mean completion length in tokens", headline=True),
                Metric("finished", "fraction of completions that ended with EOS within the token limit"),
                Metric("distinct_1", "distinct tokens / all tokens of completions (diversity)"),
                Metric(
                    "distinct_2", "distinct bigrams / all bigrams of completions (diversity)", headline=True
                ),
                Metric("entropy", "mean per-token entropy of the sampling distribution, nats"),
            ],
        )
    ]
