"""Checks of an Optuna sweep before its first trial: the trial configs it will compose, and its objectives.

Each searched method's trial config is composed as the launcher will compose it (Hydra's sweep config loader)
at the method's base point and at each end of every dimension, and validated like any trial's
(:func:`harness.config.validation.validate_trial_config`); pruning needs every checkpoint evaluated; and each
objective must be a metric that the trial's evaluators declare with a direction
(:func:`harness.config.metrics.resolve_metric`), whose declared direction is the study's default. A problem
stops the sweep with one line, before the study is opened or any trial runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig

from harness.errors import ConfigError, UnknownNameError
from harness.sweep.space import SearchSpace, overrides_for

if TYPE_CHECKING:
    from hydra.types import HydraContext

    from harness.plugin.specs import EvaluatorSpec

OBJECTIVES_KEY = "hydra.sweeper.objectives"


def trial_jobs(space: SearchSpace, method: str) -> list[list[str]]:
    """The job overrides checked for ``method``: its base point, then each end of every dimension it has."""
    import optuna.distributions as D

    variants: list[dict[str, Any]] = [{}]
    dims = {**space.shared, **{f"method.{k}": d for k, d in space.per_method.get(method, {}).items()}}
    for key, dist in dims.items():
        ends = dist.choices if isinstance(dist, D.CategoricalDistribution) else (dist.low, dist.high)
        variants += [{key: v} for v in ends]
    return [[*space.fixed, *overrides_for({"method": method, **values})] for values in variants]


def compose(config: DictConfig, hydra_context: HydraContext, job: Sequence[str]) -> DictConfig:
    """The trial config of ``job`` (overrides) on the sweep's ``config``; a composition error in one line."""
    try:
        return hydra_context.config_loader.load_sweep_config(config, list(job))
    except Exception as exc:
        first = next((ln for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
        raise ConfigError(f"Invalid trial config ({' '.join(job)}): {first}") from None


def check_trials(
    space: SearchSpace,
    objectives: Sequence[str],
    *,
    config: DictConfig,
    hydra_context: HydraContext,
    pruning: bool,
    auto_first: bool = False,
) -> list[str]:
    """Compose and validate every trial config :func:`trial_jobs` lists, and resolve the objectives among each
    one's evaluators; returns the objectives' declared directions. ``auto_first``: the first objective is what
    ``auto`` resolved to (named so in errors)."""
    from harness.config.validation import trial_evaluators, validate_trial_config
    from harness.plugin.manager import get_plugin_manager

    directions: list[str] = []
    for method in space.methods:
        for job in trial_jobs(space, method):
            cfg = compose(config, hydra_context, job)
            pm = get_plugin_manager(list(cfg.get("plugins") or []))
            validate_trial_config(cfg, pm)
            if pruning and cfg.eval.get("checkpoints") != "all":
                raise ConfigError(
                    f"Pruning needs every checkpoint evaluated, but eval.checkpoints="
                    f"{cfg.eval.get('checkpoints')}; set eval.checkpoints=all, or "
                    "hydra/sweeper/pruner=none."
                )
            found = declared_directions(
                objectives,
                trial_evaluators(cfg, pm),
                auto_first=auto_first,
                registered=list(pm.evaluators.values()),
            )
            directions = directions or found
    return directions


def declared_directions(
    objectives: Sequence[str],
    evaluators: Sequence[EvaluatorSpec],
    auto_first: bool = False,
    registered: Sequence[EvaluatorSpec] = (),
) -> list[str]:
    """The declared direction of each objective among ``evaluators``' metrics; a one-line ConfigError (an
    UnknownNameError listing the candidates) for a name that no evaluator declares with a direction, naming
    the ``registered`` evaluator to add when one declares it."""
    from harness.config.metrics import objective_candidates, resolve_metric

    directions = []
    for i, name in enumerate(objectives):
        try:
            metric = resolve_metric(name, evaluators, OBJECTIVES_KEY, registered)
        except UnknownNameError:
            if i or not auto_first:
                raise
            running = ", ".join(e.name for e in evaluators) or "none"
            raise ConfigError(
                f"{OBJECTIVES_KEY}=[auto] means {name} here, but no evaluator of the trial declares it "
                f"(evaluators: {running}); add its evaluator with eval.extra=[<name>], or name "
                f"another metric: {', '.join(objective_candidates(evaluators))}."
            ) from None
        directions.append(str(metric.direction))
    return directions
