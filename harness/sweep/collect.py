"""The records of a leaderboard that involves Optuna studies: from this machine's disk, else from the storage.

``python -m harness.leaderboard`` takes sweep directories, record files and study storages (a journal file or
a URL). Each study found (a ``study.json`` in a given directory, or every study of a given storage,
``--study`` picking one) contributes every trial's record: the ``trial.json`` in its directory when that
directory is on this machine, else the copy kept in the study's storage when the trial finished
(:mod:`harness.sweep.stored`), so a shared study's report is complete from any machine, with the host and
directory of each trial whose checkpoints are elsewhere. A finished trial with no record in either place is
named in a warning and in the report: the counts of the study and of the records never disagree silently.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from harness.records import RECORD_NAME, RecordError, TrialRecord, load_records, read_record
from harness.sweep import results
from harness.sweep import study as st
from harness.sweep.storage import redact, remember, scrub
from harness.sweep.stored import decode_record, stored_settings

if TYPE_CHECKING:
    import optuna


@dataclass
class Collected:
    """What a leaderboard reads: the records, the studies' settings (for the objective), each opened study's
    summary (:func:`harness.sweep.results.study_summary` plus where its records came from) and importances."""

    records: list[TrialRecord] = field(default_factory=list)
    settings: list[st.StudySettings] = field(default_factory=list)
    summaries: list[dict[str, Any]] = field(default_factory=list)
    importances: list[pd.DataFrame] = field(default_factory=list)


def collect(paths: Iterable[Path | str], study_name: str | None = None) -> Collected:
    """The records under ``paths`` (directories, record files, storages) and those of the studies they involve
    (see the module docstring); unreadable studies are skipped with a warning."""
    paths = [str(p) for p in paths]
    dirs = [Path(p) for p in paths if not results.is_storage(p)]
    found = Collected(records=list(load_records(dirs)))
    opened: dict[tuple[str, str], tuple[Any, st.StudySettings]] = {}
    for settings in results.find_study_settings(dirs):
        found.settings.append(settings)
        try:
            opened.setdefault(_key(settings), (results.open_study(settings), settings))
        except Exception as exc:  # a moved or unreachable storage must not cost the rest of the report
            warnings.warn(
                f"cannot open Optuna study {settings.study_name!r} ({redact(settings.storage)}): "
                f"{scrub(str(exc), settings.storage)}",
                stacklevel=2,
            )
    for storage in (p for p in paths if results.is_storage(p)):
        for study, settings in studies_of_storage(storage, study_name):
            found.settings.append(settings)
            opened.setdefault(_key(settings), (study, settings))
    seen = {str(r.path.resolve().parent) for r in found.records if r.path is not None}
    for study, settings in opened.values():
        summary = results.study_summary(study, settings)
        summary.update(add_study_records(study, found.records, seen))
        if summary["missing"]:
            warnings.warn(missing_text(summary), stacklevel=2)
        found.summaries.append(summary)
        found.importances.append(results.param_importances(study))
    return found


def _key(settings: st.StudySettings) -> tuple[str, str]:
    """A study's identity: its name and its storage (a journal's absolute path,
    a URL without its password)."""
    storage = settings.storage
    return settings.study_name, redact(storage) if "://" in storage else str(Path(storage).resolve())


def studies_of_storage(storage: str, study_name: str | None = None) -> list[tuple[Any, st.StudySettings]]:
    """Every study of ``storage`` (or ``study_name``), each with its settings: those kept on the study, else
    the ``study.json`` beside its trials on this machine, else what the study itself says (name, directions,
    metric names); the storage is the one given here, password hidden."""
    import optuna

    shown = remember(storage)
    backend = st.open_storage(storage)
    names = [study_name] if study_name else [s.study_name for s in optuna.get_all_study_summaries(backend)]
    studies = []
    for name in names:
        try:
            study = optuna.load_study(study_name=name, storage=backend)
        except KeyError:
            from harness.errors import ConfigError

            raise ConfigError(
                f"no study {name!r} in {redact(storage)}; omit --study to report every study it holds."
            ) from None
        settings = (
            stored_settings(study)
            or _settings_beside_trials(study)
            or st.StudySettings(
                study_name=name,
                storage=shown,
                objectives=list(study.metric_names or ["auto"]),
                directions=[d.name.lower() for d in study.directions],
            )
        )
        settings.storage = redact(storage)
        studies.append((study, settings))
    return studies


def _settings_beside_trials(study: optuna.Study) -> st.StudySettings | None:
    dirs = {
        Path(str(t.user_attrs[st.ATTR_DIR])).parent
        for t in study.get_trials(deepcopy=False)
        if st.ATTR_DIR in t.user_attrs
    }
    return next(iter(results.find_study_settings(dirs)), None)


def add_study_records(study: optuna.Study, records: list[TrialRecord], seen: set[str]) -> dict[str, Any]:
    """Append to ``records`` the record of each of ``study``'s trials not yet in them (``seen``: their trial
    directories): from its directory on this machine, else from the study's storage. Returns where they came
    from: ``remote`` (trials read from the storage: trial, host, directory), ``missing`` (finished trials with
    no record anywhere), ``finished`` (finished trials with a directory) and ``records`` (how many of them
    have one)."""
    remote: list[dict[str, Any]] = []
    missing: list[dict[str, Any]] = []
    finished: set[str] = set()
    for t in study.get_trials(deepcopy=False):
        if st.ATTR_SURPLUS in t.user_attrs or st.ATTR_DIR not in t.user_attrs:
            continue
        directory = str(t.user_attrs[st.ATTR_DIR])
        if t.state.is_finished():
            finished.add(directory)
        if directory in seen:
            continue
        record, stored = _local_record(Path(directory)), False
        if record is None:
            record, stored = decode_record(t.system_attrs), True
        if record is None:
            if t.state.is_finished():
                missing.append(_where(t, directory, None))
            continue
        record.path = Path(directory) / RECORD_NAME
        records.append(record)
        seen.add(directory)
        if stored:
            remote.append(_where(t, directory, record))
    return {
        "remote": remote,
        "missing": missing,
        "finished": len(finished),
        "records": len(finished) - len({m["dir"] for m in missing}),
    }


def _local_record(directory: Path) -> TrialRecord | None:
    path = directory / RECORD_NAME
    if not path.is_file():
        return None
    try:
        return read_record(path)
    except RecordError as exc:
        warnings.warn(f"skipping {exc}", stacklevel=3)
        return None


def _where(trial: optuna.trial.FrozenTrial, directory: str, record: TrialRecord | None) -> dict[str, Any]:
    """Where a trial ran: its number, id, host and directory (the checkpoints are under it)."""
    host = record.host.hostname if record is not None and record.host is not None else None
    for key in (st.ATTR_RUNNER, st.ATTR_OWNER):
        host = host or (trial.user_attrs.get(key) or {}).get("host")
    trial_id = (
        record.trial_id if record is not None else None
    ) or f"{Path(directory).parent.name}/{Path(directory).name}"
    return {
        "number": trial.number,
        "trial": str(trial_id),
        "host": host or "unknown host",
        "dir": directory,
        "lost": st.ATTR_LOST in trial.user_attrs,
    }


def missing_text(summary: dict[str, Any]) -> str:
    """One line on a study's finished trials whose record is neither on this machine nor in its storage."""
    missing = summary["missing"]
    named = ", ".join(
        f"trial {m['number']} ({m['host']}:{m['dir']}{', lost before it wrote one' if m['lost'] else ''})"
        for m in missing[:10]
    )
    more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
    return (
        f"Optuna study {summary['study']!r} ({summary['storage']}) has {summary['finished']} finished trials "
        f"but only {summary['records']} records were found (on this machine or in the study's storage); left "
        f"out: {named}{more}. Copy their directories here, or run the leaderboard where they are."
    )
