"""The arithmetic of the ``judge`` evaluator: reading verdicts, scoring both orders,
the length-controlled win rate.

A verdict is ``"A"``, ``"B"``, ``"C"`` (a tie) or ``None`` (unusable: unreadable, under ``min_label_prob`` or
refused by the server; :func:`unusable_kind`). When more than ``max_unusable`` of them are unusable, the win
rate is withheld (:func:`unusable_reason`): a judge that cannot judge is not a tie.

Each policy completion is judged twice against the reference's completion of the same prompt, once as answer A
and once as answer B; a comparison scores 1 when the policy's answer wins, 1/2 for a tie and 0 when it loses,
and a sample scores the mean over the orders whose verdict parsed (NaN when neither did). A judge that always
prefers the first answer therefore scores exactly 1/2: the position bias cancels.

The length-controlled win rate follows AlpacaEval 2's idea: a logistic regression of each comparison's outcome
on ``tanh(length difference / its standard deviation)`` with an intercept; the win rate at equal length is
``sigmoid(intercept)``. Its standard error is the delta method on a sandwich covariance clustered by prompt
(the two orders of a sample, and the samples of a prompt, are not independent), which reduces to the inverse
Fisher information when every comparison is its own cluster.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

VERDICTS = ("A", "B", "C")

# [[A]], [[ b ]], [[C]], [[tie]]: the format the built-in template asks for.
_BRACKETED = re.compile(r"\[\[\s*(A|B|C|tie)\s*\]\]", re.IGNORECASE)
# An uppercase letter anywhere; a lowercase one only at the end of its line ("Verdict: a" but not "a tie").
_LABEL = r"(?P<label>(?i:tie)|[ABC](?!\w)|[abc](?=[\s.!*)\]\"'`]*$))"
_ARTICLE = r"(?:(?i:it'?s\s+|it\s+is\s+)?(?i:a\s+)(?=(?i:tie)))?"
_NAMED = r"(?:(?i:assistant|answer|response|model|output)(?:\s*:\s*|\s+))?"
# "Verdict: A", "Final verdict is **B**", "Winner: Assistant A", "Final answer: tie", "Decision - C".
_LABELLED = re.compile(
    r"(?i:\b(?:final\s+verdict|verdict|final\s+answer|winner|decision|final\s+judg(?:e)?ment|better\s+"
    r"(?:answer|response|assistant)\s+is))(?:[\s*_`\"'\[(:=\-]|(?i:is)\b)*" + _ARTICLE + _NAMED + _LABEL,
    re.MULTILINE,
)
# A last line that is only a verdict: "A", "**B**", "Assistant A.", "Tie", "It's a tie."
_LONE = re.compile(r"^[\W_]*" + _ARTICLE + _NAMED + r"(?P<label>(?i:tie)|[ABCabc])[\W_]*$")


def _label(text: str) -> str:
    return "C" if text.lower() == "tie" else text.upper()


def parse_verdict(output: str | None) -> str | None:
    """The verdict in a judge's output: ``"A"``, ``"B"``, ``"C"`` (tie) or None when none can be read.

    In order of trust: the last ``[[A]]``/``[[B]]``/``[[C]]``/``[[tie]]``; else the last labelled verdict
    ("Verdict: A", "Final verdict is **B**", "Winner: Assistant A", "final answer: tie"); else a last line
    that is a verdict alone ("A", "**B**", "Tie."). Case does not matter, except that a lowercase letter
    counts only at the end of its line (so "Verdict: a tie" is a tie).
    """
    if not output:
        return None
    bracketed = _BRACKETED.findall(output)
    if bracketed:
        return _label(bracketed[-1])
    labelled = list(_LABELLED.finditer(output))
    if labelled:
        return _label(labelled[-1].group("label"))
    lines = [line for line in output.strip().splitlines() if line.strip()]
    lone = _LONE.match(lines[-1].strip()) if lines else None
    return _label(lone.group("label")) if lone else None


def unusable_kind(answer: Mapping[str, Any], verdict: str | None) -> str | None:
    """Why a raw judge answer gave no verdict: ``"refused by the server"`` (an HTTP 400/413/422),
    ``"under min_label_prob"`` (a local judge's labels held too little probability) or ``"unreadable"`` (no
    verdict in the text); None when ``verdict`` is one."""
    if verdict is not None:
        return None
    if answer.get("error"):
        return "refused by the server"
    return "under min_label_prob" if answer.get("probs") is not None else "unreadable"


def unusable_reason(kinds: Mapping[str, int], total: int, max_unusable: float) -> str | None:
    """Why the win rate of ``total`` verdicts is withheld, ``"unusable (31/32 verdicts unusable: 31 under
    min_label_prob)"``, when more than the share ``max_unusable`` of them is unusable (``kinds``: the count of
    each :func:`unusable_kind`), or none is usable; None when the win rate stands."""
    bad = sum(kinds.values())
    if total <= 0 or (bad / total <= max_unusable and bad < total):
        return None
    detail = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()) if n)
    return f"unusable ({bad}/{total} verdicts unusable: {detail})"


def outcome(verdict: str | None, policy_is_a: bool) -> float:
    """The policy's score for one comparison: 1 (its answer won), 0.5 (tie), 0 (lost), NaN (unparsed)."""
    if verdict is None:
        return math.nan
    if verdict == "C":
        return 0.5
    return 1.0 if (verdict == "A") == policy_is_a else 0.0


def sample_outcomes(policy_first: Sequence[str | None], policy_second: Sequence[str | None]) -> np.ndarray:
    """Per sample, the mean outcome over the two orders whose verdicts parsed (NaN when neither did).

    ``policy_first[i]`` is the verdict with the policy's answer as A, ``policy_second[i]`` with it as B.
    """
    both = np.array(
        [[outcome(a, True), outcome(b, False)] for a, b in zip(policy_first, policy_second, strict=True)],
        dtype=np.float64,
    ).reshape(-1, 2)
    counts = np.sum(~np.isnan(both), axis=1)
    sums = np.nansum(both, axis=1)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def prompt_means(values: np.ndarray, samples_per_prompt: int) -> np.ndarray:
    """Per prompt, the mean of its ``samples_per_prompt`` consecutive values ignoring NaNs; prompts with no
    value are dropped."""
    grouped = np.asarray(values, dtype=np.float64).reshape(-1, samples_per_prompt)
    keep = ~np.all(np.isnan(grouped), axis=1)
    grouped = grouped[keep]
    counts = np.sum(~np.isnan(grouped), axis=1)
    return np.nansum(grouped, axis=1) / np.maximum(counts, 1)


def length_features(length_diff: np.ndarray) -> np.ndarray:
    """``tanh(d / std(d))`` of the length differences (policy minus reference);
    zeros when they do not vary."""
    d = np.asarray(length_diff, dtype=np.float64)
    std = float(np.std(d)) if d.size > 1 else 0.0
    return np.tanh(d / std) if std > 0 else np.zeros_like(d)


def _fit_logistic(x: np.ndarray, y: np.ndarray, iterations: int = 100) -> np.ndarray | None:
    """Newton's method for the logistic regression of ``y`` (in [0, 1], fractions allowed) on the columns of
    ``x``; None when it does not converge (separable data: a coefficient runs off to infinity)."""
    beta = np.zeros(x.shape[1])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ beta, -30, 30)))
        hessian = x.T @ (x * (p * (1 - p))[:, None])
        try:
            step = np.linalg.solve(hessian, x.T @ (y - p))
        except np.linalg.LinAlgError:
            return None
        beta = beta + step
        if not np.all(np.isfinite(beta)) or np.max(np.abs(beta)) > 25:
            return None
        if np.max(np.abs(step)) < 1e-10:
            return beta
    return None


def length_controlled_win_rate(
    outcomes: Sequence[float], length_diff: Sequence[float], clusters: Sequence[int] | None = None
) -> tuple[float, float] | None:
    """The win rate at equal length, and its standard error, from per-comparison ``outcomes`` (1, 0.5, 0; NaN
    entries are dropped) and the policy-minus-reference ``length_diff`` of each comparison.

    Fits ``P(win) = sigmoid(b0 + b1 * tanh(diff / std(diff)))`` by Newton's method and returns ``sigmoid(b0)``
    with its delta-method standard error. ``clusters`` (e.g. the prompt of each comparison) makes the
    covariance a sandwich clustered by them; without, it is the inverse Fisher information. Returns None when
    the data cannot determine it: fewer than two comparisons, all outcomes equal (every comparison won, or
    every one lost), or a fit that diverges.
    """
    y = np.asarray(outcomes, dtype=np.float64)
    keep = ~np.isnan(y)
    y = y[keep]
    if y.size < 2 or np.all(y == y[0]):
        return None
    feature = length_features(np.asarray(length_diff, dtype=np.float64)[keep])
    varies = np.any(feature != 0)
    x = np.column_stack([np.ones_like(y), feature]) if varies else np.ones((y.size, 1))
    beta = _fit_logistic(x, y)
    if beta is None:
        return None
    p = 1.0 / (1.0 + np.exp(-(x @ beta)))
    bread = np.linalg.pinv(x.T @ (x * (p * (1 - p))[:, None]))
    if clusters is None:
        covariance = bread
    else:
        scores = x * (y - p)[:, None]
        ids = np.asarray(clusters)[keep]
        meat = sum(np.outer(s, s) for s in (scores[ids == c].sum(axis=0) for c in np.unique(ids)))
        covariance = bread @ meat @ bread
    rate = float(1.0 / (1.0 + math.exp(-beta[0])))
    se = rate * (1 - rate) * math.sqrt(max(float(covariance[0, 0]), 0.0))
    return rate, se
