"""The leaderboard: a pure function of trial records, rebuilt from disk at any time.

:func:`load_leaderboard` reads every ``trial.json`` under the given directories (corrupt or foreign records
are skipped with a warning) and :func:`build` ranks them: each trial's best checkpoint within the KL budget
(:mod:`harness.leaderboard.analysis.ranking`) by the objective, the Pareto front, repeated settings over seeds
(:mod:`harness.leaderboard.analysis.seeds`), failed and pruned trials with their reasons. Metric columns come
from what the evaluators declared (:mod:`harness.leaderboard.analysis.columns`). Records compared on different
model, data or evaluation settings are never ranked together (:mod:`harness.leaderboard.analysis.merging`).
The reports are written by :mod:`harness.leaderboard.reports`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness.errors import ConfigError
from harness.leaderboard.analysis import (
    budgets,
    caveats,
    columns,
    conclusions,
    knobs,
    merging,
    paired,
    problems,
    ranking,
    seeds,
    tables,
)
from harness.leaderboard.analysis import frames as board_frames
from harness.leaderboard.analysis import matched_kl as matched
from harness.leaderboard.analysis import verdict as verdicts
from harness.records import TrialRecord

# Table columns that are bookkeeping, never cells (the reason, the command, ... have their own places).
HIDDEN = (
    "reason",
    "overrides",
    "record",
    "eval_prompts",
    "status",
    "within_budget",
    "objective",
    "score",
    "final",
    "base",
    "selection_objective",
)
# Per-trial columns shown after the metrics: the baseline, flags and measured cost.
TRAILING = ("pareto", "health", "train_s", "peak_mem_mb", "models", "trial_id")
HIDDEN += budgets.COLUMNS  # each trial's compute budget: in leaderboard.csv and (per method) the cost table


@dataclass
class Leaderboard:
    """A ranked leaderboard and the records it was built from; every table is a pandas DataFrame.

    Attributes:
        trials: one row per trial at its best checkpoint within the KL budget, ranked; failed and pruned last.
        checkpoints: one row per evaluated checkpoint of every trial, every metric.
        methods: each method's best trial.
        seeds: one row per setting run with several seeds (mean, 95% CI, significance), else empty.
        cost: measured wall time, peak memory and models in memory per method.
        swept: the hyperparameters that vary between the trials of one method (the sweep's), shown as columns.
        objective_name: the column trials are ranked by (None when nothing ranks them).
        kl_budget: the KL budget in nats per sequence (None: no budget).
        groups: records from incompatible setups: their setting keys, trial counts and differing settings
            (the tables are then empty).
        importances: for Optuna sweeps, parameter importances per method (:mod:`harness.sweep.results`).
        studies: for Optuna sweeps, each study's name, storage, objectives and trial counts by state.
        settings: one row per method: its hyperparameters that are not swept (``key=value`` text).
        declarations: the records' metric declarations (:mod:`harness.leaderboard.analysis.columns`).
        objective_direction: ``"maximize"`` or ``"minimize"``: how the objective ranks.
        objective_auto: whether the objective was chosen by ``auto`` rather than named.
        samples: one row per readable sample of every checkpoint that kept some (prompt, completions, scores:
            :func:`harness.leaderboard.analysis.frames.samples_frame`), else empty.
        method_summary: with seeds, each method at its best setting: test mean, 95% CI, diverged seeds,
            Holm-corrected comparisons with the best (:mod:`harness.leaderboard.analysis.conclusions`).
        problem: why the trials are unranked when the named objective has no value in any
            (:func:`harness.leaderboard.analysis.problems.objective_problem`).
        verdict_margin: the verdict's margin share (None: the records' ``leaderboard.verdict_margin``).
    """

    title: str
    records: list[TrialRecord]
    trials: pd.DataFrame
    checkpoints: pd.DataFrame
    methods: pd.DataFrame
    seeds: pd.DataFrame
    cost: pd.DataFrame
    swept: list[str]
    objective_name: str | None
    kl_budget: float | None
    groups: dict[str, Any] = field(default_factory=dict)
    importances: pd.DataFrame = field(default_factory=pd.DataFrame)
    studies: list[dict[str, Any]] = field(default_factory=list)
    settings: pd.DataFrame = field(default_factory=pd.DataFrame)
    declarations: columns.Declarations = field(default_factory=dict)
    objective_direction: str = "maximize"
    samples: pd.DataFrame = field(default_factory=pd.DataFrame)
    objective_auto: bool = True
    method_summary: pd.DataFrame = field(default_factory=pd.DataFrame)
    problem: str | None = None
    verdict_margin: float | None = None

    @property
    def table(self) -> pd.DataFrame:
        """The ranked trials table (alias of ``trials``)."""
        return self.trials

    @property
    def completed(self) -> pd.DataFrame:
        """Rows of completed trials, ranked."""
        return self.trials[self.trials["status"] == "completed"] if not self.trials.empty else self.trials

    @property
    def matched_kl(self) -> pd.DataFrame:
        """The objective on each method's reward-vs-KL frontier at common KL values
        (``leaderboard.matched_kl``): each seed's points chosen on selection values, the test values read
        there, with intervals, marks and what each method trained on
        (:mod:`harness.leaderboard.analysis.matched_kl`); empty without an objective."""
        return matched.matched_kl_table(
            self.checkpoints,
            self.records,
            self.objective_name,
            self.objective_direction,
            self.declarations,
            swept=self.swept,
        )

    @property
    def no_effect(self) -> pd.DataFrame:
        """Swept values that gave the same run
        (:func:`harness.leaderboard.analysis.caveats.find_no_effect`)."""
        return caveats.find_no_effect(self.records, self.checkpoints, self.declarations)

    @property
    def budget_note(self) -> str | None:
        """One line when the methods' training budgets differ by more than 10%
        (:mod:`harness.leaderboard.analysis.budgets`)."""
        return budgets.budget_note(self.cost, self.completed)

    @property
    def base_column(self) -> str | None:
        """``base_<objective>``: the reference (untrained) model's value of the objective, the bar to beat."""
        return f"base_{self.objective_name}" if self.objective_name else None

    def baseline(self) -> tuple[float | None, float | None]:
        """The reference (untrained) model's value of the objective and its standard error, from the first
        record that has them (every trial shares the reference evaluation); None where unknown."""
        if not self.objective_name:
            return None, None
        declaration = (
            columns.by_column(self.declarations, [self.objective_name]).get(self.objective_name) or {}
        )
        se_column = (
            columns.column_of(str(declaration["se"]), self.declarations) if declaration.get("se") else None
        )
        for record in self.records:
            row = columns.metric_row(record.reference_metrics or {}, self.declarations)
            value = row.get(self.objective_name)
            if value is not None and not (isinstance(value, float) and math.isnan(value)):
                return float(value), (float(row[se_column]) if se_column in row else None)
        return None, None

    def objective_se_column(self) -> str | None:
        """The trials' column of the objective's per-trial standard error (e.g. ``gold_se``), or None."""
        return columns.se_column_of(self.objective_name, self.declarations, list(self.trials.columns))

    @functools.cached_property
    def decided(self) -> verdicts.Verdict:
        """What to ship and how sure (:func:`harness.leaderboard.analysis.verdict.decide`), decided once."""
        return verdicts.decide(self, self.verdict_margin)

    @property
    def verdict(self) -> str:
        """The method-level conclusions in one sentence ('' without seeds; :func:`conclusions.verdict`)."""
        return conclusions.verdict(self.method_summary, self.objective_se_column())

    def objective_help(self) -> str | None:
        """What the objective measures (its declared help), or None."""
        if not self.objective_name:
            return None
        declaration = (
            columns.by_column(self.declarations, [self.objective_name]).get(self.objective_name) or {}
        )
        return declaration.get("help")

    @property
    def swept_note(self) -> str:
        """What the swept hyperparameter columns mean for the methods whose papers name them otherwise (''
        when none does; :func:`knobs.columns_note`)."""
        return knobs.columns_note(knobs.paper_names(self.records), self.swept)

    @property
    def table_notes(self) -> list[str]:
        """Sentences that belong under the ranked trials: :attr:`swept_note`, and what a negative KL means
        when a completed trial shows one."""
        kl = pd.to_numeric(self.completed["kl"], errors="coerce") if "kl" in self.completed else pd.Series()
        negative = kl[kl < 0]
        note = (
            f"A negative `kl` ({len(negative)} trial{'s' if len(negative) > 1 else ''}, down "
            f"to {negative.min():.3g}) is sampling noise around 0: the estimate (the mean "
            "log-ratio of the policy's sampled completions) is unbiased, not non-negative; "
            "read it as no measurable change from the reference."
            if len(negative)
            else ""
        )
        return [n for n in (self.swept_note, note) if n]

    def notes(self) -> dict[str, str]:
        """The meaning of each metric column, from the declarations (for glossaries and tooltips); a standard
        error a declaration names without declaring it is the standard error of its metric."""
        metric_columns = [*self.checkpoints.columns, *self.trials.columns]
        notes = {
            c: str(d["help"])
            for c, d in columns.by_column(self.declarations, metric_columns).items()
            if d.get("help")
        }
        for column, se in columns.undeclared_se(self.declarations, metric_columns, metric_columns).items():
            notes[se] = f"standard error of {column}"
        if self.base_column:
            notes[self.base_column] = (
                f"{self.objective_name} of the reference (untrained) model on the same prompts: "
                "the bar to beat"
            )
        return notes

    def shown(self, df: pd.DataFrame) -> pd.DataFrame:
        """The displayed columns of a trials-like table: rank, method, the swept hyperparameters, step, the
        objective, the other headline metrics (each with its standard error when its declaration names one
        that is not declared itself), the baseline, flags and cost; bookkeeping, non-headline metrics and
        all-empty columns left out (they are in the CSV files)."""
        if df.empty:
            return df
        lead = [c for c in ("rank", "method", *self.swept, "step") if c in df.columns]
        trailing = [c for c in (self.base_column, *TRAILING) if c and c in df.columns]
        metric_columns = [c for c in df.columns if c not in (*lead, *trailing, *HIDDEN)]
        headline = columns.headline_columns(self.declarations, metric_columns)
        if self.objective_name in df.columns:
            headline = [self.objective_name, *(c for c in headline if c != self.objective_name)]
        se = columns.undeclared_se(self.declarations, headline, list(df.columns))  # next to its metric
        headline = [x for c in headline for x in ((c, se[c]) if c in se else (c,))]
        return df[list(dict.fromkeys([*lead, *headline, *trailing]))].dropna(axis=1, how="all")


def _empty(
    title: str,
    records: list[TrialRecord],
    objective: str | None,
    kl_budget: float | None,
    groups: dict[str, Any] | None = None,
) -> Leaderboard:
    e = pd.DataFrame()
    return Leaderboard(title, records, e, e, e, e, e, [], objective, kl_budget, groups or {})


def build(
    records: Sequence[TrialRecord | Mapping[str, Any]],
    title: str = "leaderboard",
    objective: str = "auto",
    kl_budget: float | None = ranking.DEFAULT_KL_BUDGET,
) -> Leaderboard:
    """The leaderboard of ``records`` (see :class:`Leaderboard`); a mapping is read as a record of the current
    schema (:meth:`harness.records.TrialRecord.from_dict`).

    :param objective: ``auto`` or a metric the records' evaluators declare (its key or column); one declared
        but measured by no checkpoint leaves the trials unranked, with :attr:`Leaderboard.problem` saying so.
    :raises ConfigError: an invalid KL budget, or an objective no record declares or measures.
    """
    if kl_budget is not None and (not isinstance(kl_budget, (int, float)) or kl_budget <= 0):
        raise ConfigError(
            f"leaderboard.kl_budget={kl_budget!r} is invalid; use a number of nats > 0, or null."
        )
    typed = [r if isinstance(r, TrialRecord) else TrialRecord.from_dict(r) for r in records]
    if not typed:
        return _empty(title, typed, None, kl_budget)
    groups = merging.group_records(typed)
    if len(groups) > 1:
        return _empty(title, typed, None, kl_budget, _setups(groups))
    declared = columns.declarations(typed)
    swept = board_frames.varying_hyperparameters(typed)
    checkpoints = board_frames.checkpoints_frame(typed, swept, declared)
    name, problem = problems.resolve_objective(checkpoints, objective, typed, declared)
    direction = columns.direction_of(name, declared)
    checkpoints = ranking.annotate(checkpoints, name, kl_budget, direction)
    trials = tables.trials_table(typed, checkpoints, swept, declared, name)
    trials = caveats.flag_trials(
        budgets.add_to_trials(trials, typed), caveats.find_no_effect(typed, checkpoints, declared)
    )
    done = trials[trials["status"] == "completed"]
    methods = (
        done.sort_values("rank").groupby("method", sort=False).head(1).reset_index(drop=True)
        if not done.empty
        else pd.DataFrame()
    )
    se, kl_se = (columns.se_column_of(c, declared, list(trials.columns)) for c in (name, "kl"))
    samples, base = board_frames.samples_frame(typed), board_frames.reference_values(typed, name, declared)
    return Leaderboard(
        title,
        typed,
        trials,
        checkpoints,
        methods,
        seeds.aggregate_seeds(trials, swept, direction, se, kl_se, base[0]),
        tables.cost_table(trials),
        swept,
        name,
        kl_budget,
        settings=caveats.with_loss_notes(board_frames.method_settings(typed, swept), typed),
        declarations=declared,
        objective_direction=direction,
        objective_auto=objective in (None, "auto"),
        samples=samples,
        method_summary=_method_summary(typed, trials, checkpoints, swept, name, direction, se, base, samples),
        problem=problem,
    )


def _setups(groups: dict[str, list[TrialRecord]]) -> dict[str, Any]:
    """What the report of records from several setups says: each setup's trial count and trials, and the
    settings that differ."""
    return {
        "counts": {k: len(v) for k, v in groups.items()},
        "differ": merging.differing_settings(groups),
        "trials": {k: [board_frames.trial_id(r) for r in v] for k, v in groups.items()},
    }


def _method_summary(
    records: list[TrialRecord],
    trials: pd.DataFrame,
    checkpoints: pd.DataFrame,
    swept: list[str],
    objective: str | None,
    direction: str,
    se: str | None,
    baselines: tuple[float | None, float | None],
    samples: pd.DataFrame,
) -> pd.DataFrame:
    """The method-level conclusions (:func:`harness.leaderboard.analysis.conclusions.method_summary`), with
    the reference's values that diverged seeds count at most, the per-prompt scores for the paired tests
    (every test prompt's where kept, else the readable samples') and what each method trained on."""
    if not objective:
        return pd.DataFrame()
    extra = {"baselines": baselines, "trains_on": matched.trains_on(records, objective)}
    scores = paired.all_prompt_scores(records, samples, trials, objective)
    measured, names = conclusions.measured_selection(checkpoints, objective), knobs.paper_names(records)
    return conclusions.method_summary(
        trials, swept, direction, se, measured, names, prompt_scores=scores, **extra
    )


def load_leaderboard(
    paths: Iterable[Path | str],
    title: str | None = None,
    objective: str = "auto",
    kl_budget: float | None = ranking.DEFAULT_KL_BUDGET,
    study_name: str | None = None,
) -> Leaderboard:
    """Read every record under ``paths`` (skipping unreadable ones with a warning) and build the leaderboard.

    A path may also name an Optuna storage (a journal file or a storage URL; ``study_name`` picks one of its
    studies): its trials' records are read from their directories, or from the storage for trials whose
    directory is on another machine (:mod:`harness.sweep.collect`). For Optuna sweeps the board gets the
    study's parameter importances, and ranks by the study's objective when ``objective`` is ``auto``.
    """
    from harness.sweep.collect import collect

    paths = [str(p) for p in paths]
    found = collect(paths, study_name)
    studies = found.settings
    auto = objective == "auto"
    if auto and len({s.objectives[0] for s in studies}) == 1:  # rank by the study's (first) objective
        objective, auto = studies[0].objectives[0], studies[0].auto_objective
    board = build(found.records, title or _title(paths), objective, kl_budget)
    board.objective_auto = auto
    board.studies = found.summaries
    frames = [f for f in found.importances if not f.empty]
    if frames:
        board.importances = pd.concat(frames, ignore_index=True)
    return board


def _title(paths: Sequence[str]) -> str:
    """The default title: the first path's name (a storage URL's database, password never shown)."""
    if not paths:
        return "leaderboard"
    if "://" in paths[0]:
        from harness.sweep.storage import label

        return label(paths[0])
    return Path(paths[0]).resolve().name
