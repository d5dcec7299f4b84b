"""Per-trial observers: how a plugin keeps state for one trial without module globals.

A plugin that follows a trial (an experiment tracker's open run, a pruner's handle on its study trial) returns
a :class:`TrialObserver` from the ``harness_trial_observer`` hook when the trial starts. The runner keeps it
for that trial only and calls its methods as the trial goes: :meth:`~TrialObserver.reference_evaluated` (step
0), :meth:`~TrialObserver.checkpoint_evaluated` (each evaluated checkpoint) and
:meth:`~TrialObserver.trial_end` (always, once, after the record is written). Two trials in one process (a
multirun's jobs, a test session) therefore share nothing, and a trial that never ends cleanly leaves nothing
behind for the next one.

The failure policy is the lifecycle hooks' (:mod:`harness.plugin.hookspecs`): a method that raises is named in
one warning line and in the record's ``plugin_errors`` (``hook`` is ``TrialObserver.<method>``) and the trial
goes on; :class:`harness.errors.TrialPruned` from :meth:`~TrialObserver.checkpoint_evaluated` stops the trial
once every plugin has seen the checkpoint. Like a hook implementation, a method may leave out parameters it
does not use (only those it names are passed), so adding a parameter here is backwards compatible.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.records import TrialRecord


class TrialObserver:
    """Follows one trial; subclass it and override the methods you need (each does nothing here).

    Built by a plugin's ``harness_trial_observer(cfg, trial_dir)`` when a trial starts, in the trial's main
    process (under torchrun, rank 0 only); its methods are called in that process only.
    """

    def reference_evaluated(self, metrics: Mapping[str, Any], selection: Mapping[str, Any] | None) -> None:
        """The reference model (step 0, the untrained policy) has been evaluated, before training starts; not
        called for a trial that evaluates no reference (one that trains a reward model).

        :param metrics: its metrics on the reported (test) prompts (``record["reference"]["metrics"]``).
        :param selection: its metrics on the selection prompts; None when selection is off.
        """

    def checkpoint_evaluated(
        self,
        step: int,
        metrics: Mapping[str, Any],
        selection: Mapping[str, Any] | None,
        planned_steps: int | None,
    ) -> None:
        """A checkpoint of the trained model has been evaluated. Raise :class:`harness.errors.TrialPruned` to
        stop the trial (recorded as pruned at this step, after every other plugin has seen the checkpoint).

        :param step: the optimizer step of the checkpoint (>= 1).
        :param metrics: its metrics on the reported (test) prompts.
        :param selection: its metrics on the selection prompts (what a decision about the trial should use);
            None when selection is off.
        :param planned_steps: the optimizer steps the trial will take in all
            (None when the method did not say).
        """

    def trial_end(self, record: TrialRecord) -> None:
        """The trial ended (completed, failed, pruned or interrupted) and its record has been written: release
        what the observer holds (close a run, stop a thread). Called exactly once, even when the trial failed.

        :param record: the trial record (:class:`harness.records.TrialRecord`).
        """
