"""The command line: ``python -m harness [overrides]`` runs one trial, ``-m`` a Hydra multirun.

Hydra composes the config and launches the jobs. Before handing over to Hydra, this module does what Hydra
cannot do for us: it loads the plugins (methods registered by plugins become ``method=<name>`` options),
opens ``method.trl.*`` to any field of the method's TRL config, and composes and validates the config of
every job of the sweep, so that a typo in job 12 stops the run with one line before job 1 trains.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from harness.cli.task import SWEEP_JOBS_ENV
from harness.config.store import CONFIG_MODULE, CONFIG_NAME
from harness.errors import UserError
from harness.records.redaction import redact

if TYPE_CHECKING:
    from omegaconf import DictConfig

# Nothing reaches for the network unless the user asks (export HF_HUB_OFFLINE=0 to allow downloads).
# Set before transformers/datasets are imported: they read these at import time.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# Hydra flags after which the user inspects rather than runs: pass through without validation.
_INSPECT_FLAGS = {
    "--help",
    "-h",
    "--hydra-help",
    "--info",
    "-i",
    "--cfg",
    "-c",
    "--shell-completion",
    "--resolve",
    "--experimental-rerun",
    "--config-path",
    "-cp",
}
_FLAGS_WITH_VALUE = {"--config-name", "-cn", "--config-dir", "-cd", "--package", "-p"}


def split_cli(argv: Sequence[str]) -> tuple[list[str], dict[str, str], bool, bool]:
    """Split Hydra's argv into (overrides, flags with values, multirun?, inspect-only?)."""
    overrides: list[str] = []
    flags: dict[str, str] = {}
    multirun = inspect = False
    it = iter(argv)
    for arg in it:
        if arg in ("-m", "--multirun"):
            multirun = True
        elif arg in _FLAGS_WITH_VALUE:
            flags[arg] = next(it, "")
        elif arg.split("=", 1)[0] in _FLAGS_WITH_VALUE:
            key, value = arg.split("=", 1)
            flags[key] = value
        elif arg.startswith("-"):
            inspect = inspect or arg.split("=", 1)[0] in _INSPECT_FLAGS
        else:
            overrides.append(arg)
    return overrides, flags, multirun, inspect


def name_optuna_sweep(args: list[str], overrides: Sequence[str], multirun: bool) -> list[str]:
    """``args`` with a stable ``sweep_name`` added for an Optuna sweep that has none, so that running the same
    command again resumes its study (the default name is a timestamp)."""
    from harness.sweep.naming import default_sweep_name, uses_optuna_sweeper

    if (
        not multirun
        or not uses_optuna_sweeper(overrides)
        or any(o.startswith("sweep_name=") for o in overrides)
    ):
        return args
    return [*args, f"sweep_name={default_sweep_name(overrides)}"]


def join_trial_processes(args: list[str], overrides: Sequence[str], multirun: bool) -> list[str]:
    """Under a distributed launcher (torchrun, accelerate launch): join the trial's process group and return
    ``args`` with the main process's run directory (``hydra.run.dir``, unless given), so that every process
    works in one directory, and, for the other processes, Hydra's own output (``.hydra/``) left to the main
    one. A multirun is refused: each trial is one distributed launch (:mod:`harness.config.distributed`)."""
    import time

    from harness.config import distributed
    from harness.errors import ConfigError

    if not distributed.launched():
        return args
    if multirun:
        raise ConfigError(
            "-m (a sweep) under torchrun/accelerate launch is not supported: launch one trial per "
            "torchrun command, or sweep with one process per trial (e.g. hydra/launcher=submitit_slurm)."
        )
    distributed.join()
    if not any(o.startswith("hydra.run.dir=") for o in overrides):
        run_dir = distributed.broadcast(
            f"outputs/{time.strftime('%Y-%m-%d_%H-%M-%S')}"
        )  # Hydra's default pattern
        args = [*args, f"hydra.run.dir={run_dir}"]
    return args if distributed.is_main() else [*args, "hydra.output_subdir=null"]


def with_slurm_resources(
    args: list[str], overrides: Sequence[str], configs: Sequence[dict[str, Any]]
) -> list[str]:
    """``args`` with the resources each trial of a ``hydra/launcher=submitit_slurm`` sweep needs and the
    command left unset (one GPU, cores, host memory from the largest trial's estimate:
    :mod:`harness.config.footprint`), and one line saying what each job asks for; other launchers: ``args``
    unchanged."""
    from omegaconf import OmegaConf

    from harness.config.footprint import slurm_resources, trial_footprint
    from harness.plugin.manager import get_plugin_manager

    if "hydra/launcher=submitit_slurm" not in overrides or not configs:
        return args
    given = {
        o.split("=", 1)[0].removeprefix("hydra.launcher."): o.split("=", 1)[1]
        for o in overrides
        if o.startswith("hydra.launcher.") and "=" in o
    }
    footprints = {}
    for config in configs:
        cfg = OmegaConf.create(config)
        fp = trial_footprint(cfg, get_plugin_manager(list(cfg.get("plugins") or [])))
        if fp.method not in footprints or (fp.gpu_gib or 0) > (footprints[fp.method].gpu_gib or 0):
            footprints[fp.method] = fp
    added = slurm_resources(list(footprints.values()), given)
    asks = ", ".join(f"{key}={value}" for key, value in added.items()) or "as given"
    print(
        f"harness: SLURM: each trial asks for {asks} (set hydra.launcher.<key> to change; timeout_min too); "
        f"estimated {'; '.join(fp.text() for fp in footprints.values())}",
        flush=True,
    )
    return [*args, *(f"hydra.launcher.{key}={value}" for key, value in added.items())]


def clean_caches(configs: Sequence[DictConfig]) -> None:
    """Remove what killed writers left in the runs' cache directories (:func:`harness.cache.clean_stale`:
    temporaries whose writer has stopped; a live writer's are kept), before any trial starts."""
    from harness.cache import clean_stale
    from harness.config.validation import cache_directories

    for path in sorted({p for cfg in configs for p in cache_directories(cfg).values()}):
        clean_stale(path)


def prepare(args: list[str]) -> list[str]:
    """Before Hydra starts: load the plugins and register their config nodes, then, unless the command only
    inspects (``--cfg``, ``--help``, ...), compose and validate every job of the run, and for a grid multirun
    check and claim its directory (:func:`harness.sweep.ownership.prepare_grid`), and clean the caches of
    half-built entries (:func:`clean_caches`); returns the arguments Hydra
    gets (a stable Optuna sweep name, a distributed trial's run directory, SLURM resources added). Raises
    UserError."""
    from harness.config.compose import plugin_modules
    from harness.config.store import register_configs
    from harness.plugin.manager import get_plugin_manager

    overrides, flags, multirun, inspect = split_cli(args)
    args = name_optuna_sweep(args, overrides, multirun)
    args = join_trial_processes(args, overrides, multirun)
    register_configs(get_plugin_manager(plugin_modules(overrides)))
    if inspect:
        return args
    from harness.config.compose import validated_jobs
    from harness.sweep.naming import uses_optuna_sweeper
    from harness.verbosity import set_library_verbosity

    set_library_verbosity("verbose=true" in overrides)  # no library bars while reading data to check it
    configs = validated_jobs(overrides, flags, multirun)
    clean_caches(configs)
    args = with_slurm_resources(args, overrides, configs)
    if multirun and not uses_optuna_sweeper(overrides):  # Optuna resumes its own study
        os.environ[SWEEP_JOBS_ENV] = str(len(configs))  # a parallel launcher's trials split the cores by it
        from harness.sweep.ownership import prepare_grid

        prepare_grid(configs, overrides, str(configs[0].get("rerun", "missing")) if configs else "missing")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python -m harness`` and the ``harness`` script."""
    from harness.config.compose import open_free_form

    args = open_free_form(list(sys.argv[1:] if argv is None else argv))
    if "--force" in args:  # run every trial of a multirun again, completed ones included
        args = [a for a in args if a != "--force"] + ["rerun=all"]
    from harness.verbosity import route_console

    route_console("verbose=true" in args)  # harness warnings in one line; library ones to the log file
    try:
        args = prepare(args)
    except UserError as exc:
        print(f"harness: error: {redact(str(exc))}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print("harness: interrupted before any trial started; nothing was written", file=sys.stderr)
        raise SystemExit(130) from None
    except Exception as exc:  # a bug, not the user's input: one line, the traceback with verbose=true
        if "verbose=true" in args:
            raise
        first = redact((str(exc).splitlines() or [""])[0])
        print(
            f"harness: internal error: {type(exc).__name__}: {first} (a bug in the harness or a plugin; run "
            "again with verbose=true for the traceback, and report it)",
            file=sys.stderr,
        )
        raise SystemExit(1) from None
    sys.argv = [sys.argv[0], *args]
    try:
        _hydra_main()
        from harness.cli.callbacks import exit_status

        status = exit_status()  # a multirun whose report found no value of its objective, ...
        if status:
            raise SystemExit(status)
    except (
        KeyboardInterrupt
    ):  # between trials (a trial's own interruption ends in SystemExit, with its record)
        print(
            "harness: interrupted between trials; every finished trial "
            "is recorded; run the same command again to resume",
            file=sys.stderr,
        )
        raise SystemExit(130) from None


def _task(cfg: DictConfig) -> Any:
    """The Hydra task (:func:`harness.cli.task.run_task`)."""
    from harness.cli.task import run_task

    return run_task(cfg)


def _hydra_main() -> None:
    import hydra
    from hydra.core.plugins import Plugins

    from hydra_plugins.harness_optuna_sweeper.optuna_sweeper import HarnessOptunaSweeper
    from hydra_plugins.harness_optuna_sweeper.race_sweeper import HarnessRaceSweeper

    # Hydra finds plugins by listing the hydra_plugins namespace package, which an editable install (pip
    # install -e) does not expose to listing; registering the sweepers explicitly makes hydra/sweeper=optuna
    # and hydra/sweeper=race work either way.
    Plugins.instance().register(HarnessOptunaSweeper)
    Plugins.instance().register(HarnessRaceSweeper)

    hydra.main(config_path=f"pkg://{CONFIG_MODULE}", config_name=CONFIG_NAME, version_base="1.3")(_task)()
