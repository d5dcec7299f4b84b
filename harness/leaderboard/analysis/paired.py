"""Paired comparisons of two methods that share seeds and test prompts (the Methods table's p-values).

Every trial of one leaderboard is evaluated on the same held-out test prompts with the same sampling stream,
and a seed fixes the data order and LoRA initialisation of every method's trial alike. Two methods at their
chosen settings are compared **paired**: their trials are matched by ``seed``, and for each matched seed the
difference d_s = A_s - B_s of the values that count (:func:`harness.leaderboard.analysis.seeds.contributed`).
As both objectives are means over the same prompts, d_s is the mean over prompts of (A_prompt - B_prompt):
what the two methods share on a prompt (its difficulty, the reference's samples) cancels in it. The test is a
t-test over the n matched seeds of mean(d) with

    Var = s_d² / n + mean(v_s),  v_s = var over prompts of (A_prompt - B_prompt) / P

where v_s, the evaluation noise of d_s, comes from the per-prompt scores that records keep: every test
prompt's (the checkpoint's ``prompt_scores``, the first sample of each prompt: :func:`record_prompt_scores`),
or, in records from before those were kept, the readable samples' (``eval.readable_samples`` prompts:
:func:`prompt_scores`, the first few prompts standing for all of them, a noisy estimate which the seeds-only
floor below bounds); P is the number of test prompts, ``eval_prompts``. One sample per prompt overstates a
prompt mean's spread when a prompt has several (conservative). Where
a pair has no per-prompt scores (a pair with a diverged seed, a score the samples do not carry, no samples)
v_s is the unpaired se_A² + se_B². Like the intervals, the p-value is the larger of this test's (with a
Welch–Satterthwaite df, the evaluation part counted as known) and the seeds-only paired t-test's (n - 1 df).

Paired over seeds because the seed is a block of the design (same data order and initialisation for both
methods): the test is valid whether or not the seeds' effects are shared, and chosen before any value is seen.
Its price is n - 1 degrees of freedom where Welch's test has up to 2n - 2: with 3 seeds and seed effects that
are not shared, it is the less powerful test. A t-test, not a bootstrap over seeds and prompts: with 2 to 5
seeds a bootstrap over seeds has 3 to 126 distinct resamples and understates the spread.
With fewer than two matched seeds the comparison is not paired (the Welch-type test of
:func:`harness.leaderboard.analysis.seeds.compare`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from harness.leaderboard.analysis import seeds
from harness.leaderboard.analysis.frames import trial_id
from harness.records import TrialRecord

PAIRED_PROMPTS, PAIRED_SEEDS, UNPAIRED = "paired (seeds, prompts)", "paired (seeds)", "unpaired"


def prompt_scores(samples: pd.DataFrame, trials: pd.DataFrame, objective: str | None) -> pd.DataFrame:
    """The per-prompt policy scores of ``objective`` at each trial's chosen checkpoint (``trials``' ``step``),
    from the readable samples (:func:`harness.leaderboard.analysis.frames.samples_frame`): columns
    ``trial_id``, ``prompt_index``, ``prompt``, ``score``; empty when the samples carry no such score."""
    column = f"policy_{objective}"
    if objective is None or samples.empty or column not in samples or "step" not in trials:
        return pd.DataFrame(columns=["trial_id", "prompt_index", "prompt", "score"])
    chosen = trials[["trial_id", "step"]].dropna()
    chosen = chosen.assign(step=pd.to_numeric(chosen["step"], errors="coerce"))
    kept = samples.assign(step=pd.to_numeric(samples["step"], errors="coerce")).merge(
        chosen, on=["trial_id", "step"]
    )
    scores = kept[["trial_id", "prompt_index", "prompt"]].assign(
        score=pd.to_numeric(kept[column], errors="coerce")
    )
    return scores.reset_index(drop=True)


def checkpoint_prompt_scores(
    records: Sequence[TrialRecord], objective: str, selection: bool = False
) -> dict[tuple[str, float], np.ndarray]:
    """Every kept per-prompt test score of ``objective`` (the checkpoints' ``prompt_scores``, NaN where a
    prompt has none) by (trial id, checkpoint step); with ``selection``, the selection prompts' scores
    (``checkpoint.selection.prompt_scores``) instead."""
    kept: dict[tuple[str, float], np.ndarray] = {}
    for record in records:
        for checkpoint in record.checkpoints or []:
            source = checkpoint.selection if selection else checkpoint
            values = ((source.prompt_scores if source is not None else None) or {}).get(objective)
            if values:
                scores = [math.nan if v is None else float(v) for v in values]
                kept[(trial_id(record), float(checkpoint.step))] = np.asarray(scores, dtype=float)
    return kept


def record_prompt_scores(
    records: Sequence[TrialRecord], trials: pd.DataFrame, objective: str | None
) -> pd.DataFrame:
    """The per-prompt policy scores of ``objective`` on every test prompt at each trial's chosen checkpoint
    (``trials``' ``step``), from the records' checkpoints (:func:`checkpoint_prompt_scores`), in the columns
    of :func:`prompt_scores` (``prompt`` is empty: the prompts are the board's, the same for every trial);
    trials whose record kept none are left out."""
    columns = ["trial_id", "prompt_index", "prompt", "score"]
    if objective is None or "step" not in trials:
        return pd.DataFrame(columns=columns)
    kept = checkpoint_prompt_scores(records, objective)
    steps = pd.to_numeric(trials["step"], errors="coerce")
    rows = [
        {"trial_id": trial, "prompt_index": i, "prompt": "", "score": float(value)}
        for trial, step in zip(trials["trial_id"], steps, strict=True)
        for i, value in enumerate(kept.get((str(trial), float(step)), []))
    ]
    return pd.DataFrame(rows, columns=columns)


def all_prompt_scores(
    records: Sequence[TrialRecord], samples: pd.DataFrame, trials: pd.DataFrame, objective: str | None
) -> pd.DataFrame:
    """Every trial's per-prompt scores for the paired tests: its record's scores on every test prompt
    (:func:`record_prompt_scores`), else its readable samples' (:func:`prompt_scores`)."""
    full = record_prompt_scores(records, trials, objective)
    readable = prompt_scores(samples, trials, objective)
    readable = readable[~readable["trial_id"].isin(set(full["trial_id"]))]
    parts = [frame for frame in (full, readable) if not frame.empty]
    return pd.concat(parts, ignore_index=True) if parts else full


def _prompt_var(a: pd.DataFrame | None, b: pd.DataFrame | None, prompts: float) -> float:
    """var over shared prompts of (A - B) / ``prompts``; NaN unless both share two scored prompts or more."""
    if a is None or b is None:
        return math.nan
    both = a.merge(b, on="prompt_index", suffixes=("_a", "_b"))
    if (both["prompt_a"] != both["prompt_b"]).any():  # not the same prompts: nothing to pair on
        return math.nan
    diff = (both["score_a"] - both["score_b"]).to_numpy(dtype=float)
    diff = diff[np.isfinite(diff)]
    if len(diff) < 2:
        return math.nan
    return float(diff.var(ddof=1)) / (prompts if math.isfinite(prompts) and prompts > 0 else len(diff))


def _by_seed(group: pd.DataFrame, values: pd.Series) -> dict[object, tuple[pd.Series, float]]:
    return {row["seed"]: (row, float(values.loc[i])) for i, row in group.iterrows()}


def _se2(row: pd.Series, se_column: str | None) -> float:
    value = pd.to_numeric(pd.Series([row.get(se_column) if se_column else None]), errors="coerce").iloc[0]
    return float(value) ** 2 if math.isfinite(value) else math.nan


def pairs(
    a: tuple[pd.DataFrame, pd.Series],
    b: tuple[pd.DataFrame, pd.Series],
    se_column: str | None,
    scores: Mapping[object, pd.DataFrame],
) -> tuple[np.ndarray, np.ndarray, bool] | None:
    """The matched seeds of two settings (each its trials from
    :func:`harness.leaderboard.analysis.seeds.seeded_pool` and their counted values): the differences d_s,
    each one's evaluation variance v_s (NaN unknown) and whether every v_s came from per-prompt scores
    (``scores``: per trial id, its :func:`prompt_scores` rows); None with fewer than two matched seeds."""
    if "seed" not in a[0] or "seed" not in b[0]:
        return None
    left, right = _by_seed(*a), _by_seed(*b)
    common = [s for s in left if s in right and math.isfinite(left[s][1]) and math.isfinite(right[s][1])]
    if len(common) < 2:
        return None
    diffs, variances, per_prompt = [], [], True
    for seed in common:
        (row_a, value_a), (row_b, value_b) = left[seed], right[seed]
        diffs.append(value_a - value_b)
        v = math.nan
        if not (row_a["_diverged"] or row_b["_diverged"]):
            prompts = pd.to_numeric(pd.Series([row_a.get("eval_prompts")]), errors="coerce").iloc[0]
            v = _prompt_var(
                scores.get(row_a.get("trial_id")), scores.get(row_b.get("trial_id")), float(prompts)
            )
        if math.isnan(v):
            per_prompt = False
            parts = [x for x in (_se2(row_a, se_column), _se2(row_b, se_column)) if not math.isnan(x)]
            v = sum(parts) if parts else math.nan
        variances.append(v)
    return np.array(diffs), np.array(variances), per_prompt


def paired_p(diffs: np.ndarray, variances: np.ndarray) -> float:
    """Two-sided p-value of the paired test of mean(``diffs``) (see the module docstring): the larger of the
    seeds-only paired t-test's and the test's with mean(``variances``) added (when some is known)."""
    n, mean = len(diffs), float(np.mean(diffs))
    seed_var = float(np.var(diffs, ddof=1)) / n
    p = seeds.two_sided(mean, seed_var, n - 1)
    known = variances[np.isfinite(variances)]
    if len(known):
        var = seed_var + float(known.mean())
        df = math.inf if seed_var == 0 else (n - 1) * (var / seed_var) ** 2
        p = max(p, seeds.two_sided(mean, var, df))
    return p


def compare(
    a: tuple[pd.DataFrame, pd.Series, seeds.Estimate],
    b: tuple[pd.DataFrame, pd.Series, seeds.Estimate],
    se_column: str | None,
    scores: Mapping[object, pd.DataFrame],
) -> tuple[float, str]:
    """The p-value of A against B (each: its trials, counted values and :class:`seeds.Estimate`) and the test
    used: paired over seeds and prompts, over seeds (some pair without per-prompt scores), or unpaired
    (:func:`harness.leaderboard.analysis.seeds.compare`) with fewer than two matched seeds."""
    matched = pairs(a[:2], b[:2], se_column, scores)
    if matched is None:
        return seeds.compare(a[2], b[2]), UNPAIRED
    diffs, variances, per_prompt = matched
    return paired_p(diffs, variances), PAIRED_PROMPTS if per_prompt else PAIRED_SEEDS


def scores_by_trial(scores: pd.DataFrame | None) -> dict[object, pd.DataFrame]:
    """``scores`` (:func:`prompt_scores`) split by trial id."""
    if scores is None or scores.empty:
        return {}
    return {t: g[["prompt_index", "prompt", "score"]] for t, g in scores.groupby("trial_id", sort=False)}
