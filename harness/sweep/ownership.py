"""A sweep directory belongs to one sweep, and a trial directory is clean before a trial writes into it.

One rule for every sweeper and launcher: a grid multirun (:func:`prepare_grid`) and an
Optuna study (:mod:`harness.sweep.sweeper`) both claim their directory before any compute. An Optuna study's
directory holds its ``study.json`` (:data:`harness.sweep.study.SETTINGS_NAME`); a grid's holds trial records
and no ``study.json``. So:

- a grid refuses a directory that an Optuna study owns;
- an Optuna study refuses a directory whose completed trials are a grid's, or that another study owns (another
  name or storage); another worker of the *same* study is welcome;
- ``--force`` (``rerun=all``) takes the directory over and replaces what is there;
- the claim is held while the sweep runs: exclusively by a grid, shared by the workers of one study
  (:func:`harness.sweep.resume.claim_sweep`), so a grid and a study never run in one directory at once.

Each refusal is one line naming the other sweep and the fix, before any compute.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.config.sweep_checks import check_sweep_name
from harness.errors import ConfigError
from harness.sweep.resume import RERUN_CHOICES, check_sweep_dir, claim_sweep, completed_record
from harness.sweep.study import SETTINGS_NAME

#: What a trial writes into its directory besides its record: its checkpoints and the TRL trainer's output.
TRIAL_OUTPUTS = ("checkpoints", "trainer")

_FIX = "use another sweep_name=..., or add --force to take the directory over and replace its results"


def _study_of(sweep_dir: Path) -> dict[str, str] | None:
    """The study that owns ``sweep_dir`` (its ``study.json``: name and storage), or None."""
    path = sweep_dir / SETTINGS_NAME
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {"study_name": "?", "storage": "?"}
    return {"study_name": str(data.get("study_name")), "storage": str(data.get("storage"))}


def _completed_jobs(sweep_dir: Path) -> list[str]:
    if not sweep_dir.is_dir():
        return []
    jobs = [p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()]
    return sorted((p.name for p in jobs if completed_record(p) is not None), key=int)


def claim_for_grid(sweep_dir: Path, rerun: str) -> None:
    """Claim ``sweep_dir`` for a grid multirun: refused when an Optuna study owns it (unless ``rerun=all``),
    then held exclusively.

    :raises ConfigError: an Optuna study owns the directory. :raises Locked: another sweep runs there."""
    study = _study_of(sweep_dir)
    if study is not None and rerun != "all":
        raise ConfigError(
            f"{sweep_dir} belongs to the Optuna study {study['study_name']!r} (storage {study['storage']}); "
            f"a grid multirun would replace its trials: {_FIX}."
        )
    claim_sweep(sweep_dir)


def claim_for_study(sweep_dir: Path, study_name: str, storage: str, rerun: str) -> None:
    """Claim ``sweep_dir`` for a worker of the Optuna study ``study_name`` in ``storage``: refused when a
    grid's completed trials are there or another study owns it (unless ``rerun=all``), then held shared with
    the study's other workers.

    :raises ConfigError: another sweep owns the directory. :raises Locked: a grid runs there."""
    if rerun != "all":
        owner = _study_of(sweep_dir)
        if owner is None:
            done = _completed_jobs(sweep_dir)
            if done:
                listed = ", ".join(done[:5]) + (" ..." if len(done) > 5 else "")
                raise ConfigError(
                    f"{sweep_dir} holds {len(done)} completed trials of a grid multirun (jobs {listed}); "
                    f"the Optuna study {study_name!r} would replace them: {_FIX}."
                )
        elif (owner["study_name"], owner["storage"]) != (study_name, storage):
            raise ConfigError(
                f"{sweep_dir} belongs to the Optuna study {owner['study_name']!r} (storage "
                f"{owner['storage']}), not {study_name!r} (storage {storage}): {_FIX}."
            )
    claim_sweep(sweep_dir, shared=True)


def clean_trial_dir(trial_dir: Path) -> list[str]:
    """Remove what an earlier run of this job wrote into ``trial_dir`` (:data:`TRIAL_OUTPUTS`: its
    checkpoints and trainer state), so that a trial never writes beside another run's files; the record
    (whose history the new record keeps), Hydra's files and logs stay. Returns the names removed. Call it
    while holding the trial's lock."""
    removed = []
    for name in TRIAL_OUTPUTS:
        entry = trial_dir / name
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        elif entry.exists() or entry.is_symlink():
            entry.unlink()
        else:
            continue
        removed.append(name)
    return removed


def _given(overrides: Sequence[str], key: str) -> str | None:
    return next((o.split("=", 1)[1] for o in overrides if o.lstrip("+~").split("=", 1)[0] == key), None)


def prepare_grid(configs: Sequence[Mapping[str, Any]], overrides: Sequence[str], rerun: str) -> Path | None:
    """Before a grid multirun whose directory the command names (``sweep_name=`` or ``hydra.sweep.dir=``):
    check it (:func:`harness.sweep.resume.check_sweep_dir`), claim it (:func:`claim_for_grid`) for this
    process, and say how many jobs will be skipped; returns the directory (None when it is a fresh timestamped
    one, or not known before Hydra resolves it).

    :raises ConfigError: a completed record of another config, or an Optuna study, is in the way.
    :raises Locked: another run is live.
    """
    if rerun not in RERUN_CHOICES:
        raise ConfigError(
            f"rerun={rerun!r} is invalid; use rerun=missing (skip completed trials) or rerun=all."
        )
    given_dir, name = _given(overrides, "hydra.sweep.dir"), _given(overrides, "sweep_name")
    if given_dir is not None and "${" not in given_dir:
        sweep_dir = Path(given_dir)
    elif given_dir is None and name is not None:
        sweep_dir = Path("multirun") / check_sweep_name(name)
    else:
        return None
    if _given(overrides, "hydra.sweep.subdir") is None:
        done = check_sweep_dir(sweep_dir, configs, rerun)
        if done:
            print(
                f"[harness] {sweep_dir}: {done} of {len(configs)} trials completed earlier with the "
                "same config are skipped (--force runs them again)",
                flush=True,
            )
    claim_for_grid(sweep_dir, rerun)
    return sweep_dir
