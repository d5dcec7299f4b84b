"""One trial: a method trained on one config, its checkpoints evaluated, one record written.

:func:`run_trial` is the entry point (:mod:`harness.trial.runner`); :mod:`harness.trial.context` is what a
method plugin trains with; the other modules are the runner's parts (``setup``: process, data and models;
``trial_evaluation``: the evaluators and the reference; ``recording``: what the record says; models,
checkpoints, the trainer bridge, memory).
Importing a part (``harness.trial.models``) does not import the runner.
"""

from __future__ import annotations

from typing import Any

__all__ = ["TrialRun", "run_trial"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from harness.trial import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'harness.trial' has no attribute {name!r}")
