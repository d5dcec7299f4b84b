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
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from harness.config.sweep_checks import DEFAULT_VERDICT_MARGIN, VERDICT_MARGIN_KEY, check_verdict_margin
from harness.errors import ConfigError
from harness.leaderboard.analysis import conclusions, knobs, paired, seeds, twoway
from harness.leaderboard.analysis.frames import ONE_SETTING, format_value, reference_values, setting_text

if TYPE_CHECKING:
    from harness.leaderboard.analysis.columns import Declarations
    from harness.records import TrialRecord

DEFAULT_MARGIN = DEFAULT_VERDICT_MARGIN
MARGIN_KEY = VERDICT_MARGIN_KEY
STATES = ("decided", "undecided", "one seed", "one method", "none")
# Overrides that say where or how a trial ran, not what it was: left out of the commands the verdict prints.
_RUN_KEYS = ("seed", "sweep_name", "hydra", "+hydra", "++hydra", "hydra/launcher", "leaderboard.print")


class Leaderboard(Protocol):
    """What a verdict reads of a :class:`harness.leaderboard.board.Leaderboard` (the analysis imports nothing
    of the leaderboard outside itself)."""

    title: str
    records: list[TrialRecord]
    trials: pd.DataFrame
    checkpoints: pd.DataFrame
    swept: list[str]
    objective_name: str | None
    objective_direction: str
    declarations: Declarations

    def baseline(self) -> tuple[float | None, float | None]: ...  # noqa: D102 (the board's)

    def objective_se_column(self) -> str | None: ...  # noqa: D102 (the board's)


class VerdictError(ConfigError, ValueError):
    """A verdict was asked of something that cannot give one (one line, with the fix): a user error, so the
    command line and the end of a multirun report it as one (exit status 2)."""


@dataclass
class MethodVerdict:
    """One method in the verdict: its chosen setting (text and overrides), seeds, diverged seeds, selection
    mean, test mean with its 95% interval, the difference from the recommended method (recommended minus
    this; its standard error, Holm-adjusted p, the smallest difference detectable at 80% power), its status,
    P(best) and the trials behind it."""

    method: str
    setting: str
    overrides: list[str]
    n_seeds: int
    diverged: int
    selection_mean: float
    selected_on: str
    test_mean: float
    test_low: float
    test_high: float
    status: str = "recommended"
    diff: float = math.nan
    diff_se: float = math.nan
    p: float = math.nan
    p_holm: float = math.nan
    detectable: float = math.nan
    p_best: float = math.nan
    seeds_to_settle: int | None = None
    prompt_factor: float | None = None
    trials: list[str] = field(default_factory=list)


@dataclass
class Verdict:
    """The verdict of a leaderboard (see the module docstring); :meth:`to_dict` is ``verdict.json``."""

    state: str
    objective: str | None
    direction: str = "maximize"
    recommended: MethodVerdict | None = None
    others: list[MethodVerdict] = field(default_factory=list)
    margin_share: float = DEFAULT_MARGIN
    margin: float = math.nan
    base: float | None = None
    gain: float = math.nan
    gain_low: float = math.nan
    gain_high: float = math.nan
    detectable: float = math.nan
    confidence: float = math.nan
    test: str = ""
    commands: list[str] = field(default_factory=list)
    headline: str = ""
    details: list[str] = field(default_factory=list)

    @property
    def methods(self) -> list[MethodVerdict]:
        """The recommended method first, then the others."""
        return [*([self.recommended] if self.recommended else []), *self.others]

    def to_dict(self) -> dict[str, Any]:
        """The verdict as plain JSON-able data (NaN as None)."""
        return _clean(asdict(self) | {"methods": [asdict(m) for m in self.methods]})

    def csv_row(self) -> dict[str, Any]:
        """One flat row (``verdict.csv``): the state, the recommended method, setting, test mean and interval,
        gain, margin, detectable difference, confidence and each method's status."""
        rec = self.recommended
        row: dict[str, Any] = {
            "state": self.state,
            "objective": self.objective,
            "recommended": rec.method if rec else None,
            "setting": rec.setting if rec else None,
            "test_mean": rec.test_mean if rec else None,
            "test_low": rec.test_low if rec else None,
            "test_high": rec.test_high if rec else None,
            "gain_over_base": self.gain,
            "margin": self.margin,
            "detectable": self.detectable,
            "confidence": self.confidence,
        }
        for m in self.others:
            row[f"status_{m.method}"] = m.status
        return _clean(row)


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def margin_of(records: Sequence[TrialRecord]) -> float:
    """The margin share the records' config asks for (``leaderboard.verdict_margin``), else the default."""
    for record in records:
        board = (record.config or {}).get("leaderboard") or {}
        if board.get("verdict_margin") is not None:
            return check_margin(board["verdict_margin"])
    return DEFAULT_MARGIN


def check_margin(value: Any, key: str = MARGIN_KEY) -> float:
    """``value`` as a margin share in (0, 1), else one line naming the problem and the fix (the check the
    setting's declaration runs before any compute: :func:`harness.config.sweep_checks.check_verdict_margin`).

    :raises VerdictError: not a number strictly between 0 and 1."""
    try:
        return check_verdict_margin(value, key)
    except ConfigError as exc:
        raise VerdictError(str(exc)) from None


# -- evidence -------------------------------------------------------------------------------------------


def _selection_prompt_scores(
    records: Sequence[TrialRecord], objective: str
) -> dict[tuple[str, float], np.ndarray]:
    """Every kept per-prompt *selection* score of ``objective`` by (trial id, checkpoint step)."""
    from harness.leaderboard.analysis.frames import trial_id

    kept: dict[tuple[str, float], np.ndarray] = {}
    for record in records:
        for checkpoint in record.checkpoints or []:
            selection = checkpoint.selection
            values = ((selection.prompt_scores or {}) if selection is not None else {}).get(objective)
            if values:
                scores = [math.nan if v is None else float(v) for v in values]
                kept[(trial_id(record), float(checkpoint.step))] = np.asarray(scores, dtype=float)
    return kept


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
        return _finish(Verdict("none", objective, direction, margin_share=share), board)
    declared = board.declarations
    test_base, selection_base = reference_values(board.records, objective, declared)
    base_se = board.baseline()[1]
    se_column = board.objective_se_column()
    measured = conclusions.measured_selection(board.checkpoints, objective)
    if conclusions.SELECTION in trials:
        trials = trials.assign(
            **{
                conclusions.SELECTION: trials[conclusions.SELECTION].where(
                    trials["trial_id"].isin(list(measured))
                )
            }
        )
    keys = seeds.setting_keys(trials, board.swept)
    names = knobs.paper_names(board.records)
    sign = -1.0 if direction == "minimize" else 1.0
    test_rows = paired.checkpoint_prompt_scores(board.records, objective)
    chosen: list[tuple[MethodVerdict, twoway.Evidence, bool]] = []
    for method, group in trials.groupby("method", sort=False):
        counts = group.groupby(keys, dropna=False)["trial_id"].transform("size")
        group = group[counts == counts.max()]
        key, setting, selected_on = conclusions.best_setting(
            group, keys, direction, (test_base, selection_base)
        )
        values = key if isinstance(key, tuple) else (key,)
        column, base = (
            (conclusions.SELECTION, selection_base)
            if selected_on == conclusions.ON_SELECTION
            else ("objective", test_base)
        )
        selection_mean = float(seeds.contributed(setting, column, base, direction).mean())
        estimate = seeds.setting_estimate(setting, "objective", se_column, test_base, direction)
        low, high = _interval(estimate)
        k = int(setting["_diverged"].sum())
        entry = MethodVerdict(
            method=str(method),
            setting=setting_text(keys, values, names.get(str(method))),
            overrides=_setting_overrides(setting, board.records),
            n_seeds=len(setting),
            diverged=k,
            selection_mean=selection_mean,
            selected_on=selected_on,
            test_mean=estimate.mean,
            test_low=low,
            test_high=high,
            trials=[str(t) for t in setting["trial_id"]],
        )
        ev = evidence(setting, "objective", test_base, direction, test_rows, se_column)
        chosen.append((entry, ev, k == len(setting)))
    alive = [c for c in chosen if not c[2]] or chosen
    best = max(alive, key=lambda c: (_finite(sign * c[0].selection_mean), -c[0].diverged))
    verdict = Verdict("decided", objective, direction, best[0], margin_share=share, base=test_base)
    verdict.test = (
        "paired over seeds and prompts (two-way: seeds and test prompts as crossed random effects), "
        "Holm-adjusted; tie: two one-sided tests"
    )
    rec, rec_ev = best[0], best[1]
    if test_base is not None and math.isfinite(rec.test_mean):
        verdict.gain = sign * (rec.test_mean - test_base)
        half = (rec.test_high - rec.test_mean) if math.isfinite(rec.test_high) else math.nan
        base_half = 1.96 * base_se if base_se is not None else 0.0
        spread = math.sqrt(half**2 + base_half**2) if math.isfinite(half) else math.nan
        verdict.gain_low, verdict.gain_high = verdict.gain - spread, verdict.gain + spread
    verdict.margin = share * abs(verdict.gain) if math.isfinite(verdict.gain) else math.nan
    others = [c for c in chosen if c is not best]
    verdict.others = [c[0] for c in others]
    if not others:
        verdict.state = "one method"
        return _finish(verdict, board)
    diffs = [twoway.difference(rec_ev, ev) for _, ev, _ in others]
    pvalues = [twoway.p_value(d) for d in diffs]
    holm = seeds.holm(pvalues)
    for (entry, _, dead), d, p, q in zip(others, diffs, pvalues, holm, strict=True):
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
    evs = [rec_ev, *(ev for _, ev, _ in others)]
    if all(e.n for e in evs):
        sample = twoway.draws(evs)
        shares = twoway.probability_best(sample, direction)
        for entry, share_best in zip([rec, *verdict.others], shares, strict=True):
            entry.p_best = float(share_best)
        if math.isfinite(verdict.margin):
            verdict.confidence = twoway.probability_within(sample, 0, verdict.margin, direction)
    one_seed = max(c[1].n for c in chosen) < 2 or not any(d.seeds_known for d in diffs)
    if one_seed:  # differences between single trials: no test, no P(best), nothing detectable to state
        verdict.state = "one seed"
        verdict.detectable = verdict.confidence = math.nan
        for entry in [rec, *verdict.others]:
            entry.p_best = math.nan
        for entry in verdict.others:
            entry.p = entry.p_holm = entry.detectable = math.nan
            entry.seeds_to_settle = entry.prompt_factor = None
            entry.status = "diverged" if entry.status == "diverged" else "not ranked"
    elif any(e.status in ("undecided", "ahead") for e in verdict.others):
        verdict.state = "undecided"
    return _finish(verdict, board)


def _finite(value: float) -> float:
    return value if math.isfinite(value) else -math.inf


def _setting_overrides(setting: pd.DataFrame, records: Sequence[TrialRecord]) -> list[str]:
    """The command-line overrides of the setting's first trial, less the ones that say where it ran."""
    first = str(setting["trial_id"].iloc[0])
    for record in records:
        from harness.leaderboard.analysis.frames import trial_id

        if trial_id(record) == first:
            return [o for o in record.overrides or [] if o.split("=", 1)[0].lstrip("+") not in _RUN_KEYS]
    return []


# -- the words ------------------------------------------------------------------------------------------


def _num(value: float) -> str:
    return format_value(value) if math.isfinite(value) else "n/a"


def _commands(verdict: Verdict, board: Leaderboard, wanted: Mapping[str, int]) -> list[str]:
    """The commands that run ``wanted`` seeds in all for each named method at its chosen setting (new seeds
    only, in a sweep of their own), and the leaderboard over the old and new trials."""
    by_method = {m.method: m for m in verdict.methods}
    groups: dict[tuple[str, ...], list[str]] = {}
    for method in wanted:
        rest = tuple(o for o in by_method[method].overrides if not o.startswith("method="))
        groups.setdefault(rest, []).append(method)
    sweeps = sorted({str((r.sweep or {}).get("dir") or "") for r in board.records} - {""})
    have = max((m.n_seeds for m in verdict.methods), default=1)
    used = {(r.hyperparameters or {}).get("seed") for r in board.records}
    new = [s for s in range(0, 10_000) if s not in used][: max(max(wanted.values()) - have, 1)]
    name = f"{board.title}-seeds"
    lines = [
        shlex.join(
            [
                "python",
                "-m",
                "harness",
                "-m",
                f"method={','.join(methods)}",
                *rest,
                f"seed={','.join(map(str, new))}",
                f"sweep_name={name}",
            ]
        )
        for rest, methods in groups.items()
    ]
    lines.append(shlex.join(["python", "-m", "harness.leaderboard", *sweeps, f"multirun/{name}"]))
    return lines


def _finish(verdict: Verdict, board: Leaderboard) -> Verdict:
    """Fill the headline, details and commands."""
    rec = verdict.recommended
    obj = verdict.objective or "the objective"
    if verdict.state == "none" or rec is None:
        verdict.headline = "No verdict: no completed trial has a value of the objective."
        return verdict
    chosen = (
        "chosen on the selection prompts"
        if rec.selected_on == conclusions.ON_SELECTION
        else "chosen on the test prompts (no selection prompts were measured: this flatters it)"
    )
    setting = f" ({rec.setting})" if rec.setting != ONE_SETTING else ""
    interval = f" [{_num(rec.test_low)}, {_num(rec.test_high)}]" if math.isfinite(rec.test_low) else ""
    gain = (
        f", {'+' if verdict.gain >= 0 else ''}{_num(verdict.gain)} [{_num(verdict.gain_low)}, "
        f"{_num(verdict.gain_high)}] over the base model ({_num(verdict.base or math.nan)})"
        if math.isfinite(verdict.gain)
        else ""
    )
    lead = f"**{rec.method}**{setting}: test {obj} {_num(rec.test_mean)}{interval}{gain}, {chosen}"
    seeds_word = f"{rec.n_seeds} seed{'s' if rec.n_seeds != 1 else ''}"
    details: list[str] = []
    if verdict.state == "one method":
        verdict.headline = f"One method only: {lead} ({seeds_word}). Nothing to compare it with."
    elif verdict.state == "one seed":
        methods = [m.method for m in verdict.methods]
        verdict.headline = (
            f"No verdict: one seed per method ranks trials, not methods; the seed-to-seed spread is "
            f"unmeasured. Leading on the selection prompts: {lead}."
        )
        wanted = dict.fromkeys(methods, 5)
        verdict.commands = _commands(verdict, board, wanted)
        details.append("To rank the methods, run each with 5 seeds (the trials already run are kept):")
    else:
        behind = [m for m in verdict.others if m.status == "behind"]
        tied = [m for m in verdict.others if m.status == "tied"]
        open_ = [m for m in verdict.others if m.status in ("undecided", "ahead")]
        dead = [m for m in verdict.others if m.status == "diverged"]
        parts = []
        if behind:
            worst = max(m.p_holm for m in behind)
            parts.append(f"{_names(behind)} behind (Holm p ≤ {_p(worst)})")
        if tied:
            parts.append(f"{_names(tied)} tied within the margin ± {_num(verdict.margin)}")
        if dead:
            parts.append(f"{_names(dead)} diverged in every seed")
        if open_:
            parts.append(f"{_names(open_)} undecided")
        confidence = (
            f"; confidence {verdict.confidence:.2f} that it is best or within the margin of the best"
            if math.isfinite(verdict.confidence)
            else ""
        )
        if verdict.state == "decided":
            verdict.headline = f"Ship {lead}. {_sentence(parts)}{confidence}."
        else:
            verdict.headline = (
                f"Undecided. Leading on the selection prompts: {lead}. {_sentence(parts)}{confidence}."
            )
            wanted = {m.method: m.seeds_to_settle for m in open_ if m.seeds_to_settle}
            if wanted:
                total = max(wanted.values())
                verdict.commands = _commands(verdict, board, {rec.method: total, **wanted})
                details.append(
                    f"To settle it: about {total} seeds in all for {rec.method} and {_names(open_)} "
                    f"({total - rec.n_seeds} more each; the trials already run are kept):"
                )
            for m in open_:
                if m.seeds_to_settle is None:
                    more = (
                        f"about {m.prompt_factor:g}x the test prompts (with 100 seeds)"
                        if m.prompt_factor
                        else "more seeds and prompts than is practical: the two are likely closer than the "
                        "margin; a wider margin would call them tied"
                    )
                    details.append(f"{m.method} against {rec.method}: seeds alone cannot settle it; {more}.")
                if m.status == "ahead":
                    details.append(
                        f"{m.method} is ahead of {rec.method} on the test prompts although behind on the "
                        "selection prompts: the two splits disagree; more selection prompts or seeds would "
                        "tell."
                    )
    if verdict.state not in ("one method",) and math.isfinite(verdict.detectable):
        details.insert(
            0,
            "With these seeds and prompts the smallest difference this study detects (80% power, "
            f"α = 0.05) is {_num(verdict.detectable)}, against a gain of {_num(verdict.gain)} over the base "
            f"model; the margin of a tie is {verdict.margin_share:g} x that gain = {_num(verdict.margin)} "
            f"({MARGIN_KEY}).",
        )
    verdict.details = details
    return verdict


def _sentence(parts: Sequence[str]) -> str:
    return "; ".join(parts)  # each part opens with a method name: its case is kept


def _names(entries: Sequence[MethodVerdict]) -> str:
    names = [m.method for m in entries]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _p(value: float) -> str:
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def table(verdict: Verdict) -> pd.DataFrame:
    """One row per method: status, setting, seeds, selection mean, test mean and interval, difference from
    the recommended method with its Holm-adjusted p, detectable difference, P(best)."""
    rows = [
        {
            "method": m.method,
            "status": m.status,
            "setting": m.setting,
            "seeds": f"{m.n_seeds}" + (f" ({m.diverged} diverged)" if m.diverged else ""),
            "selection": m.selection_mean,
            "test": m.test_mean,
            "test_95": f"[{_num(m.test_low)}, {_num(m.test_high)}]" if math.isfinite(m.test_low) else "",
            "behind_by": m.diff,
            "p_holm": m.p_holm,
            "detectable": m.detectable,
            "p_best": m.p_best,
        }
        for m in verdict.methods
    ]
    return pd.DataFrame(rows)


__all__ = [
    "DEFAULT_MARGIN",
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
