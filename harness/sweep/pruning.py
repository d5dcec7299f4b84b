"""Optuna pruning from inside a trial: the sweep's in-trial half, a plugin that observes each trial.

Registered through the ``harness.plugins`` entry points like any plugin (``optuna_pruning``). Active only in
trials launched by the Optuna sweeper (``hydra/sweeper=optuna``), which names the study and the trial in the
job's environment: there, each trial gets its own :class:`harness.sweep.reporter.TrialReporter` (a
:class:`harness.plugin.TrialObserver`), which reports every checkpoint and stops its heartbeat when the trial
ends; elsewhere the hook returns None. Nothing is kept between trials: the module holds no state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.plugin.hookspecs import hookimpl
from harness.sweep.reporter import TrialReporter

if TYPE_CHECKING:
    from pathlib import Path

    from omegaconf import DictConfig


@hookimpl
def harness_trial_observer(cfg: DictConfig, trial_dir: Path) -> TrialReporter | None:
    """The reporter of the Optuna trial this job runs (it marks its process and starts the heartbeat), or None
    outside an Optuna sweep."""
    if not TrialReporter.in_sweep():
        return None
    from harness.config.validation import metric_declarations
    from harness.plugin.manager import plugin_manager_for

    return TrialReporter.from_environment(metric_declarations(cfg, plugin_manager_for(cfg)))
