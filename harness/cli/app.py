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
from pathlib import Path
from typing import Any

from harness.config.store import CONFIG_MODULE, CONFIG_NAME
from harness.errors import UserError

# Nothing reaches for the network unless the user asks (export HF_HUB_OFFLINE=0 to allow downloads).
# Set before transformers/datasets are imported: they read these at import time.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# Hydra flags after which the user inspects rather than runs: pass through without validation.
_INSPECT_FLAGS = {"--help", "-h", "--hydra-help", "--info", "-i", "--cfg", "-c", "--shell-completion",
                  "--resolve", "--experimental-rerun", "--config-path", "-cp"}
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

    if not multirun or not uses_optuna_sweeper(overrides) or any(o.startswith("sweep_name=") for o in overrides):
        return args
    return [*args, f"sweep_name={default_sweep_name(overrides)}"]


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python -m harness`` and the ``harness`` script."""
    from harness.config.compose import open_free_form, plugin_modules

    args = open_free_form(list(sys.argv[1:] if argv is None else argv))
    try:
        from harness.config.store import register_configs
        from harness.plugin.manager import get_plugin_manager

        overrides, flags, multirun, inspect = split_cli(args)
        args = name_optuna_sweep(args, overrides, multirun)
        pm = get_plugin_manager(plugin_modules(overrides))
        register_configs(pm)
        if not inspect:
            from harness.config.compose import validate_jobs
            from harness.verbosity import set_library_verbosity

            set_library_verbosity("verbose=true" in overrides)  # no library bars while reading data to check it
            validate_jobs(overrides, flags, multirun)
    except UserError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    sys.argv = [sys.argv[0], *args]
    _hydra_main()


def _task(cfg: Any) -> Any:
    """The Hydra task: one trial in the job's output directory; returns its objective value."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from harness.cli.summary import trial_summary
    from harness.trial import run_trial

    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    output_dir = Path(hc.runtime.output_dir)
    # The job's directory names it (the job number, or an Optuna sweep's trial number).
    sweep = {"name": Path(hc.sweep.dir).name, "dir": str(hc.sweep.dir), "job": output_dir.name} if multirun else None
    # sweep_name only places the trial; it is not part of how to reproduce it.
    overrides = [o for o in hc.overrides.task if not o.startswith("sweep_name=")]
    record = run_trial(cfg, output_dir, overrides=overrides, sweep=sweep)
    error = record.get("error") or {}
    if not multirun and record["status"] == "failed" and error.get("user_error"):
        # an input problem found when the trial read its data or model, before any training: one line, as at
        # validation (the record keeps the details)
        print(f"harness: error: {error['message']}", file=sys.stderr, flush=True)
        raise SystemExit(2)
    print(trial_summary(record), flush=True)
    if not multirun and record["status"] == "failed":
        raise SystemExit(1)
    return record.get("objective")


def _hydra_main() -> None:
    import hydra
    from hydra.core.plugins import Plugins

    from hydra_plugins.harness_optuna_sweeper.optuna_sweeper import HarnessOptunaSweeper

    # Hydra finds plugins by listing the hydra_plugins namespace package, which an editable install (pip install
    # -e) does not expose to listing; registering the sweeper explicitly makes hydra/sweeper=optuna work either way.
    Plugins.instance().register(HarnessOptunaSweeper)

    hydra.main(config_path=f"pkg://{CONFIG_MODULE}", config_name=CONFIG_NAME, version_base="1.3")(_task)()
