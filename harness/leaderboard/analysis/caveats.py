"""What a reader must know before trusting a comparison: swept settings that changed nothing, and each
method's loss convention.

**Parameters that changed nothing.** Two trials of one method that differ in a single hyperparameter (the seed
and everything else equal) but whose every evaluated checkpoint gave the same metrics are one result, not two:
SimPO's loss at a small beta and a large gamma is nearly linear in beta, which Adam's normalisation cancels,
so beta 0.05 and 0.1 train the same run. :func:`find_no_effect` reports such groups: ``identical`` when every
metric at every checkpoint is equal (to 1e-9), ``indistinguishable`` when, over at least two checkpoints,
every metric with a standard error is within one standard error and every other within 5%. Training losses are
compared to name the likely cause (equal losses: the parameter is unused; different losses: it only scales the
loss), not to decide, since a parameter that scales the loss changes the logged loss without changing the run.

**Loss conventions.** :func:`with_loss_notes` adds each method's ``loss_notes`` (its plugin's statement of
what the trainer sums, averages per token and covers with an NLL term; stored in every record) to the method
settings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from harness.leaderboard.analysis import columns
from harness.leaderboard.analysis.frames import format_value, trial_id
from harness.records import TrialRecord

FLAG = "no_effect"
EXACT = 1e-9  # relative: equal as computed
SE_TOLERANCE = 1.0  # standard errors
RELATIVE_TOLERANCE = 0.05  # for metrics without a standard error
_BOOKKEEPING = {
    "trial_id",
    "method",
    "step",
    "final",
    "health",
    "objective",
    "within_budget",
    "score",
    "samples",
}


def _se_columns(declared: columns.Declarations, available: Sequence[str]) -> dict[str, str]:
    """Metric column -> the column of its standard error, for the declared metrics that have one."""
    out = {}
    for name, declaration in declared.items():
        if declaration.get("se") and "*" not in name:
            column, se = (
                columns.column_of(name, declared),
                columns.column_of(str(declaration["se"]), declared),
            )
            if column in available and se in available:
                out[column] = se
    return out


def _equal(a: pd.DataFrame, b: pd.DataFrame, metrics: Sequence[str], se: Mapping[str, str]) -> str | None:
    """``identical``, ``indistinguishable`` or None (they differ) for two trajectories indexed by step."""
    exact = True
    for column in metrics:
        x, y = a[column].to_numpy(dtype=float), b[column].to_numpy(dtype=float)
        if not np.array_equal(np.isnan(x), np.isnan(y)):
            return None
        present = ~np.isnan(x)
        x, y = x[present], y[present]
        gap = np.abs(x - y)
        if (gap <= EXACT * np.maximum(1.0, np.maximum(np.abs(x), np.abs(y)))).all():
            continue
        exact = False
        if column in se:
            spread = np.fmax(a[se[column]].to_numpy(dtype=float), b[se[column]].to_numpy(dtype=float))[
                present
            ]
            tolerance = SE_TOLERANCE * np.nan_to_num(spread, nan=0.0)
        else:
            tolerance = RELATIVE_TOLERANCE * np.maximum(np.abs(x), np.abs(y))
        if (gap > tolerance).any():
            return None
    if exact:
        return "identical"
    return "indistinguishable" if len(a) >= 2 else None


def _losses(record: TrialRecord) -> list[float]:
    history = (record.train.log_history if record.train is not None else None) or []
    return [float(e["loss"]) for e in history if isinstance(e, Mapping) and e.get("loss") is not None]


def _differing(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    return sorted(k for k in set(a) | set(b) if repr(a.get(k)) != repr(b.get(k)))


def _pairs(
    records: Sequence[TrialRecord], checkpoints: pd.DataFrame, declared: columns.Declarations
) -> list[dict[str, Any]]:
    """Every pair of completed trials of one method that differ in one hyperparameter (not the seed) and whose
    trajectories are equal: ``a``, ``b`` (records), ``parameter``, ``kind``, ``losses_equal``."""
    if checkpoints.empty or "trial_id" not in checkpoints.columns:
        return []
    hyper = {k for r in records for k in (r.hyperparameters or {})}
    numeric = [
        c
        for c in checkpoints.columns
        if c not in _BOOKKEEPING | hyper
        and not str(c).startswith("selection")
        and pd.api.types.is_numeric_dtype(checkpoints[c])
    ]
    se = _se_columns(declared, numeric)
    metrics = [c for c in numeric if c not in set(se.values())]
    trajectories = {t: g.set_index("step").sort_index() for t, g in checkpoints.groupby("trial_id")}
    done = [r for r in records if r.status == "completed" and trial_id(r) in trajectories]
    found = []
    for a, b in combinations(done, 2):
        if a.method != b.method:
            continue
        differ = _differing(a.hyperparameters or {}, b.hyperparameters or {})
        if len(differ) != 1 or differ[0] == "seed":
            continue
        ta, tb = trajectories[trial_id(a)], trajectories[trial_id(b)]
        if ta.empty or list(ta.index) != list(tb.index):
            continue
        kind = _equal(ta, tb, metrics, se)
        if kind:
            la, lb = _losses(a), _losses(b)
            found.append(
                {"a": a, "b": b, "parameter": differ[0], "kind": kind, "losses_equal": bool(la) and la == lb}
            )
    return found


def find_no_effect(
    records: Sequence[TrialRecord],
    checkpoints: pd.DataFrame,
    declared: columns.Declarations | None = None,
) -> pd.DataFrame:
    """One row per method, parameter and set of values that gave equal runs: ``method``, ``parameter``,
    ``values`` (text), ``seeds`` (text), ``kind`` (``identical`` or ``indistinguishable``, the weaker over its
    pairs), ``trial_ids`` (a list) and ``note`` (one sentence); empty when there is none."""
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    for pair in _pairs(records, checkpoints, declared or {}):
        a, b, parameter = pair["a"], pair["b"], pair["parameter"]
        values = sorted(
            {
                repr(a.hyperparameters.get(parameter)): a.hyperparameters.get(parameter),
                repr(b.hyperparameters.get(parameter)): b.hyperparameters.get(parameter),
            }.items()
        )
        key = (a.method, parameter, tuple(v for v, _ in values))
        group = groups.setdefault(
            key,
            {
                "values": [v for _, v in values],
                "seeds": set(),
                "trials": set(),
                "kinds": set(),
                "losses_equal": True,
            },
        )
        group["seeds"].add((a.hyperparameters or {}).get("seed"))
        group["trials"] |= {trial_id(a), trial_id(b)}
        group["kinds"].add(pair["kind"])
        group["losses_equal"] &= pair["losses_equal"]
    rows = []
    for (method, parameter, _), group in sorted(groups.items(), key=lambda item: str(item[0])):
        kind = "indistinguishable" if "indistinguishable" in group["kinds"] else "identical"
        seeds = sorted((s for s in group["seeds"] if s is not None), key=str)
        rows.append(
            {
                "method": method,
                "parameter": parameter,
                "values": ", ".join(format_value(v) for v in _sorted(group["values"])),
                "seeds": ", ".join(format_value(s) for s in seeds),
                "kind": kind,
                "trial_ids": sorted(group["trials"]),
                "note": note(parameter, _sorted(group["values"]), kind, group["losses_equal"], seeds),
            }
        )
    return pd.DataFrame(rows)


def _sorted(values: Sequence[Any]) -> list[Any]:
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=repr)


def note(
    parameter: str, values: Sequence[Any], kind: str, losses_equal: bool = False, seeds: Sequence[Any] = ()
) -> str:
    """The sentence for one group, e.g. "beta=0.05 and beta=0.1 gave identical runs (likely cause: ...)"."""
    named = [f"{parameter}={format_value(v)}" for v in values]
    listed = " and ".join(named) if len(named) < 3 else f"{', '.join(named[:-1])} and {named[-1]}"
    where = (
        ""
        if not seeds
        else (
            f" with seed {format_value(seeds[0])}"
            if len(seeds) == 1
            else f" with each of seeds {', '.join(format_value(s) for s in seeds)}"
        )
    )
    if kind == "identical" and losses_equal:
        return (
            f"{listed} gave identical runs{where}, training losses "
            "included (likely cause: the parameter is unused)"
        )
    if kind == "identical":
        return (
            f"{listed} gave identical runs{where} (likely cause: the loss is scale-invariant in this "
            "parameter under Adam, or the parameter is unused)"
        )
    return (
        f"{listed} gave runs the evaluation cannot tell apart{where}: at every checkpoint each metric within "
        "one standard error (5% where it has none) (likely cause: the loss is scale-invariant in this "
        "parameter under Adam, the parameter is unused, or its effect is below what this evaluation resolves)"
    )


def flag_trials(trials: pd.DataFrame, findings: pd.DataFrame) -> pd.DataFrame:
    """``trials`` with :data:`FLAG` added to the ``health`` of every trial in ``findings``."""
    if trials.empty or findings.empty or "trial_id" not in trials.columns:
        return trials
    flagged = {t for ids in findings["trial_ids"] for t in ids}
    health = trials["health"] if "health" in trials.columns else pd.Series("", index=trials.index)

    def add(trial: Any, current: Any) -> Any:
        if trial not in flagged:
            return current
        flags = [f.strip() for f in str(current if isinstance(current, str) else "").split(",") if f.strip()]
        return ", ".join([*flags, FLAG] if FLAG not in flags else flags)

    return trials.assign(health=[add(t, h) for t, h in zip(trials["trial_id"], health, strict=True)])


def loss_notes(records: Sequence[TrialRecord]) -> dict[str, str]:
    """Method -> its loss convention (``record.loss_notes``, from its plugin),
    for the methods that state one."""
    notes: dict[str, str] = {}
    for record in records:
        text = record.loss_notes
        if isinstance(text, str) and text.strip():
            notes.setdefault(str(record.method), text.strip())
    return notes


def with_loss_notes(settings: pd.DataFrame, records: Sequence[TrialRecord]) -> pd.DataFrame:
    """The method-settings table with a ``loss`` column (each method's loss convention) when any method states
    one."""
    notes = loss_notes(records)
    if settings.empty or "method" not in settings.columns or not notes:
        return settings
    return settings.assign(loss=[notes.get(str(m), "") for m in settings["method"]])
