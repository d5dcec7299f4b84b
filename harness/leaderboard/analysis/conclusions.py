"""Method-level conclusions: each method at its best setting, compared with the leader, in one sentence.

For a leaderboard whose settings were run with several seeds, :func:`method_summary` gives one row per method:

- its best *setting* (method + swept hyperparameters but the seed), chosen on **selection** values: the best
  mean ``selection_objective`` (the objective measured on separate selection prompts at each trial's chosen
  checkpoint) over the setting's non-diverged seeds; a method with no selection values is chosen on the test
  ``objective`` itself, which flatters it (``selected_on`` says which);
- that setting's **test** mean ``objective`` over its non-diverged seeds with a 95% interval that includes
  evaluation noise, Var(mean) = s²/n + mean(se_i²) (:mod:`harness.leaderboard.analysis.seeds`), and the seeds
  that diverged (``diverged``: "k of n");
- the difference from the best method by test mean, a Welch-type p-value on the summed variances, its Holm
  adjustment over the k - 1 comparisons, and a ``verdict``: ``best``, ``not significantly different``,
  ``significantly behind`` (Holm p < 0.05) or ``diverged in k of n seeds`` (every seed), with partial
  divergence added as a note.

:func:`verdict` says it in one plain-English sentence.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import pandas as pd

from harness.leaderboard.analysis import knobs, seeds
from harness.leaderboard.analysis.frames import SELECTION_PREFIX, format_value

SELECTION = "selection_objective"
ON_SELECTION, ON_TEST = "selection prompts", "test prompts"
# The columns the reports show (methods.csv has every column).
SHOWN = (
    "rank",
    "method",
    "setting",
    "n_seeds",
    "diverged",
    "selection_mean",
    "objective_mean",
    "objective_ci95",
    "kl_mean",
    "diff_vs_best",
    "p_holm",
    "verdict",
)
NOTES = {
    "setting": "the method's best setting (swept hyperparameters but the seed), chosen on selection values",
    "selected_on": "where the setting was chosen: the selection prompts, or the test prompts when no "
    "selection_objective was measured (which flatters it)",
    "selection_mean": "mean objective of the setting on the selection prompts over its non-diverged seeds",
    "diverged": "seeds that diverged (non-finite objective, KL or loss, or KL "
    "above the health band: kl_high), left out of the means",
    "objective_mean": "mean of the objective over the non-diverged seeds",
    "objective_ci95": "half-width of the 95% interval of objective_mean, evaluation noise included "
    "(Var = s²/n + mean(se²))",
    "objective_se": "standard error of objective_mean: sqrt(s²/n + mean(se²))",
    "kl_mean": "mean KL over the non-diverged seeds",
    "diff_vs_best": "objective_mean minus the best method's",
    "p_vs_best": "Welch-type t-test p-value against the best, on variances that include evaluation noise",
    "p_holm": "p_vs_best adjusted with Holm's method over all comparisons with the best",
    "same_as_best": "not significantly different from the "
    "best setting after Holm's correction (p_holm ≥ 0.05)",
    "verdict": "best, not significantly different, significantly behind (Holm p < 0.05), or diverged",
}


def _setting_text(keys: Sequence[str], key: Any, names: Mapping[str, str] | None = None) -> str:
    values = key if isinstance(key, tuple) else (key,)
    parts = [
        f"{knobs.label(k, names)}={format_value(v)}"
        for k, v in zip(keys, values, strict=True)
        if k != "method"
    ]
    return ", ".join(parts) or "(one setting)"


def _mean_of(group: pd.DataFrame, column: str) -> float:
    kept = group.loc[~group["_diverged"], column] if column in group else pd.Series(dtype=float)
    values = pd.to_numeric(kept, errors="coerce")
    return float(values.mean()) if values.notna().any() else math.nan


def best_setting(group: pd.DataFrame, keys: Sequence[str], direction: str) -> tuple[Any, pd.DataFrame, str]:
    """A method's best setting among its trials ``group`` (from :func:`seeds.seeded_pool`): ``(key, trials,
    selected_on)``, by mean ``selection_objective`` over non-diverged seeds (the test ``objective`` when the
    method has no selection value); a setting with every seed diverged only when all are."""
    column = SELECTION if not math.isnan(_mean_of(group, SELECTION)) else "objective"
    sign = -1.0 if direction == "minimize" else 1.0
    best: tuple[float, Any, pd.DataFrame] | None = None
    for key, setting in group.groupby(list(keys), dropna=False, sort=False):
        value = sign * _mean_of(setting, column)
        if best is None or (math.isnan(best[0]) and not math.isnan(value)) or value > best[0]:
            best = (value, key, setting)
    assert best is not None
    return best[1], best[2], ON_SELECTION if column == SELECTION else ON_TEST


def _method_row(
    group: pd.DataFrame, keys: Sequence[str], direction: str, se_column: str | None, names: knobs.PaperNames
) -> dict[str, Any]:
    key, setting, selected_on = best_setting(group, keys, direction)
    estimate = seeds.setting_estimate(setting, "objective", se_column)
    k = int(setting["_diverged"].sum())
    method = setting["method"].iloc[0]
    return {
        "method": method,
        "setting": _setting_text(keys, key, names.get(str(method))),
        "selected_on": selected_on,
        "selection_mean": _mean_of(setting, SELECTION if selected_on == ON_SELECTION else "objective"),
        "n_seeds": len(setting),
        "diverged": f"{k} of {len(setting)}",
        "objective_mean": estimate.mean,
        "objective_ci95": estimate.ci95,
        "objective_se": math.sqrt(estimate.var),
        "kl_mean": _mean_of(setting, "kl"),
        "_estimate": estimate,
        "_diverged": k,
    }


def _verdict(i: int, estimate: seeds.Estimate, p_holm: float, k: int, n: int) -> str:
    if estimate.n == 0:
        return f"diverged in {k} of {n} seeds"
    if i == 0:
        text = "best"
    elif math.isnan(p_holm):
        text = "not compared (one seed and no standard error)"
    else:
        text = "significantly behind" if p_holm < seeds.ALPHA else "not significantly different"
    return f"{text}; diverged in {k} of {n} seeds" if k else text


def measured_selection(checkpoints: pd.DataFrame, objective: str | None) -> set[str]:
    """The trials (ids) whose checkpoints have the objective measured on the selection prompts
    (``sel_<objective>``); in the others ``selection_objective`` only repeats the test value."""
    column = f"{SELECTION_PREFIX}{objective}"
    if objective is None or checkpoints.empty or column not in checkpoints:
        return set()
    return set(checkpoints.loc[pd.to_numeric(checkpoints[column], errors="coerce").notna(), "trial_id"])


def method_summary(
    trials: pd.DataFrame,
    swept: Sequence[str],
    direction: str = "maximize",
    se_column: str | None = None,
    measured: Collection[str] | None = None,
    paper_names: knobs.PaperNames | None = None,
) -> pd.DataFrame:
    """One row per method of ``trials`` (a board's trials table; see the module docstring): ``rank``,
    ``method``, ``setting``, ``selected_on``, ``selection_mean``, ``n_seeds``, ``diverged``,
    ``objective_mean``, ``objective_ci95``, ``objective_se``, ``kl_mean``, ``diff_vs_best``, ``p_vs_best``,
    ``p_holm``, ``verdict``; best first by test mean in ``direction``. ``se_column`` names the per-trial
    standard error of the objective (e.g. ``gold_se``; None: intervals over seeds only). ``measured``: the
    trials whose ``selection_objective`` was measured on selection prompts (:func:`measured_selection`); in
    the others it stands in with the test value and is not used (None: every value is taken as measured).
    ``paper_names`` (:func:`knobs.paper_names`) labels each setting's keys with the method's paper's names,
    ``beta (tau)=0.5``. Empty unless some setting was run with two seeds or more."""
    pool = seeds.seeded_pool(trials, swept)
    if measured is not None and SELECTION in pool:
        pool = pool.assign(**{SELECTION: pool[SELECTION].where(pool["trial_id"].isin(list(measured)))})
    if pool.empty:
        return pd.DataFrame()
    keys = seeds.setting_keys(pool, swept)
    rows = [
        _method_row(group, keys, direction, se_column, paper_names or {})
        for _, group in pool.groupby("method", sort=False)
    ]
    table = (
        pd.DataFrame(rows)
        .sort_values("objective_mean", ascending=direction == "minimize", na_position="last", kind="stable")
        .reset_index(drop=True)
    )
    estimates, diverged = list(table.pop("_estimate")), list(table.pop("_diverged"))
    p = [math.nan if i == 0 else seeds.compare(e, estimates[0]) for i, e in enumerate(estimates)]
    table["diff_vs_best"] = [e.mean - estimates[0].mean for e in estimates]
    table["p_vs_best"], table["p_holm"] = p, seeds.holm(p)
    table["verdict"] = [
        _verdict(i, e, q, k, n)
        for i, (e, q, k, n) in enumerate(
            zip(estimates, table["p_holm"], diverged, table["n_seeds"], strict=True)
        )
    ]
    table.insert(0, "rank", range(1, len(table) + 1))
    return table


def shown(summary: pd.DataFrame) -> pd.DataFrame:
    """The columns of ``summary`` the reports show, all-empty ones left out."""
    return summary[[c for c in SHOWN if c in summary.columns]].dropna(axis=1, how="all")


def _names(methods: Sequence[str]) -> str:
    return methods[0] if len(methods) == 1 else f"{', '.join(methods[:-1])} and {methods[-1]}"


def _p(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"= {format_value(p)}"


def _group(rows: pd.DataFrame, verdict: str, phrase: str) -> str | None:
    hits = rows[rows["verdict"].str.startswith(verdict)]
    if hits.empty:
        return None
    methods, ps = list(hits["method"].astype(str)), list(hits["p_holm"])
    if len(methods) == 1:
        where = f"Holm p {_p(ps[0])}"
    elif verdict == "significantly behind":
        where = f"Holm p {'< 0.001' if max(ps) < 0.001 else '≤ ' + format_value(max(ps))}"
    else:
        where = "Holm p = " + ", ".join(format_value(p) for p in ps)
    return f"{_names(methods)} {'is' if len(methods) == 1 else 'are'} {phrase} ({where})"


def _footnote(summary: pd.DataFrame, se_column: str | None) -> str:
    on_test = list(summary.loc[summary["selected_on"] == ON_TEST, "method"].astype(str))
    if not on_test:
        chosen = "Settings chosen on separate selection prompts, scored on the test prompts"
    elif len(on_test) == len(summary):
        chosen = (
            "Settings chosen and scored on the same test "
            "prompts (no selection_objective), which flatters them"
        )
    else:
        chosen = (
            f"Settings chosen on separate selection prompts (on the test prompts for {_names(on_test)}, "
            "which flatters them), scored on the test prompts"
        )
    noise = (
        f"95% CIs include evaluation noise (`{se_column}`)"
        if se_column
        else "95% CIs are over seeds only (no standard error of the objective was recorded)"
    )
    return f"{chosen}; {noise}; p-values Holm-corrected over the comparisons with the leader."


def verdict(summary: pd.DataFrame, se_column: str | None = None) -> str:
    """One plain-English sentence of ``summary`` (:func:`method_summary`): who leads, who is not significantly
    different, who is significantly behind after Holm's correction, who diverged; '' when it is empty."""
    if summary.empty:
        return ""
    lead = summary.iloc[0]
    if lead["verdict"].startswith("diverged"):
        return f"Every seed of every method diverged. {_footnote(summary, se_column)}"
    ci = f" ± {format_value(lead['objective_ci95'])}" if not math.isnan(lead["objective_ci95"]) else ""
    setting = "" if lead["setting"] == "(one setting)" else f" ({lead['setting']})"
    parts = [f"{lead['method']}{setting} leads with {format_value(lead['objective_mean'])}{ci}"]
    parts += [
        g
        for g in (
            _group(summary, "not significantly different", "not significantly different"),
            _group(summary, "significantly behind", "significantly behind after Holm's correction"),
            _group(summary, "not compared", "not compared (one seed, no standard error)"),
        )
        if g
    ]
    unstable = summary[~summary["diverged"].str.startswith("0 of")]
    if not unstable.empty:
        items = [
            f"{m} in {d}" for m, d in zip(unstable["method"].astype(str), unstable["diverged"], strict=True)
        ]
        parts.append(
            f"{items[0].replace(' in ', ' diverged in ', 1)} seeds"
            + "".join(f", {item}" for item in items[1:])
        )
    return "; ".join(parts) + ". " + _footnote(summary, se_column)


def explanation(objective: str | None, se_column: str | None) -> str:
    """What the method table shows (for the reports)."""
    noise = (
        f"each trial's standard error (`{se_column}`) added to the spread over seeds"
        if se_column
        else "over seeds only: no standard error of the objective was recorded"
    )
    return (
        "Each method at its best setting, chosen on selection values (`selection_mean`: the objective on "
        "separate selection prompts, or on the test prompts where none was measured: `selected_on` in "
        "`methods.csv`) over its non-diverged seeds; `objective_mean` ± `objective_ci95` is that setting's "
        f"test **{objective}**, a 95% interval with {noise}. A seed is diverged (counted, left out of the "
        "means) when its objective, KL or loss is not finite or its KL went above the health band "
        "(`kl_high`). `p_holm` is a Welch-type t-test against the leader, Holm-adjusted over the comparisons."
    )
