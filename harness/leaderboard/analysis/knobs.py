"""Hyperparameters by their papers' names: one key (``method.beta``) is IPO's tau and ORPO's lambda, so a
sweep column or a setting that reads ``beta`` means different things on different rows.

Each trial record carries ``paper_names`` (``{key: the paper's name}``, from its method's
:class:`~harness.plugin.settings.Hyperparameter` ``paper_name``); the reports label a setting
``beta (tau)=0.5`` and say under the tables which columns mean what for which method.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from harness.records import TrialRecord

PaperNames = dict[str, dict[str, str]]  # method -> {key: the paper's name}


def paper_names(records: Sequence[TrialRecord]) -> PaperNames:
    """Method -> its keys' paper names, from the records (the first record of a method that states them)."""
    names: PaperNames = {}
    for record in records:
        given = record.paper_names
        if isinstance(given, Mapping) and given:
            names.setdefault(str(record.method), {str(k): str(v) for k, v in given.items()})
    return names


def label(key: str, names: Mapping[str, str] | None) -> str:
    """``key`` with its paper's name beside it, ``beta (tau)``, or ``key`` alone when the paper uses it."""
    other = (names or {}).get(key)
    return f"{key} ({other})" if other and other != key else key


def columns_note(names: PaperNames, columns: Sequence[str]) -> str:
    """One sentence saying what the hyperparameter columns in ``columns`` mean for the methods whose papers
    call them otherwise ('' when none does), e.g. "Column `beta` is ipo's tau and orpo's lambda"."""
    parts = []
    for column in columns:
        meanings = sorted(
            (method, own[column]) for method, own in names.items() if own.get(column, column) != column
        )
        if meanings:
            listed = " and ".join(f"{method}'s {name}" for method, name in meanings)
            parts.append(f"column `{column}` is {listed}")
    if not parts:
        return ""
    text = "; ".join(parts)
    return (
        f"{text[0].upper()}{text[1:]} (their papers' names; the command line sets each as `method.<column>`)."
    )
