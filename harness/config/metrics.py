"""Metric names as objectives: resolved against the metrics the trial's evaluators declare,
before any compute.

The leaderboard's objective (``leaderboard.objective``) and an Optuna study's objectives may name any metric
an evaluator declares with a direction, by its key (``reward_model_score``) or its leaderboard column
(``rm_score``); ``*`` in a declared name matches any text (``lm_eval/*/acc`` covers
``lm_eval/hellaswag/acc``). ``auto`` is the declared metric of lowest ``objective_priority`` among the
evaluators that are active for the config: the gold reward (0) where the data defines one, else a reward
model's score (10), else a judge's win rate (20), else preference accuracy (30).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from harness.errors import ConfigError, UnknownNameError

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from harness.plugin.metrics import Metric
    from harness.plugin.specs import EvaluatorSpec


def objective_candidates(evaluators: Sequence[EvaluatorSpec]) -> list[str]:
    """The metric names (columns) that may be objectives: declared with a direction."""
    return [m.label for e in evaluators for m in e.metrics if m.direction is not None]


def resolve_metric(
    name: str, evaluators: Sequence[EvaluatorSpec], key: str, registered: Sequence[EvaluatorSpec] = ()
) -> Metric:
    """The declaration of metric ``name`` among ``evaluators``' metrics, usable as an objective.

    :raises ConfigError: the metric belongs to one of the ``registered`` evaluators that the trial does not
        run (the message says how to add it).
    :raises UnknownNameError: no evaluator of the trial declares it (the message lists those that exist and
        how to add an evaluator).
    :raises ConfigError: the metric has no direction (a descriptive value such as a length).
    """
    for evaluator in evaluators:
        metric = evaluator.metric(name)
        if metric is None:
            continue
        if metric.direction is None:
            raise ConfigError(
                f"{key}={name} names a descriptive metric of evaluator {evaluator.name} (no better or "
                f"worse direction); choose one of: {', '.join(objective_candidates(evaluators))}."
            )
        return metric
    owner = next((e for e in registered if e.metric(name) is not None and e not in evaluators), None)
    if owner is not None:
        raise ConfigError(
            f"{key}={name} is a metric of evaluator {owner.name}, which this trial does not run; add it "
            f"with eval.extra=[{owner.name}] (and its options, eval.{owner.name}.*), or choose one of: "
            f"{', '.join(objective_candidates(evaluators))}."
        )
    running = ", ".join(e.name for e in evaluators) or "none"
    raise UnknownNameError(
        f"metric for {key}",
        name,
        objective_candidates(evaluators),
        hint=f"(Evaluators of this trial: {running}; add another with eval.extra=[<name>].)",
    )


def auto_objective(evaluators: Sequence[EvaluatorSpec], cfg: DictConfig) -> Metric | None:
    """The metric ``auto`` stands for under trial config ``cfg``: of the evaluators active for it
    (:attr:`EvaluatorSpec.active`), the declared metric with the lowest ``objective_priority``; None when none
    has one."""
    ranked = [
        (m.objective_priority, i, m)
        for i, e in enumerate(evaluators)
        if e.active is None or e.active(cfg)
        for m in e.metrics
        if m.objective_priority is not None
    ]
    return min(ranked, key=lambda item: item[:2])[2] if ranked else None
