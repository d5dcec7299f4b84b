"""Pruning that compares like with like, wrapped thinly around Optuna's pruners.

Optuna's median, percentile and successive-halving pruners compare a trial's intermediate value with every
other trial of the study at the same step. In a study that searches several methods that is unfair: DPO dips
before it climbs while SimPO rises early, so DPO's best settings are cut at the first checkpoints.
:class:`LikeForLikePruner` keeps the configured pruner and changes only what it sees and when it is asked:

- **within a method**: the pruner sees only the trials of the same method (the ``harness.method`` attribute
  every trial carries), through :class:`_MethodStudy`, a view of the study whose ``get_trials`` is filtered;
  its ``n_startup_trials`` then counts that method's finished trials;
- **after a warm-up share of training**: no trial is pruned before ``warmup`` of its planned optimizer steps
  (the steps its method announced, kept on the trial as ``harness.planned_steps``); its values are still
  reported, so later trials can be compared with them;
- **never at its last checkpoint**: a trial that reached its planned steps has cost them all; it completes;
- **successive halving's first rung at the warm-up**: with ``min_resource: auto`` Optuna guesses the first
  rung from the first completed trial (a hundredth of its steps, far inside the warm-up); here the first rung
  is the warm-up's step, so a trial's first comparison is its first chance to be pruned.

Optuna's Hyperband builds its own bracket studies from the storage and would drop the method filter, so it is
used as it is (the warm-up still applies).
"""

from __future__ import annotations

import math
from collections.abc import Container

import optuna

from harness.sweep import study as st


class _MethodStudy(optuna.study.Study):
    """The same study, whose trials are only those of one method (for the wrapped pruner's comparisons)."""

    def __init__(self, study: optuna.study.Study, method: str) -> None:
        super().__init__(
            study_name=study.study_name, storage=study._storage, sampler=study.sampler, pruner=study.pruner
        )
        self._method = method

    def get_trials(
        self, deepcopy: bool = True, states: Container[optuna.trial.TrialState] | None = None
    ) -> list[optuna.trial.FrozenTrial]:
        """The study's trials of this view's method (see :meth:`optuna.study.Study.get_trials`)."""
        trials = super().get_trials(deepcopy=deepcopy, states=states)
        return [t for t in trials if t.user_attrs.get(st.ATTR_METHOD) == self._method]


class LikeForLikePruner(optuna.pruners.BasePruner):
    """``pruner`` asked only after ``warmup`` (a fraction) of a trial's planned steps, comparing it only with
    trials of its own method when ``by_method`` (see the module docstring)."""

    def __init__(
        self, pruner: optuna.pruners.BasePruner, warmup: float = 1 / 3, by_method: bool = True
    ) -> None:
        if not 0 <= warmup < 1:
            raise ValueError(f"warmup must be a fraction of the training steps in [0, 1), got {warmup!r}")
        self.pruner, self.warmup, self.by_method = pruner, float(warmup), bool(by_method)

    def prune(self, study: optuna.study.Study, trial: optuna.trial.FrozenTrial) -> bool:
        """Whether to stop ``trial`` now (Optuna's pruner interface)."""
        step = trial.last_step
        if step is None:
            return False
        planned = trial.user_attrs.get(st.ATTR_PLANNED)
        if planned and (step < self.warmup * float(planned) or step >= int(planned)):
            return False
        if (
            planned
            and isinstance(self.pruner, optuna.pruners.SuccessiveHalvingPruner)
            and getattr(self.pruner, "_min_resource", 0) is None
            and self.warmup > 0
        ):  # Optuna keeps "auto" as None
            self.pruner._min_resource = max(1, math.ceil(self.warmup * float(planned)))
        method = trial.user_attrs.get(st.ATTR_METHOD)
        if (
            self.by_method
            and method is not None
            and not isinstance(self.pruner, optuna.pruners.HyperbandPruner)
        ):
            study = _MethodStudy(study, method)
        return self.pruner.prune(study, trial)


def wrap(pruner: optuna.pruners.BasePruner, warmup: float, by_method: bool) -> optuna.pruners.BasePruner:
    """``pruner`` inside a :class:`LikeForLikePruner` (a NopPruner as it is: it never prunes)."""
    if isinstance(pruner, optuna.pruners.NopPruner):
        return pruner
    return LikeForLikePruner(pruner, warmup, by_method)
