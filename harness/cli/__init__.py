"""The command line: ``python -m harness`` (:mod:`harness.cli.app`), the Hydra callback that writes the
leaderboard when a multirun ends (:mod:`harness.cli.callbacks`) and the per-trial summary it prints
(:mod:`harness.cli.summary`). Nothing below this package imports it."""
