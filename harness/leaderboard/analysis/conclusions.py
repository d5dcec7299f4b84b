"""Method-level conclusions: each method at its best setting, compared with the leader, in one sentence.

For a leaderboard whose settings were run with several seeds, :func:`method_summary` gives one row per method:

- its best *setting* (method + swept hyperparameters but the seed), chosen on **selection** values: the best
  mean ``selection_objective`` (the objective measured on separate selection prompts at each trial's chosen
  checkpoint) over **all** the setting's seeds, a diverged seed counted at the worse of its value and the
  reference model's (:func:`harness.leaderboard.analysis.seeds.contributed`), so a setting that diverged in
  1 of 3 seeds loses to an equal one that never did (ties go to fewer diverged seeds); a method with no
  selection values is chosen on the test ``objective`` itself, which flatters it (``selected_on`` says which);
- that setting's **test** mean ``objective`` over all its seeds (the score that ranks, diverged seeds counted
  as above) with a 95% interval that includes evaluation noise and is never narrower than the seeds-only t
  interval (:mod:`harness.leaderboard.analysis.seeds`), the mean over the seeds that did not diverge
  (``survivors_mean``) and the share that did (``diverged``: "k of n");
- the difference from the best method, a p-value paired over the seeds both share and over the test prompts
  where the records carry per-prompt scores (:mod:`harness.leaderboard.analysis.paired`; ``test`` says
  which; a Welch-type test without two shared seeds), its Holm adjustment over the k - 1 comparisons, and a
  ``verdict``: ``best``, ``not significantly different``, ``significantly behind`` (Holm p < 0.05) or
  ``diverged in k of n seeds`` (every seed: ranked last, not compared), with partial divergence added as a
  note.

:func:`verdict` says it in one plain-English sentence, with each diverging method's two means.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import pandas as pd

from harness.leaderboard.analysis import knobs, paired, seeds
from harness.leaderboard.analysis.frames import ONE_SETTING, SELECTION_PREFIX, format_value, setting_text

SELECTION = "selection_objective"
ON_SELECTION, ON_TEST = "selection prompts", "test prompts"
# The columns the reports show (methods.csv has every column).
SHOWN = (
    "rank",
    "method",
    "trains_on",
    "setting",
    "n_seeds",
    "diverged",
    "selection_mean",
    "objective_mean",
    "objective_ci95",
    "survivors_mean",
    "kl_mean",
    "diff_vs_best",
    "p_holm",
    "verdict",
)
NOTES = {
    "trains_on": "what the method optimised, shown when methods differ: preferences (offline methods), the "
    "gold reward or a reward model (online methods)",
    "setting": "the method's best setting (swept hyperparameters but the seed), chosen on selection values",
    "selected_on": "where the setting was chosen: the selection prompts, or the test prompts when no "
    "selection_objective was measured (which flatters it)",
    "selection_mean": "mean objective of the setting on the selection prompts over all its seeds (a "
    "diverged seed at the worse of its value and the reference model's)",
    "diverged": "seeds that diverged (non-finite objective, KL or loss, or KL above the health band: "
    "kl_high), counted in the means at the worse of their value and the reference model's",
    "objective_mean": "mean of the objective over all the setting's seeds, a diverged seed at the worse "
    "of its value and the reference model's: the score that ranks",
    "objective_ci95": "half-width of the 95% interval of objective_mean: the larger of the seeds-only t "
    "interval and the one with evaluation noise (Var = s²/n + mean(se²))",
    "survivors_mean": "mean of the objective over the seeds that did not diverge",
    "objective_se": "standard error of objective_mean: sqrt(s²/n + mean(se²))",
    "kl_mean": "mean KL over the seeds that did not diverge",
    "diff_vs_best": "objective_mean minus the best method's",
    "p_vs_best": "p-value against the best: a t-test over the seeds both share of the paired differences, "
    "with the per-prompt evaluation noise of the difference (never below the seeds-only test's); Welch-type "
    "without two shared seeds",
    "test": "the test behind p_vs_best: paired (seeds, prompts), paired (seeds) where some pair had no "
    "per-prompt scores, or unpaired",
    "p_holm": "p_vs_best adjusted with Holm's method over all comparisons with the best",
    "same_as_best": "not significantly different from the "
    "best setting after Holm's correction (p_holm ≥ 0.05)",
    "verdict": "best, not significantly different, significantly behind (Holm p < 0.05), or diverged",
}


def _mean_of(group: pd.DataFrame, column: str, baseline: float | None, direction: str) -> float:
    """The all-seeds mean of ``column``, a diverged seed at its :func:`seeds.contributed` value."""
    values = seeds.contributed(group, column, baseline, direction) if column in group else pd.Series()
    return float(values.mean()) if values.notna().any() else math.nan


def best_setting(
    group: pd.DataFrame,
    keys: Sequence[str],
    direction: str,
    baselines: tuple[float | None, float | None] = (None, None),
) -> tuple[Any, pd.DataFrame, str]:
    """A method's best setting among its trials ``group`` (from :func:`seeds.seeded_pool`): ``(key, trials,
    selected_on)``, by the mean ``selection_objective`` over **all** its seeds, a diverged seed counted at the
    worse of its value and the reference model's (``baselines``: the reference's objective on the test and on
    the selection prompts; :func:`seeds.contributed`), so divergence never helps a setting; ties go to fewer
    diverged seeds. The test ``objective`` stands in when the method has no selection value."""
    test_base, selection_base = baselines
    on_selection = not math.isnan(_mean_of(group, SELECTION, selection_base, direction))
    column, base = (SELECTION, selection_base) if on_selection else ("objective", test_base)
    sign = -1.0 if direction == "minimize" else 1.0
    best: tuple[tuple[float, int], Any, pd.DataFrame] | None = None
    for key, setting in group.groupby(list(keys), dropna=False, sort=False):
        mean = sign * _mean_of(setting, column, base, direction)
        value = (-math.inf if math.isnan(mean) else mean, -int(setting["_diverged"].sum()))
        if best is None or value > best[0]:
            best = (value, key, setting)
    assert best is not None
    return best[1], best[2], ON_SELECTION if on_selection else ON_TEST


def _method_row(
    group: pd.DataFrame,
    keys: Sequence[str],
    context: tuple[str, str | None, knobs.PaperNames, tuple[float | None, float | None]],
) -> dict[str, Any]:
    direction, se_column, names, baselines = context
    key, setting, selected_on = best_setting(group, keys, direction, baselines)
    estimate = seeds.setting_estimate(setting, "objective", se_column, baselines[0], direction)
    k = int(setting["_diverged"].sum())
    method = setting["method"].iloc[0]
    chosen_on = (SELECTION, baselines[1]) if selected_on == ON_SELECTION else ("objective", baselines[0])
    return {
        "method": method,
        "setting": setting_text(keys, key if isinstance(key, tuple) else (key,), names.get(str(method))),
        "selected_on": selected_on,
        "selection_mean": _mean_of(setting, *chosen_on, direction),
        "n_seeds": len(setting),
        "diverged": f"{k} of {len(setting)}",
        "objective_mean": estimate.mean,
        "objective_ci95": estimate.ci95,
        "survivors_mean": seeds.setting_estimate(setting, "objective", se_column, survivors=True).mean,
        "objective_se": math.sqrt(estimate.var),
        "kl_mean": seeds.setting_estimate(setting, "kl", None, survivors=True).mean,
        "_pairing": (setting, seeds.contributed(setting, "objective", baselines[0], direction), estimate),
        "_all_diverged": k == len(setting),
        "_diverged": k,
    }


def _verdict(i: int, dead: bool, p_holm: float, k: int, n: int) -> str:
    if dead:
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


def _compare_with_best(table: pd.DataFrame, se_column: str | None, scores: pd.DataFrame | None) -> None:
    """Adds ``diff_vs_best``, ``p_vs_best``, ``test``, ``p_holm`` and ``verdict`` to the ranked ``table``."""
    pairing, dead = list(table.pop("_pairing")), list(table.pop("_all_diverged"))
    by_trial = paired.scores_by_trial(scores)
    tests = [
        (math.nan, "") if i == 0 or d else paired.compare(x, pairing[0], se_column, by_trial)
        for i, (x, d) in enumerate(zip(pairing, dead, strict=True))
    ]
    table["diff_vs_best"] = [x[2].mean - pairing[0][2].mean for x in pairing]
    table["p_vs_best"], table["test"] = [t[0] for t in tests], [t[1] for t in tests]
    table["p_holm"] = seeds.holm(list(table["p_vs_best"]))
    table["verdict"] = [
        _verdict(i, d, q, k, n)
        for i, (d, q, k, n) in enumerate(
            zip(dead, table["p_holm"], table.pop("_diverged"), table["n_seeds"], strict=True)
        )
    ]


def method_summary(
    trials: pd.DataFrame,
    swept: Sequence[str],
    direction: str = "maximize",
    se_column: str | None = None,
    measured: Collection[str] | None = None,
    paper_names: knobs.PaperNames | None = None,
    *,
    baselines: tuple[float | None, float | None] = (None, None),
    prompt_scores: pd.DataFrame | None = None,
    trains_on: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """One row per method of ``trials`` (a board's trials table; see the module docstring): ``rank``,
    ``method``, ``setting``, ``selected_on``, ``selection_mean``, ``n_seeds``, ``diverged``,
    ``objective_mean`` (over all seeds), ``objective_ci95``, ``survivors_mean``, ``objective_se``,
    ``kl_mean``, ``diff_vs_best``, ``p_vs_best``, ``test``, ``p_holm``, ``verdict``; best first by
    ``objective_mean`` in ``direction``, methods whose every seed diverged last. ``se_column`` names the
    per-trial standard error of the objective (e.g. ``gold_se``; None: intervals over seeds only).
    ``measured``: the trials whose ``selection_objective`` was measured on selection prompts
    (:func:`measured_selection`); in the others it stands in with the test value and is not used (None: every
    value is taken as measured). ``paper_names`` (:func:`knobs.paper_names`) labels each setting's keys with
    the method's paper's names, ``beta (tau)=0.5``. ``baselines``: the reference model's objective on the test
    and on the selection prompts, what a diverged seed counts at most (:func:`seeds.contributed`).
    ``prompt_scores`` (:func:`paired.all_prompt_scores`): per-prompt scores for the paired tests.
    ``trains_on``: method -> what it optimised (:func:`harness.leaderboard.analysis.matched_kl.trains_on`),
    a ``trains_on`` column after ``method`` when methods differ. Empty unless some setting was run with two
    seeds or more."""
    pool = seeds.seeded_pool(trials, swept)
    if measured is not None and SELECTION in pool:
        pool = pool.assign(**{SELECTION: pool[SELECTION].where(pool["trial_id"].isin(list(measured)))})
    if pool.empty:
        return pd.DataFrame()
    keys = seeds.setting_keys(pool, swept)
    context = (direction, se_column, paper_names or {}, baselines)
    rows = [_method_row(group, keys, context) for _, group in pool.groupby("method", sort=False)]
    table = seeds.rank(pd.DataFrame(rows), "objective_mean", direction, "_all_diverged")
    _compare_with_best(table, se_column, prompt_scores)
    table.insert(0, "rank", range(1, len(table) + 1))
    if trains_on and len({trains_on.get(str(m)) for m in table["method"]}) > 1:
        table.insert(2, "trains_on", [trains_on.get(str(m), "") for m in table["method"]])
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
        f"95% CIs include evaluation noise (`{se_column}`), never narrower than over seeds alone"
        if se_column
        else "95% CIs are over seeds only (no standard error of the objective was recorded)"
    )
    tests = set(summary["test"]) if "test" in summary else set()
    how = (
        "p-values paired over seeds and test prompts"
        if tests == {"", paired.PAIRED_PROMPTS}
        else "p-values paired over the seeds methods share"
        if tests & {paired.PAIRED_PROMPTS, paired.PAIRED_SEEDS}
        else "Welch-type p-values"
    )
    return f"{chosen}; {noise}; {how}, Holm-corrected over the comparisons with the leader."


def _divergence(unstable: pd.DataFrame) -> str:
    """'kto diverged in 1 of 3 seeds (mean over all seeds -0.565, 0.154 over the 2 that did not), ...'."""
    items = []
    for i, row in enumerate(unstable.itertuples()):
        k, n = (int(x) for x in str(row.diverged).split(" of "))
        rest = (
            f"{format_value(row.survivors_mean)} over the {n - k} that did not" if k < n else "none survived"
        )
        seeds_word = " seeds" if i == 0 else ""
        items.append(
            f"{row.method}{' diverged' if i == 0 else ''} in {row.diverged}{seeds_word} "
            f"(mean over all seeds {format_value(row.objective_mean)}, {rest})"
        )
    return ", ".join(items)


def verdict(summary: pd.DataFrame, se_column: str | None = None) -> str:
    """One plain-English sentence of ``summary`` (:func:`method_summary`): who leads, who is not significantly
    different, who is significantly behind after Holm's correction, who diverged; '' when it is empty."""
    if summary.empty:
        return ""
    lead = summary.iloc[0]
    if lead["verdict"].startswith("diverged"):
        return f"Every seed of every method diverged. {_footnote(summary, se_column)}"
    ci = f" ± {format_value(lead['objective_ci95'])}" if not math.isnan(lead["objective_ci95"]) else ""
    setting = "" if lead["setting"] == ONE_SETTING else f" ({lead['setting']})"
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
        parts.append(_divergence(unstable))
    return "; ".join(parts) + ". " + _footnote(summary, se_column)


def explanation(objective: str | None, se_column: str | None) -> str:
    """What the method table shows (for the reports)."""
    noise = (
        f"each trial's standard error (`{se_column}`) added to the spread over seeds, and never narrower "
        "than the seeds-only t interval"
        if se_column
        else "over seeds only: no standard error of the objective was recorded"
    )
    return (
        "Each method at its best setting, chosen on selection values (`selection_mean`: the objective on "
        "separate selection prompts, or on the test prompts where none was measured: `selected_on` in "
        "`methods.csv`) over all its seeds; `objective_mean` ± `objective_ci95` is that setting's test "
        f"**{objective}** over all its seeds, a 95% interval with {noise}. A seed is diverged when its "
        "objective, KL or loss is not finite or its KL went above the health band (`kl_high`); it counts in "
        "`n_seeds` and in the means at the worse of its measured value and the reference model's (no gain "
        "when nothing finite was measured), so divergence never raises a score; `survivors_mean` is the mean "
        "over the seeds that did not diverge. `p_holm` is a t-test against the leader paired over the seeds "
        "both share (and over the test prompts where the records keep per-prompt scores; `test` in "
        "`methods.csv`), Holm-adjusted over the comparisons."
    )
