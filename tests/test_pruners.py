"""Pruning that compares like with like: a method whose curve dips before it climbs (DPO) is not cut by the
median of a method that rises early (SimPO), no trial is cut before the warm-up share of its steps, and a step
budget stops the search."""

from __future__ import annotations

import optuna
import pytest

from harness.sweep import study as st
from harness.sweep.pruners import LikeForLikePruner, wrap
from harness.sweep.trials import steps_spent

pytestmark = pytest.mark.unit
optuna.logging.set_verbosity(optuna.logging.WARNING)

PLANNED = 6
RISES_EARLY = [0.10, 0.20, 0.25, 0.27, 0.28, 0.28]  # SimPO-like
DIPS_FIRST = [-0.50, -0.30, 0.00, 0.30, 0.40, 0.45]  # DPO-like: worse than SimPO until step 4, better after


def _finished(study, method, curve, shift=0.0):
    trial = study.ask()
    trial.set_user_attr(st.ATTR_METHOD, method)
    trial.set_user_attr(st.ATTR_PLANNED, PLANNED)
    for step, value in enumerate(curve, start=1):
        trial.report(value + shift, step)
    study.tell(trial, curve[-1] + shift)


def _study(pruner):
    study = optuna.create_study(direction="maximize", pruner=pruner)
    for shift in (0.0, 0.01, -0.01, 0.02):
        _finished(study, "simpo", RISES_EARLY, shift)
        _finished(study, "dpo", DIPS_FIRST, shift - 0.05)
    return study


def _first_pruned_step(study, method, curve):
    """The step at which the study's pruner stops a new trial following ``curve``
    (None: it runs to the end)."""
    trial = study.ask()
    trial.set_user_attr(st.ATTR_METHOD, method)
    trial.set_user_attr(st.ATTR_PLANNED, PLANNED)
    for step, value in enumerate(curve, start=1):
        trial.report(value, step)
        if trial.should_prune():
            return step
    return None


def test_the_dipping_methods_best_setting_survives_where_a_pooled_median_cuts_it():
    best_dpo = [v + 0.1 for v in DIPS_FIRST]  # DPO's best setting: still below every SimPO trial at steps 1-3
    pooled = _study(optuna.pruners.MedianPruner(n_startup_trials=4))
    assert (
        _first_pruned_step(pooled, "dpo", best_dpo) == 1
    )  # what happened in the issue: cut at the first checkpoint
    fair = _study(LikeForLikePruner(optuna.pruners.MedianPruner(n_startup_trials=4), warmup=1 / 3))
    assert _first_pruned_step(fair, "dpo", best_dpo) is None
    # it still prunes: a DPO setting worse than DPO's median after the warm-up is cut,
    # at the first step allowed
    assert _first_pruned_step(fair, "dpo", [v - 0.3 for v in DIPS_FIRST]) == 2


def test_no_trial_is_cut_before_the_warm_up_share_of_its_steps():
    fair = _study(
        LikeForLikePruner(optuna.pruners.MedianPruner(n_startup_trials=1), warmup=0.5, by_method=False)
    )
    hopeless = [-5.0] * PLANNED
    assert _first_pruned_step(fair, "simpo", hopeless) == 3  # steps 1 and 2 are under half of 6


def test_the_warm_up_is_checked_and_a_nop_pruner_is_left_as_it_is():
    with pytest.raises(ValueError, match="warmup"):
        LikeForLikePruner(optuna.pruners.MedianPruner(), warmup=1.0)
    nop = optuna.pruners.NopPruner()
    assert wrap(nop, 0.33, True) is nop
    assert isinstance(wrap(optuna.pruners.MedianPruner(), 0.33, True), LikeForLikePruner)


def test_steps_spent_counts_completed_trials_at_their_plan_and_pruned_ones_where_they_stopped():
    study = optuna.create_study(direction="maximize")
    _finished(study, "dpo", DIPS_FIRST)  # 6 planned steps
    pruned = study.ask()
    pruned.report(0.1, 2)
    study.tell(pruned, state=optuna.trial.TrialState.PRUNED)  # 2 steps
    twin = study.ask()
    twin.set_user_attr(st.ATTR_SAME_AS, 0)
    study.tell(twin, 0.45)  # told a twin's result: no steps
    assert steps_spent(study.get_trials()) == 8


def test_a_trial_that_reached_its_planned_steps_is_never_pruned():
    fair = _study(
        LikeForLikePruner(optuna.pruners.MedianPruner(n_startup_trials=1), warmup=0.9, by_method=False)
    )
    hopeless = [
        -5.0
    ] * PLANNED  # only the last step is past the warm-up: it has cost every step, it completes
    assert _first_pruned_step(fair, "simpo", hopeless) is None


def test_successive_halvings_first_rung_is_the_warm_up_step():
    pruner = LikeForLikePruner(
        optuna.pruners.SuccessiveHalvingPruner(min_resource="auto", reduction_factor=2), warmup=1 / 3
    )
    study = optuna.create_study(direction="maximize", pruner=pruner)

    def run(level):  # a DPO-like curve at ``level``; where the pruner stops it (None: it completed)
        trial = study.ask()
        trial.set_user_attr(st.ATTR_METHOD, "dpo")
        trial.set_user_attr(st.ATTR_PLANNED, PLANNED)
        for step, value in enumerate(DIPS_FIRST, start=1):
            trial.report(value + level, step)
            if trial.should_prune():
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                return step
        study.tell(trial, DIPS_FIRST[-1] + level)
        return None

    assert [run(level) for level in (0.1, 0.3)] == [None, None]  # each the best at its rung so far
    assert pruner.pruner._min_resource == 2  # a third of 6 steps, not Optuna's guess of 1 (a hundredth)
    assert run(-0.5) == 2  # the bottom half at the first rung, cut there (its first chance)
    assert (
        run(0.5) is None
    )  # the top half goes on; the second rung (step 4) promotes it, the last step never prunes
