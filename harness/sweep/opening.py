"""Opening a sweep's Optuna study: created, or loaded to resume it, with its sampler and pruner.

The sampler is built from its Hydra config (``hydra/sweeper/sampler=<name>``): the grid sampler gets the
sweep's grid, and a seeded sampler of a resumed study has its seed offset by the trials already there, so that
it does not replay the first run's draws. Several workers may create the study at the same moment
(:func:`harness.sweep.storage.retry_schema_race`). Before anything is written, a storage URL's password is
taken out of the config Hydra writes (:func:`hide_password`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig

from harness.errors import ConfigError
from harness.sweep import study as st
from harness.sweep.reporter import build_pruner
from harness.sweep.space import SearchSpace
from harness.sweep.storage import redact, remember, retry_schema_race

STORAGE_KEY = "hydra.sweeper.storage"


def quote_override(text: str) -> str:
    """``text`` as a quoted value of a Hydra override (``key='...'``)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def open_study(settings: st.StudySettings, space: SearchSpace, sampler_cfg: Mapping[str, Any] | None) -> Any:
    """Create the study, or load it when it exists (resume); its directions must match. The settings are kept
    on it (:func:`harness.sweep.stored.store_settings`)."""
    from harness.sweep.stored import store_settings

    study = retry_schema_race(lambda: create_study(settings, space, sampler_cfg))
    have = [d.name.lower() for d in study.directions]
    if have != settings.directions:
        raise ConfigError(
            f"Study {settings.study_name!r} in {settings.storage} optimises {have}, not "
            f"{settings.directions}; use another sweep_name (or hydra.sweeper.study_name)."
        )
    study.set_metric_names(settings.objectives)
    store_settings(study, settings)
    return study


def create_study(
    settings: st.StudySettings, space: SearchSpace, sampler_cfg: Mapping[str, Any] | None
) -> Any:
    """``optuna.create_study(load_if_exists=True)`` with the configured sampler (see the module docstring) and
    the settings' pruner."""
    import optuna
    from hydra.utils import instantiate

    storage = st.open_storage(settings.storage)
    sampler_cfg = dict(sampler_cfg or {"_target_": "optuna.samplers.TPESampler"})
    if sampler_cfg.get("_target_", "").endswith("GridSampler"):
        sampler_cfg["search_space"] = space.grid()
    if sampler_cfg.get("seed") is not None and settings.study_name in optuna.get_all_study_names(storage):
        # A resumed study with a seeded sampler would replay the first run's random draws (duplicate
        # parameters); offset the seed by the trials already there, keeping a fresh run reproducible.
        done = len(
            optuna.load_study(study_name=settings.study_name, storage=storage).get_trials(deepcopy=False)
        )
        sampler_cfg["seed"] = int(sampler_cfg["seed"]) + done
    sampler = instantiate(sampler_cfg)
    return optuna.create_study(
        study_name=settings.study_name,
        storage=storage,
        sampler=sampler,
        pruner=build_pruner(settings.pruner),
        directions=settings.directions,
        load_if_exists=True,
    )


def hide_password(config: DictConfig, storage: str | None) -> None:
    """Keep a storage URL's password in this process (and its environment, for the trials) only: the config
    Hydra writes (``multirun.yaml``, each trial's ``.hydra/``, composed from the command line's Hydra
    overrides) gets the redacted URL."""
    from omegaconf import open_dict, read_write

    if not storage or remember(storage) == storage:
        return
    shown = redact(storage)
    hydra_cfg = config.hydra
    with read_write(hydra_cfg), open_dict(hydra_cfg):
        hydra_cfg.sweeper.storage = shown
        hydra_cfg.overrides.hydra = [
            f"{o[: len(o) - len(o.lstrip('+~'))]}{STORAGE_KEY}={quote_override(shown)}"
            if o.lstrip("+~").split("=", 1)[0] == STORAGE_KEY
            else o
            for o in hydra_cfg.overrides.hydra
        ]
