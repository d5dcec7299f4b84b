"""Composing and validating every job of a run before Hydra launches any of them.

Hydra composes a multirun's job configs one at a time, as it launches them, so a bad value in the last job
would surface only after the first jobs trained. Here the sweep is expanded the way Hydra's basic sweeper
expands it, each job's config is composed with Hydra's compose API, and each is validated. Hydra's own
composition errors are turned into one line naming the problem and the choices.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from harness.config.store import BASE_METHOD_CONFIG, BASE_MODEL_CONFIG
from harness.config.sweep_checks import check_repeated_overrides, knob_meaning_warning, method_knobs
from harness.errors import ConfigError, UnknownNameError
from harness.records.redaction import redact

if TYPE_CHECKING:
    from hydra.core.config_loader import ConfigLoader

_GROUPS_NOT_VALIDATED = ("hydra",)
_BASES = {"method": BASE_METHOD_CONFIG, "model": BASE_MODEL_CONFIG}
# Override prefixes whose keys are free-form (validated by the harness instead of Hydra's struct mode).
OPEN_PREFIXES = ("method.trl.", "toyworld.spec.")


def open_free_form(argv: Sequence[str]) -> list[str]:
    """Rewrite ``method.trl.x=v`` to ``++method.trl.x=v`` so any TRL field can be set without ``+``.

    Hydra's struct mode rejects keys a config file does not list; TRL configs have ~150 fields, so the
    harness validates these keys itself against the method's config class (see harness.config.validation).
    """
    return [f"++{a}" if a.startswith(OPEN_PREFIXES) and "=" in a else a for a in argv]


def _parse(overrides: Sequence[str]) -> list[Any]:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    try:
        return OverridesParser.create().parse_overrides(list(overrides))
    except OverrideParseException as exc:
        raise ConfigError(f"Cannot parse the command line: {str(exc).splitlines()[0]}") from None


def expand_jobs(overrides: Sequence[str], multirun: bool) -> list[list[str]]:
    """The override list of each job: one job for a run; the basic sweeper's cartesian product for -m."""
    every = _parse(overrides)
    check_repeated_overrides(every)
    parsed = [o for o in every if not o.key_or_group.startswith(_GROUPS_NOT_VALIDATED)]
    if any(o.key_or_group == "hydra/sweeper" for o in every):
        # Another sweeper (e.g. Optuna) decides the jobs; validate the fixed (non-sweep) overrides only.
        parsed = [o for o in parsed if not o.is_sweep_override()]
        multirun = False
    if not multirun:
        if any(o.is_sweep_override() for o in parsed):
            raise ConfigError(
                "A sweep (a,b or range/choice) needs multirun: add -m, e.g. python -m harness -m "
                + " ".join(o.input_line for o in parsed if o.is_sweep_override())
            )
        return [[o.input_line for o in parsed]]
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    batches = BasicSweeper.split_arguments(parsed, None)
    return [job for batch in batches for job in batch]


def _check_groups(loader: ConfigLoader, overrides: list[Any]) -> None:
    for o in overrides:
        if "/" in o.key_or_group or o.package is not None:
            continue
        options = loader.get_group_options(o.key_or_group)
        if not options or o.is_delete():
            continue
        base = _BASES.get(o.key_or_group)  # method/base, model/base: what every option extends, not an option
        options = [name for name in options if name != base]
        value = o.value()
        if isinstance(value, str) and value not in options:
            raise UnknownNameError(o.key_or_group, value, options)


def _check_keys(base: DictConfig, overrides: list[Any]) -> None:
    for o in overrides:
        if o.is_add() or o.is_force_add() or o.is_delete() or o.key_or_group.startswith("hydra"):
            continue
        key = o.key_or_group
        parent_key, _, leaf = key.rpartition(".")
        parent = OmegaConf.select(base, parent_key) if parent_key else base
        if not isinstance(parent, DictConfig) or leaf not in list(parent.keys()):  # `in` skips ??? values
            siblings = (
                [f"{parent_key}.{k}" if parent_key else str(k) for k in parent]
                if isinstance(parent, DictConfig)
                else []
            )
            raise UnknownNameError("option", key, siblings, hint=f"To add a new key use +{key}=<value>.")


def plugin_modules(overrides: Sequence[str]) -> list[str]:
    """Module names given on the command line as ``plugins=[a.b,c.d]`` (needed before composing)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    modules: list[str] = []
    for o in OverridesParser.create().parse_overrides(
        [a for a in overrides if a.lstrip("+~").startswith("plugins=")]
    ):
        value = o.value()
        modules.extend(str(v) for v in (value if isinstance(value, list) else [value]) if v)
    return modules


def compose_job(job: list[str], flags: dict[str, str]) -> DictConfig:
    """Compose one job's config with Hydra's compose API; Hydra's errors become one-line ConfigErrors.

    The plugins' config nodes (every method, the evaluators' options) are registered first."""
    from hydra import compose, initialize_config_dir, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from harness.config.store import CONFIG_MODULE, CONFIG_NAME, register_configs
    from harness.plugin.manager import get_plugin_manager

    register_configs(get_plugin_manager(plugin_modules(job)))
    name = flags.get("--config-name") or flags.get("-cn") or CONFIG_NAME
    config_dir = flags.get("--config-dir") or flags.get("-cd")
    init = (
        initialize_config_dir(config_dir=config_dir, version_base="1.3")
        if config_dir
        else initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3")
    )
    job = open_free_form(job)
    with init:
        parsed = _parse(job)
        loader = GlobalHydra.instance().config_loader()
        _check_groups(loader, parsed)
        groups_only = [o.input_line for o in parsed if loader.get_group_options(o.key_or_group)]
        try:
            try:
                return compose(name, overrides=job)
            except (HydraException, OmegaConfBaseException):  # say which key is unknown, with its siblings
                _check_keys(compose(name, overrides=groups_only), parsed)
                raise
        except (HydraException, OmegaConfBaseException) as exc:
            first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
            raise ConfigError(f"Invalid config ({' '.join(job) or 'defaults'}): {first}") from None


def validate_jobs(overrides: Sequence[str], flags: dict[str, str], multirun: bool) -> int:
    """Compose and validate the config of every job (:func:`validated_jobs`); returns the number of jobs."""
    return len(validated_jobs(overrides, flags, multirun))


def validated_jobs(overrides: Sequence[str], flags: dict[str, str], multirun: bool) -> list[dict[str, Any]]:
    """Compose and validate the config of every job (and a multirun's ``sweep_name``); returns the jobs'
    resolved configs, in Hydra's job order. Prints one warning line when the grid sets a ``method.<knob>``
    that means different things to its methods (:func:`harness.config.sweep_checks.knob_meaning_warning`).
    Raises UserError."""
    from harness.config.settings_run import TOP_LEVEL
    from harness.config.validation import validate_trial_config
    from harness.plugin.manager import get_plugin_manager

    jobs = expand_jobs(overrides, multirun)
    knobs, configs = [], []
    for job in jobs:
        cfg = compose_job(job, flags)
        pm = get_plugin_manager(list(cfg.get("plugins") or []))
        validate_trial_config(cfg, pm)
        if multirun:
            TOP_LEVEL.check({"sweep_name": cfg.sweep_name})
        knobs.append((str(cfg.method.name), method_knobs(job)))
        configs.append(OmegaConf.to_container(cfg, resolve=True))
    warning = knob_meaning_warning(knobs, pm) if len(jobs) > 1 else None
    if warning:
        print(f"harness: warning: {redact(str(warning))}", file=sys.stderr, flush=True)
    return configs
