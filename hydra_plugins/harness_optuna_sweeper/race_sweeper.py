"""The Hydra Sweeper class for ``hydra/sweeper=race``
(its config node: :mod:`harness.config.settings_race`)."""

from __future__ import annotations

from typing import Any

from hydra.plugins.sweeper import Sweeper
from omegaconf import DictConfig


class HarnessRaceSweeper(Sweeper):
    """The racing study, launched by Hydra; see :class:`harness.race.sweeper.RaceSweep`."""

    def __init__(self, **kwargs: Any) -> None:
        from harness.race.sweeper import RaceSweep

        self.sweep_impl = RaceSweep(**kwargs)

    def setup(self, *, hydra_context: Any, task_function: Any, config: DictConfig) -> None:
        """Hand Hydra's context, task and config to the race."""
        self.sweep_impl.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> Any:
        """Run the race; ``arguments`` are the command line's task overrides."""
        return self.sweep_impl.sweep(arguments)
