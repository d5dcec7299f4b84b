"""What an Optuna study adds to a leaderboard: where its trials are, and which parameters mattered.

A sweep directory holds ``study.json`` (:class:`harness.sweep.study.StudySettings`), so a leaderboard built
from the directory finds the study; a study can also be named by its storage (a journal file or a URL), whose
trials point to their directories and keep their records (:mod:`harness.sweep.collect` gathers them).
Importances are Optuna's (fANOVA by default), computed per method over completed trials, because each method
has its own parameters (``dpo.beta`` and ``simpo.beta`` are different dimensions); across methods, only
``method`` and the shared dimensions are compared.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from harness.sweep import study as st

if TYPE_CHECKING:
    import optuna


def find_study_settings(paths: Iterable[Path | str]) -> list[st.StudySettings]:
    """The settings of the studies of the given sweep directories (or ``study.json`` files);
    others are skipped."""
    found = []
    for p in map(Path, paths):
        path = p if p.name == st.SETTINGS_NAME else p / st.SETTINGS_NAME
        if path.is_file():
            try:
                found.append(st.StudySettings.load(path))
            except (OSError, ValueError, TypeError) as exc:
                warnings.warn(f"skipping unreadable {path}: {exc}", stacklevel=2)
    return found


def is_storage(arg: str) -> bool:
    """Whether a command-line argument names an Optuna storage (a URL or a journal file)
    rather than records."""
    return "://" in arg or arg.endswith((".journal", ".log"))


def open_study(settings: st.StudySettings) -> Any:
    """The settings' Optuna study, read-only use."""
    import optuna

    return optuna.load_study(study_name=settings.study_name, storage=st.open_storage(settings.storage))


def trial_method(trial: optuna.trial.FrozenTrial) -> str | None:
    """The method a study's trial trained (recorded when it was asked)."""
    return trial.params.get("method") or trial.user_attrs.get(st.ATTR_METHOD)


def param_importances(study: optuna.Study, objective_index: int = 0) -> pd.DataFrame:
    """Optuna's parameter importances for objective ``objective_index``, per method (and across methods when
    several were searched): columns ``study``, ``method``, ``param``, ``importance`` (each method's sum to 1).
    Methods with fewer than two completed trials, or parameters that never varied, are left out."""
    import optuna
    from optuna.importance import FanovaImportanceEvaluator

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    rows: list[dict[str, Any]] = []

    def add(label: str, trials: list[Any], strip: str = "", params: list[str] | None = None) -> None:
        if len(trials) < 2:
            return
        verbosity = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "new study created in memory" lines
        try:
            sub = optuna.create_study(directions=study.directions)
        finally:
            optuna.logging.set_verbosity(verbosity)
        sub.add_trials(trials)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                scores = optuna.importance.get_param_importances(
                    sub,
                    evaluator=FanovaImportanceEvaluator(seed=0),
                    params=params,
                    target=lambda t: t.values[objective_index],
                )
        except (RuntimeError, ValueError, ZeroDivisionError):
            return  # too few distinct values to say anything
        rows.extend(
            {
                "study": study.study_name,
                "method": label,
                "param": name[len(strip) :] if strip and name.startswith(strip) else name,
                "importance": float(score),
            }
            for name, score in scores.items()
        )

    methods = sorted({m for m in map(trial_method, complete) if m})
    for method in methods:
        add(method, [t for t in complete if trial_method(t) == method], strip=f"{method}.")
    if len(methods) > 1:
        shared = (
            [p for p in complete[0].params if "." not in p or p.split(".", 1)[0] not in methods]
            if complete
            else []
        )
        add("(all methods)", complete, params=shared)
    return pd.DataFrame(rows, columns=["study", "method", "param", "importance"])


def study_summary(study: optuna.Study, settings: st.StudySettings) -> dict[str, Any]:
    """Counts of the study's trials by state, its name, storage (password hidden) and objectives, for the
    report's header."""
    counts: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        if st.ATTR_SURPLUS in t.user_attrs:
            continue
        state = "lost (retried)" if st.ATTR_RETRIED in t.user_attrs else t.state.name.lower()
        counts[state] = counts.get(state, 0) + 1
    from harness.sweep.storage import redact

    return {
        "study": settings.study_name,
        "storage": redact(settings.storage),
        "objectives": settings.objectives,
        "directions": settings.directions,
        "counts": counts,
    }


def importance_table(importances: pd.DataFrame | None) -> pd.DataFrame:
    """Importances (from :func:`param_importances`) as one row per parameter and one column per method, most
    important first; empty if there are none."""
    if importances is None or importances.empty:
        return pd.DataFrame()
    table = importances.pivot_table(index="param", columns="method", values="importance", aggfunc="first")
    table = table.loc[table.max(axis=1).sort_values(ascending=False).index]
    return table.reset_index().rename_axis(columns=None)
