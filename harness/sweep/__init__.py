"""Optuna sweeps launched by Hydra: the search space, the study, the sweep loop and the in-trial reporter.

Optuna decides which trials to run (``study.ask`` / ``study.tell``); Hydra's launcher runs them, one process
per trial for launchers that fork. The Hydra plugin in ``hydra_plugins.harness_optuna_sweeper`` only delegates
to :class:`harness.sweep.sweeper.OptunaSweep`, so the logic here is testable without Hydra's plugin scan.
"""
