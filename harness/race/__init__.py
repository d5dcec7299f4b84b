"""The racing study: candidates (a method at one setting) trained seed by seed, the ones behind dropped as
soon as a paired test says so, until the verdict is decided or the budget spent.

- :mod:`harness.race.rules`: the rules (F-race with paired two-way t-tests), a pure function of the evidence.
- :mod:`harness.race.evidence`: the evidence (selection values by seed and prompt) from trial records.
- :mod:`harness.race.sweeper`: ``hydra/sweeper=race``, the rules driving an Optuna study through Hydra.
"""
