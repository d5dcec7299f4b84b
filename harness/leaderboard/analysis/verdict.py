"""The verdict: which method and settings to ship, how sure that is, and what would settle it.

From a leaderboard's trials (:func:`decide`):

1. **Each method's setting** is chosen on the *selection* prompts only: the best mean ``selection_objective``
   over all its seeds, a diverged seed counted at the worse of its value and the reference model's
   (:func:`harness.leaderboard.analysis.conclusions.best_setting`), among the method's settings run with the
   most seeds (a racing study's confirmed settings: a setting tried with one seed and left behind is not
   set against one confirmed on five).
2. **The recommended method** is the method whose chosen setting has the best selection mean (methods whose
   every seed diverged are never recommended). Its *test* mean, interval and gain over the base model are
   reported; no test value took part in choosing it.
3. **Every other method** is compared with it on the test prompts, paired over the seeds both share and the
   prompts every trial shares (:mod:`harness.leaderboard.analysis.twoway`), Holm-adjusted over the
   comparisons: ``behind`` (adjusted p < 0.05, the recommended ahead), ``tied`` (two one-sided tests: the 90%
   interval of the difference inside +- the margin), ``ahead`` (adjusted p < 0.05 the other way: the
   selection prompts and the test prompts disagree), ``diverged`` (every seed), else ``undecided``.
4. **The margin** of a tie is ``share`` x the recommended method's test gain over the base model
   (``leaderboard.verdict_margin``, default :data:`DEFAULT_MARGIN`).
5. **The state**: ``decided`` when every other method is behind, tied or diverged; ``undecided`` otherwise,
   with the seeds (or prompts) that would settle each open comparison and the command that runs them;
   ``one seed`` when no method has two seeds (one trial per method ranks trials, not methods: the
   seed-to-seed spread is unmeasured); ``one method`` with a single method.
6. **P(best)** of each method and the verdict's **confidence** (the probability that the recommended method
   is best or within the margin of the best) come from joint draws of the methods' test means
   (:func:`harness.leaderboard.analysis.twoway.draws`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from harness.leaderboard.analysis import conclusions, knobs, paired, seeds, twoway
from harness.leaderboard.analysis.frames import reference_values, setting_text, trial_id
from harness.leaderboard.analysis.verdict_model import (
    DEFAULT_MARGIN,
    MARGIN_KEY,
    STATES,
    Leaderboard,
    MethodVerdict,
    Verdict,
    VerdictError,
    check_margin,
    margin_of,
)
from harness.leaderboard.analysis.verdict_words import finish, table

if TYPE_CHECKING:
    from harness.records import TrialRecord


def evidence(
    setting: pd.DataFrame,
    column: str,
    baseline: float | None,
    direction: str,
    prompts: Mapping[tuple[str, float], np.ndarray],
    se_column: str | None = None,
) -> twoway.Evidence:
    """One setting's trials (a pool from :func:`pool`) as :class:`twoway.Evidence` of ``column``: each seed's
    counted value (:func:`seeds.contributed`), its per-prompt scores at its chosen checkpoint (``prompts``;
    none for a diverged seed) and standard error."""
    values = seeds.contributed(setting, column, baseline, direction)
    steps = pd.to_numeric(setting["step"], errors="coerce")
    ses = pd.to_numeric(setting[se_column], errors="coerce") if se_column and se_column in setting else None
    rows = []
    for (_, row), step in zip(setting.iterrows(), steps, strict=True):
        scores = None if row["_diverged"] else prompts.get((str(row["trial_id"]), float(step)))
        rows.append(scores)
    keep = np.isfinite(values.to_numpy(dtype=float))
    return twoway.Evidence(
        tuple(s for s, k in zip(setting["seed"], keep, strict=True) if k),
        tuple(float(v) for v, k in zip(values, keep, strict=True) if k),
        tuple(r for r, k in zip(rows, keep, strict=True) if k),
        tuple(
            (float(ses.loc[i]) if ses is not None and math.isfinite(ses.loc[i]) else math.nan)
            for i, k in zip(setting.index, keep, strict=True)
            if k
        ),
    )


def pool(board: Leaderboard) -> pd.DataFrame:
    """The board's completed and diverged trials with ``_diverged`` and a ``seed`` column (the trial's
    training seed from its record where the seed was not swept)."""
    trials = board.trials
    if trials.empty or "objective" not in trials:
        return pd.DataFrame()
    flags = seeds.diverged(trials)
    done = trials["status"] == "completed"
    out = trials[done | flags].assign(_diverged=flags[done | flags])
    if "seed" not in out:
        by_id = {str(r.trial_id or ""): (r.hyperparameters or {}).get("seed") for r in board.records}
        out = out.assign(seed=[by_id.get(str(t), 0) for t in out["trial_id"]])
    return out


# -- the decision ---------------------------------------------------------------------------------------


def _interval(est: seeds.Estimate) -> tuple[float, float]:
    half = est.ci95
    return (est.mean - half, est.mean + half) if math.isfinite(half) else (math.nan, math.nan)


def decide(board: Leaderboard, margin_share: float | None = None) -> Verdict:
    """The verdict of ``board`` (see the module docstring); ``margin_share`` (default: the records'
    ``leaderboard.verdict_margin``, else :data:`DEFAULT_MARGIN`) is checked first.

    :raises VerdictError: an invalid margin."""
    share = check_margin(margin_share) if margin_share is not None else margin_of(board.records)
    objective, direction = board.objective_name, board.objective_direction
    trials = pool(board)
    if objective is None or trials.empty:
        return finish(Verdict("none", objective, direction, margin_share=share), board)
    bases = reference_values(board.records, objective, board.declarations)
    test_base = bases[0]
    chosen = _choose(board, trials, bases)
    sign = -1.0 if direction == "minimize" else 1.0
    alive = [c for c in chosen if not c[2]]
    if not alive:  # nothing to recommend: every seed of every method diverged
        return finish(
            Verdict("none", objective, direction, margin_share=share, others=[c[0] for c in chosen]), board
        )
    best = max(alive, key=lambda c: (_finite(sign * c[0].selection_mean), -c[0].diverged))
    verdict = Verdict("decided", objective, direction, best[0], margin_share=share, base=test_base)
    verdict.kl_budget = board.kl_budget
    verdict.test = (
        "paired over seeds and prompts (two-way: seeds and test prompts as crossed random effects), "
        "Holm-adjusted; tie: two one-sided tests"
    )
    _gain(verdict, board.baseline()[1])
    others = [c for c in chosen if c is not best]
    verdict.others = [c[0] for c in others]
    if not others:
        verdict.state = "one method"
        return finish(verdict, board)
    diffs = _compare(verdict, best[1], others)
    _probabilities(verdict, [best[1], *(ev for _, ev, _ in others)])
    if max(c[1].n for c in chosen) < 2 or not any(d.seeds_known for d in diffs):
        _one_seed(verdict)
    elif any(e.status in ("undecided", "ahead") for e in verdict.others):
        verdict.state = "undecided"
    return finish(verdict, board)


def _choose(
    board: Leaderboard, trials: pd.DataFrame, bases: tuple[float | None, float | None]
) -> list[tuple[MethodVerdict, twoway.Evidence, bool]]:
    """Each method's setting (chosen on selection values among its settings with the most seeds), as a
    :class:`MethodVerdict`, with its test evidence and whether every seed diverged."""
    objective, direction = str(board.objective_name), board.objective_direction
    test_base, selection_base = bases  # the reference model's objective on the test and selection prompts
    se_column = board.objective_se_column()
    measured = conclusions.measured_selection(board.checkpoints, objective)
    if conclusions.SELECTION in trials:
        kept = trials[conclusions.SELECTION].where(trials["trial_id"].isin(list(measured)))
        trials = trials.assign(**{conclusions.SELECTION: kept})
    keys = seeds.setting_keys(trials, board.swept)
    names = knobs.paper_names(board.records)
    test_rows = paired.checkpoint_prompt_scores(board.records, objective)
    chosen = []
    for method, group in trials.groupby("method", sort=False):
        counts = group.groupby(keys, dropna=False)["trial_id"].transform("size")
        group = group[counts == counts.max()]
        key, setting, selected_on = conclusions.best_setting(
            group, keys, direction, (test_base, selection_base)
        )
        on_selection = selected_on == conclusions.ON_SELECTION
        column, base = (conclusions.SELECTION, selection_base) if on_selection else ("objective", test_base)
        estimate = seeds.setting_estimate(setting, "objective", se_column, test_base, direction)
        low, high = _interval(estimate)
        k = int(setting["_diverged"].sum())
        entry = MethodVerdict(
            method=str(method),
            setting=setting_text(keys, key if isinstance(key, tuple) else (key,), names.get(str(method))),
            overrides=_setting_overrides(setting, board.records),
            n_seeds=len(setting),
            diverged=k,
            selection_mean=float(seeds.contributed(setting, column, base, direction).mean()),
            selected_on=selected_on,
            test_mean=estimate.mean,
            test_low=low,
            test_high=high,
            trials=[str(t) for t in setting["trial_id"]],
            kl_mean=seeds.setting_estimate(setting, "kl", None, survivors=True).mean,
        )
        ev = evidence(setting, "objective", test_base, direction, test_rows, se_column)
        chosen.append((entry, ev, k == len(setting)))
    return chosen


def _gain(verdict: Verdict, base_se: float | None) -> None:
    """The recommended method's test gain over the base model, its interval, and the margin of a tie."""
    rec, sign = verdict.recommended, -1.0 if verdict.direction == "minimize" else 1.0
    if rec is not None and verdict.base is not None and math.isfinite(rec.test_mean):
        verdict.gain = sign * (rec.test_mean - verdict.base)
        half = (rec.test_high - rec.test_mean) if math.isfinite(rec.test_high) else math.nan
        base_half = 1.96 * base_se if base_se is not None else 0.0
        spread = math.sqrt(half**2 + base_half**2) if math.isfinite(half) else math.nan
        verdict.gain_low, verdict.gain_high = verdict.gain - spread, verdict.gain + spread
    verdict.margin = verdict.margin_share * abs(verdict.gain) if math.isfinite(verdict.gain) else math.nan


def _compare(
    verdict: Verdict, rec_ev: twoway.Evidence, others: list[tuple[MethodVerdict, twoway.Evidence, bool]]
) -> list[twoway.Difference]:
    """Each other method against the recommended one on the test prompts: difference, Holm-adjusted p,
    detectable difference, status, seeds to settle; the headline's detectable difference (the runner-up's,
    second on the selection prompts)."""
    sign = -1.0 if verdict.direction == "minimize" else 1.0
    diffs = [twoway.difference(rec_ev, ev) for _, ev, _ in others]
    pvalues = [twoway.p_value(d) for d in diffs]
    for (entry, _, dead), d, p, q in zip(others, diffs, pvalues, seeds.holm(pvalues), strict=True):
        entry.diff, entry.diff_se, entry.p, entry.p_holm = sign * d.mean, d.se, p, q
        entry.detectable = twoway.detectable(d)
        if dead:
            entry.status = "diverged"
        elif math.isfinite(q) and q < seeds.ALPHA:
            entry.status = "behind" if sign * d.mean > 0 else "ahead"
        elif math.isfinite(verdict.margin) and twoway.equivalent(d, verdict.margin):
            entry.status = "tied"
        else:
            entry.status = "undecided"
            entry.seeds_to_settle, entry.prompt_factor = twoway.seeds_needed(d, verdict.margin)
    runner_up = min(
        (c for c in zip(others, diffs, strict=True) if not c[0][2]),
        key=lambda c: -_finite(sign * c[0][0].selection_mean),
        default=None,
    )
    verdict.detectable = twoway.detectable(runner_up[1]) if runner_up else math.nan
    return diffs


def _probabilities(verdict: Verdict, evs: list[twoway.Evidence]) -> None:
    """P(best) of each method and the verdict's confidence, from joint draws of the test means."""
    if not all(e.n for e in evs):
        return
    sample = twoway.draws(evs)
    for entry, share_best in zip(
        verdict.methods, twoway.probability_best(sample, verdict.direction), strict=True
    ):
        entry.p_best = float(share_best)
    if math.isfinite(verdict.margin):
        verdict.confidence = twoway.probability_within(sample, 0, verdict.margin, verdict.direction)


def _one_seed(verdict: Verdict) -> None:
    """One seed per method: differences between single trials, so no test, no P(best), nothing
    detectable to state."""
    verdict.state = "one seed"
    verdict.detectable = verdict.confidence = math.nan
    for entry in verdict.methods:
        entry.p_best = math.nan
    for entry in verdict.others:
        entry.p = entry.p_holm = entry.detectable = math.nan
        entry.seeds_to_settle = entry.prompt_factor = None
        entry.status = "diverged" if entry.status == "diverged" else "not ranked"


def _finite(value: float) -> float:
    return value if math.isfinite(value) else -math.inf


def _where_it_ran(override: str) -> bool:
    """Whether a command-line override says where or how a trial ran (its seed, sweep name, Hydra's launcher
    and job settings, printing), not what it was: left out of the commands the verdict prints."""
    key = override.split("=", 1)[0].lstrip("+~")
    return key in ("seed", "sweep_name", "leaderboard.print") or key.split("/")[0].split(".")[0] == "hydra"


def _setting_overrides(setting: pd.DataFrame, records: Sequence[TrialRecord]) -> list[str]:
    """The command-line overrides of the setting's first trial, less the ones that say where it ran."""
    first = str(setting["trial_id"].iloc[0])
    for record in records:
        if trial_id(record) == first:
            return [o for o in record.overrides or [] if not _where_it_ran(o)]
    return []


__all__ = [
    "DEFAULT_MARGIN",
    "MARGIN_KEY",
    "STATES",
    "Leaderboard",
    "MethodVerdict",
    "Verdict",
    "VerdictError",
    "check_margin",
    "decide",
    "evidence",
    "margin_of",
    "pool",
    "table",
]
