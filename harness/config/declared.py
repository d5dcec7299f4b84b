"""The core settings, declared once: each key's default, type, check and one-line help.

Plugins declare their settings with :class:`~harness.plugin.settings.Option`; the harness declares its own the
same way, as :class:`~harness.config.setting.Setting` (an ``Option`` with the sentence its error ends with,
and a check of its own where bounds, choices and types cannot say it), grouped by config node in
:class:`SettingsGroup`\\ s: :func:`core_settings` lists them all (the top-level keys, ``train``, ``eval`` with
``eval.selection``, ``tracking``, ``leaderboard``, ``model`` with ``model.bnb_4bit`` and ``model.lora``, and
the Optuna sweeper's ``hydra.sweeper``), for validation and for the generated reference. The declarations live
in :mod:`~harness.config.settings_run`, :mod:`~harness.config.settings_eval`,
:mod:`~harness.config.settings_model` and :mod:`~harness.config.settings_sweeper`.

Why the layer is this thin: Hydra holds the defaults. :mod:`~harness.config.store` builds ConfigStore nodes
from :meth:`SettingsGroup.defaults` (``core_settings``, ``eval/default``, ``model/base``,
``hydra/sweeper/optuna``), so the composed config, overrides, presets and sweeps are Hydra's own. The nodes
are plain mappings, not structured configs (typed dataclasses), on purpose: OmegaConf would convert what a
user writes (``leaderboard.kl_budget=5`` would become ``5.0``), which changes the config hash that resumes a
multirun (:mod:`harness.sweep.resume`) and the config a trial records; its type errors are several lines and
name no fix; and it has no bounds, choices or "a number or null". So the declarations check the values
(:meth:`SettingsGroup.check`, through ``Option.problem``) and Hydra only stores them.
"""

from __future__ import annotations

from harness.config import settings_eval, settings_model, settings_run, settings_sweeper
from harness.config.setting import Setting, SettingsGroup
from harness.plugin.settings import Option

__all__ = ["Setting", "SettingsGroup", "core_settings", "declared"]


def core_settings() -> list[SettingsGroup]:
    """Every core setting's declaration, by config node: the top-level keys, ``train``, ``eval`` (with
    ``eval.selection``), ``tracking``, ``leaderboard``, ``model`` (with ``model.bnb_4bit`` and ``model.lora``)
    and ``hydra.sweeper`` (the Optuna sweeper's, ``hydra/sweeper=optuna``)."""
    return [
        settings_run.TOP_LEVEL,
        settings_run.TRAIN,
        settings_eval.EVAL,
        settings_run.TRACKING,
        settings_run.LEADERBOARD,
        settings_model.MODEL,
        settings_sweeper.SWEEPER,
    ]


def declared(key: str) -> Option:
    """The declaration of the core setting at the dotted ``key`` (``"eval.selection.seed"``).

    :raises KeyError: no core setting has that key."""
    for group in core_settings():
        for full, option in group.walk():
            if full == key:
                return option
    raise KeyError(key)
