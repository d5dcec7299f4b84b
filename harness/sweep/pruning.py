"""Optuna pruning from inside a trial: the sweep's in-trial half, a plugin of the trial lifecycle hooks.

Registered through the ``harness.plugins`` entry points like any plugin (``optuna_pruning``). Active only in
trials launched by the Optuna sweeper (``hydra/sweeper=optuna``), which names the study and the trial in the
job's environment; elsewhere every hook returns at once. The logic is in :mod:`harness.sweep.reporter`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.plugin.hookspecs import hookimpl
from harness.sweep.reporter import TrialReporter

_current: TrialReporter | None = None


@hookimpl
def harness_trial_start(cfg: Any, trial_dir: Any) -> None:
    """Attach to the Optuna trial this job runs, if any (marks its process, starts the heartbeat)."""
    global _current
    if _current is not None:
        _current.close()
        _current = None
    if not TrialReporter.in_sweep():
        return
    from harness.config.validation import metric_declarations
    from harness.plugin.manager import plugin_manager_for

    _current = TrialReporter.from_environment(metric_declarations(cfg, plugin_manager_for(cfg)))


@hookimpl
def harness_checkpoint_evaluated(
    cfg: Any,
    step: int,
    metrics: Mapping[str, Any],
    selection: Mapping[str, Any] | None,
    planned_steps: int | None,
) -> None:
    """Report the checkpoint (its selection metrics when it has them); raises TrialPruned when the study's pruner
    stops the trial."""
    if _current is not None:
        _current.checkpoint(step, metrics, selection, planned_steps)


@hookimpl
def harness_trial_end(record: Mapping[str, Any]) -> None:
    """Stop the heartbeat (the sweeper tells Optuna the result from the record)."""
    global _current
    if _current is not None:
        _current.close()
        _current = None
