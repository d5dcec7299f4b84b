"""Inside a trial's own process: report each evaluated checkpoint to the Optuna trial and ask its pruner.

The sweeper passes two environment variables to each job (through Hydra's ``hydra.job.env_set``):
``HARNESS_OPTUNA_STUDY`` (the sweep's ``study.json``) and ``HARNESS_OPTUNA_TRIAL`` (the trial number); a
storage URL's password travels only in the process environment (:data:`harness.sweep.storage.ENV_STORAGE`).
When they are set, :class:`TrialReporter` opens the study with the sweep's pruner, marks the trial as run by
this process, keeps a heartbeat (and, every few beats, settles other trials whose process died), and after
every checkpoint reports the value ``hydra.sweeper.prune_value`` names (:func:`pruning_value`; by default the
trial's best objective so far at any KL). Like the value the sweeper tells Optuna, it is measured on the
selection prompts (``eval.selection``), never on the reported (test) ones, unless selection is off. When the
pruner says so it raises :class:`harness.errors.TrialPruned`, and the trial is recorded as pruned. A reporter
is the trial's :class:`harness.plugin.TrialObserver` (:mod:`harness.sweep.pruning` returns it): the runner
calls :meth:`TrialReporter.checkpoint_evaluated` after each checkpoint and :meth:`TrialReporter.trial_end` at
the end.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import TrialPruned
from harness.plugin.observers import TrialObserver
from harness.records import Checkpoint, SelectionResult
from harness.sweep import study as st

if TYPE_CHECKING:
    from harness.records import TrialRecord

ENV_STUDY = "HARNESS_OPTUNA_STUDY"
ENV_TRIAL = "HARNESS_OPTUNA_TRIAL"
RECOVER_EVERY = 5  # heartbeats between two looks for lost trials from a running trial's process


def build_pruner(config: Mapping[str, Any] | None, warmup: float = 0.0, by_method: bool = False) -> Any:
    """Instantiate a pruner from its Hydra config (``{"_target_": "optuna.pruners.MedianPruner", ...}``),
    wrapped to wait for ``warmup`` of a trial's steps and compare within its method
    (:mod:`harness.sweep.pruners`)."""
    import optuna
    from hydra.utils import instantiate

    from harness.sweep.pruners import wrap

    if not config:
        return optuna.pruners.NopPruner()
    return wrap(instantiate(dict(config)), warmup, by_method)


def pruning_value(
    checkpoints: list[Checkpoint],
    settings: st.StudySettings,
    declared: Mapping[str, Any],
    previous: float | None,
) -> float | None:
    """The value a trial reports to the pruner after its latest checkpoint (``settings.prune_value``:
    :data:`harness.sweep.study.PRUNE_VALUES`): the leaderboard's value over ``checkpoints`` so far (best), the
    same with no KL budget (peak), the latest checkpoint's objective (last), or its exponential moving average
    with ``previous`` (ema); None when the objective is not measured."""
    kind = settings.prune_value
    if kind == "peak":
        settings = dataclasses.replace(settings, kl_budget=None)
    values, _ = st.objective_values(
        checkpoints if kind in ("best", "peak") else checkpoints[-1:], settings, declared
    )
    if values is None:
        return None
    if kind == "ema" and previous is not None:
        return st.PRUNE_EMA * values[0] + (1 - st.PRUNE_EMA) * previous
    return values[0]


class TrialReporter(TrialObserver):
    """Reports one trial's checkpoints to Optuna from the trial's process (see the module docstring)."""

    def __init__(
        self, settings: st.StudySettings, number: int, declared: Mapping[str, Any] | None = None
    ) -> None:
        import optuna

        from harness.sweep.liveness import this_process

        self.settings = settings
        self.number = number
        self.declared = dict(
            declared or {}
        )  # the trial's metric declarations: metric keys -> columns, directions
        storage = st.open_storage(settings.storage)
        self.study = optuna.load_study(
            study_name=settings.study_name,
            storage=storage,
            pruner=build_pruner(settings.pruner, settings.prune_warmup, settings.prune_by_method),
        )
        self.trial = st.trial_handle(self.study, storage, number)
        self.trial.set_user_attr(st.ATTR_RUNNER, this_process())
        self.checkpoints: list[Checkpoint] = []  # what was reported so far (step, metrics, selection metrics)
        self.reported: float | None = None  # the last value reported to the pruner
        self._stop = threading.Event()
        self._beat()
        self._thread = threading.Thread(target=self._heartbeat, name="optuna-heartbeat", daemon=True)
        self._thread.start()

    @staticmethod
    def in_sweep() -> bool:
        """Whether this process runs a trial of an Optuna sweep (the sweeper names it in the environment)."""
        path = os.environ.get(ENV_STUDY)
        return bool(path) and os.environ.get(ENV_TRIAL) is not None and Path(str(path)).is_file()

    @classmethod
    def from_environment(cls, declared: Mapping[str, Any] | None = None) -> TrialReporter | None:
        """A reporter for the trial named in the environment (``declared``: its metric declarations), or None
        outside an Optuna sweep."""
        path, number = os.environ.get(ENV_STUDY), os.environ.get(ENV_TRIAL)
        if not path or number is None or not Path(path).is_file():
            return None
        return cls(st.StudySettings.load(Path(path)), int(number), declared)

    def _beat(self) -> None:
        import time

        self.trial.set_user_attr(st.ATTR_HEARTBEAT, round(time.time(), 1))

    def _heartbeat(self) -> None:
        """Refresh the heartbeat every ``heartbeat_s``; every :data:`RECOVER_EVERY` beats, also settle other
        trials whose process died (any live process of the study finds them, not only a worker's start)."""
        from harness.sweep.trials import recover_lost_trials

        beats = 0
        while not self._stop.wait(self.settings.heartbeat_s):
            beats += 1
            with contextlib.suppress(
                Exception
            ):  # a storage hiccup must not kill the trial; the next beat retries
                self._beat()
            if beats % RECOVER_EVERY == 0:
                with contextlib.suppress(Exception):
                    recover_lost_trials(
                        self.study, self.settings, self.settings.stale_after_s, self.settings.max_retries
                    )

    def checkpoint(
        self,
        step: int,
        metrics: Mapping[str, Any],
        selection: Mapping[str, Any] | None = None,
        planned_steps: int | None = None,
    ) -> None:
        """Report the objective after the checkpoint at ``step`` (``selection``: its metrics on the selection
        prompts, which decide when given; ``planned_steps``: the trial's total, for the pruner's warm-up);
        raise TrialPruned if the pruner says so."""
        if planned_steps and not self.checkpoints:
            self.trial.set_user_attr(st.ATTR_PLANNED, int(planned_steps))
        entry = Checkpoint(step=step, metrics=dict(metrics))
        if selection:
            entry.selection = SelectionResult(metrics=dict(selection))
        self.checkpoints.append(entry)
        if self.settings.multi_objective:
            return  # Optuna neither records intermediate values nor prunes for several objectives
        value = pruning_value(self.checkpoints, self.settings, self.declared, self.reported)
        if value is None:
            return
        self.reported = value
        self.trial.report(value, step)
        if self.trial.should_prune():
            import optuna

            pruner = self.study.pruner
            inner = getattr(pruner, "pruner", pruner)
            compares = isinstance(
                inner, (optuna.pruners.PercentilePruner, optuna.pruners.SuccessiveHalvingPruner)
            )
            within = " among its method's trials" if compares and getattr(pruner, "by_method", False) else ""
            raise TrialPruned(
                f"pruned at step {step} by {type(inner).__name__}{within} "
                f"({st.PRUNE_VALUES[self.settings.prune_value]} {value:.4g})"
            )

    def close(self) -> None:
        """Stop the heartbeat."""
        self._stop.set()

    def checkpoint_evaluated(
        self,
        step: int,
        metrics: Mapping[str, Any],
        selection: Mapping[str, Any] | None,
        planned_steps: int | None,
    ) -> None:
        """The observer's call after each checkpoint: :meth:`checkpoint` (may raise TrialPruned)."""
        self.checkpoint(step, metrics, selection, planned_steps)

    def trial_end(self, record: TrialRecord) -> None:
        """The observer's call when the trial ends: stop the heartbeat (the sweeper tells Optuna the result
        from the record)."""
        self.close()
