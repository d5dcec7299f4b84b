"""The Hydra Sweeper class for ``hydra/sweeper=optuna`` (its config node:
:mod:`harness.config.settings_sweeper`)."""

from __future__ import annotations

from typing import Any

from hydra.plugins.sweeper import Sweeper
from omegaconf import DictConfig


class HarnessOptunaSweeper(Sweeper):
    """Optuna's ask-and-tell search, launched by Hydra; see :class:`harness.sweep.sweeper.OptunaSweep`."""

    def __init__(self, **kwargs: Any) -> None:
        from harness.sweep.sweeper import OptunaSweep

        self.sweep_impl = OptunaSweep(**kwargs)

    def setup(self, *, hydra_context: Any, task_function: Any, config: DictConfig) -> None:
        """Hand Hydra's context, task and config to the harness sweep."""
        self.sweep_impl.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> Any:
        """Run the study; ``arguments`` are the command line's task overrides."""
        return self.sweep_impl.sweep(arguments)
