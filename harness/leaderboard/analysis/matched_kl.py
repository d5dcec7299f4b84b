"""Reward at matched KL: every method read off its own reward-vs-KL frontier at the same KL values.

A ranking by the best checkpoint within a KL budget lets a method that moved far from the reference outrank
one that stayed close, having bought its reward with KL. Here each method is read at common KL values
(``leaderboard.matched_kl``, default 1, 2 and 5 nats), without choosing anything on the values it reports:

- each trial (one seed of a setting) has its own frontier, the upper envelope of its checkpoints (within the
  health band) and of the reference model at KL 0, built from values measured on the *selection* prompts; at
  each KL value the frontier picks one checkpoint, or two and their interpolation weights, and the cell takes
  the *test* values of those checkpoints with the same weights
  (:mod:`harness.leaderboard.analysis.matched_kl_cells`); a method without selection values is read on its
  test values, and ``selected_on`` says so;
- a method's cell is its best setting there by mean selection value over the seeds whose frontier reaches the
  KL, shown as the mean test value over those seeds with a 95% interval by bootstrap over seeds and evaluation
  noise (:mod:`harness.leaderboard.analysis.bootstrap`);
- a value below the method's lowest measured KL (a straight line from the reference to its first checkpoint)
  or interpolated across a gap wider than ``leaderboard.matched_kl_max_gap`` nats is marked; a frontier is
  never extrapolated: beyond the largest KL a trial's checkpoints reached, it has no value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from numbers import Real
from typing import Any

import numpy as np
import pandas as pd

from harness.config.sweep_checks import (
    DEFAULT_MATCHED_KL,
    DEFAULT_MATCHED_KL_MAX_GAP,
    MATCHED_KL_KEY,
    check_matched_kl,
)
from harness.evaluation.health import KL_HIGH
from harness.leaderboard.analysis import columns, frames, knobs, paired
from harness.leaderboard.analysis import matched_kl_cells as cells
from harness.leaderboard.analysis.conclusions import ON_SELECTION, ON_TEST
from harness.leaderboard.analysis.frames import SELECTION_PREFIX
from harness.records import TrialRecord

PREFIX = "at_kl_"
#: The parts of a cell, each a column ``at_kl_<x>_<part>`` of the table
#: (:class:`~harness.leaderboard.analysis.matched_kl_cells.Cell`).
CELL_PARTS = ("low", "high", "mark", "seeds", "of", "gap", "setting")
ONE_SETTING = frames.ONE_SETTING
NOTES = {
    "trains_on": "what the method optimised: preferences (offline methods), the gold reward (then "
    "it trained on the objective itself) or a reward model",
    "selected_on": "where each seed's points on its frontier were chosen: the selection prompts, or the test "
    "prompts when the method has no selection values (which flatters it)",
    "trials": "trials (seeds of every setting) whose frontiers were read",
    "setting": "the setting read at each KL value, chosen on selection values",
    "seeds": "seeds of the setting read (a cell says when fewer of them reached its KL)",
    "max_kl": "the largest KL any of the method's checkpoints within the health band reached, measured where "
    "the points were chosen (selected_on): no frontier goes past it",
}


def level_column(level: float) -> str:
    """The table column of KL value ``level`` (``at_kl_2`` for 2 nats)."""
    return f"{PREFIX}{level:g}"


def levels_of(records: Iterable[TrialRecord]) -> tuple[float, ...]:
    """The KL values the records' config asks for (``leaderboard.matched_kl`` of the first record that has
    one), else :data:`~harness.config.sweep_checks.DEFAULT_MATCHED_KL`."""
    for record in records:
        board = (record.config or {}).get("leaderboard") or {}
        if "matched_kl" in board:
            return check_matched_kl(board["matched_kl"], MATCHED_KL_KEY)
    return DEFAULT_MATCHED_KL


def max_gap_of(records: Iterable[TrialRecord]) -> float | None:
    """The widest KL gap (nats) a cell may be interpolated across unmarked: ``leaderboard.matched_kl_max_gap``
    of the first record that has it (None: never marked), else
    :data:`~harness.config.sweep_checks.DEFAULT_MATCHED_KL_MAX_GAP` (records older than the setting)."""
    for record in records:
        board = (record.config or {}).get("leaderboard") or {}
        if "matched_kl_max_gap" in board:
            value = board["matched_kl_max_gap"]
            if value is None:
                return None
            if _number(value) is not None and value > 0:
                return float(value)
    return DEFAULT_MATCHED_KL_MAX_GAP


def _number(value: Any) -> float | None:
    if isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(float(value)):
        return float(value)
    return None


def _checkpoint_prompts(
    frame: pd.DataFrame, records: Sequence[TrialRecord], objective: str
) -> list[np.ndarray | None]:
    """Each checkpoint row's per-prompt test scores of ``objective`` from its record
    (:func:`harness.leaderboard.analysis.paired.checkpoint_prompt_scores`; None where not kept)."""
    kept = paired.checkpoint_prompt_scores(records, objective)
    steps = pd.to_numeric(frame["step"], errors="coerce") if "step" in frame else [math.nan] * len(frame)
    return [kept.get((str(t), float(s))) for t, s in zip(frame["trial_id"], steps, strict=True)]


def baselines(
    records: Iterable[TrialRecord], objective: str, declared: columns.Declarations, se_column: str | None
) -> dict[str, cells.Baseline]:
    """Each record's (by trial id) reference model values of ``objective``: on the test prompts with its
    standard error (``se_column``), and on the selection prompts."""
    out = {}
    for record in records:
        test = columns.metric_row(record.reference_metrics or {}, declared)
        selection = record.reference.selection if record.reference is not None else None
        chosen = columns.metric_row(selection.metrics if selection is not None else {}, declared)
        out[frames.trial_id(record)] = cells.Baseline(
            _number(test.get(objective)),
            _number(test.get(se_column)) if se_column else None,
            _number(chosen.get(objective)),
        )
    return out


def _source(record: TrialRecord, objective: str) -> str:
    """What one trial trained on, in words (see :data:`NOTES`)."""
    reward = (record.hyperparameters or {}).get("reward")
    if not isinstance(reward, str) or not reward:
        return "preferences (unpaired labels)" if record.data_kind == "unpaired" else "preferences"
    if reward == "gold":
        return "gold reward (the objective itself)" if objective == "gold_reward" else "gold reward"
    path = record.eval_reward_model or reward
    itself = " (the objective itself)" if objective == "rm_score" else ""
    if reward == "trained":  # named by its stage cache key: the directory is this machine's
        key = re.search(r"reward_models[/\\]([^/\\]+)", str(path))
        named = f"stage {key.group(1)}" if key else str(path)
        return f"reward model trained by the reward stage on the same data ({named}){itself}"
    return f"reward model {path}{itself}"


def trains_on(records: Iterable[TrialRecord], objective: str) -> dict[str, str]:
    """Method -> what its trials trained on (several sources joined with ``; ``)."""
    found: dict[str, list[str]] = {}
    for record in records:
        sources = found.setdefault(str(record.method), [])
        source = _source(record, objective)
        if source not in sources:
            sources.append(source)
    return {method: "; ".join(sources) for method, sources in found.items()}


def _method_row(
    group: pd.DataFrame,
    keys: Sequence[str],
    objective: str,
    se_column: str | None,
    levels: Sequence[float],
    bases: Mapping[str, cells.Baseline],
    sign: float,
    max_gap: float | None,
    names: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """One method's row of :func:`matched_kl_table` from its checkpoints ``group`` (``_healthy``: those that
    may be frontier points); a trial with none has no value anywhere but counts among its setting's seeds."""
    trials = list(group.groupby("trial_id", sort=False))
    on_selection = all(cells.has_selection(rows, objective) for _, rows in trials)
    settings: dict[str, list[list[cells.Point | None]]] = {}
    for trial, rows in trials:
        base = bases.get(str(trial), cells.Baseline())
        healthy = rows[rows["_healthy"]]
        kept = healthy["_prompts"].tolist() if "_prompts" in healthy else None
        points = cells.trial_points(healthy, objective, se_column, levels, base, on_selection, sign, kept)
        text = frames.setting_text(keys, [rows.iloc[0][k] for k in keys], names)
        settings.setdefault(text, []).append(points)
    axis = f"{SELECTION_PREFIX}kl" if on_selection else "kl"
    reached = pd.to_numeric(group.loc[group["_healthy"], axis], errors="coerce")
    row: dict[str, Any] = {
        "method": group["method"].iloc[0],
        "selected_on": ON_SELECTION if on_selection else ON_TEST,
        "trials": len(trials),
        "max_kl": float(reached.max()) if reached.notna().any() else math.nan,
    }
    for j, level in enumerate(levels):
        cell = cells.best_cell([(text, [p[j] for p in seeds]) for text, seeds in settings.items()], max_gap)
        column = level_column(level)
        row[column] = math.nan if cell is None else cell.value
        for part in CELL_PARTS:
            row[f"{column}_{part}"] = getattr(cell, part) if cell is not None else None
    return row


def matched_kl_table(
    checkpoints: pd.DataFrame,
    records: Sequence[TrialRecord],
    objective: str | None,
    direction: str = "maximize",
    declared: columns.Declarations | None = None,
    levels: Sequence[float] | None = None,
    swept: Sequence[str] = (),
    max_gap: float | None | str = "records",
) -> pd.DataFrame:
    """One row per method: ``method``, ``trains_on``, ``selected_on``, ``trials``, ``max_kl`` and, at each KL
    value, the objective's test value read at the points chosen on selection values (``at_kl_<x>``, NaN where
    no seed's frontier reaches it; see the module docstring) with its cell's parts (``at_kl_<x>_<part>`` for
    each of :data:`CELL_PARTS`); ordered by the first KL value, best first. Only checkpoints within the health
    band (KL <= ``KL_HIGH``) are frontier points. ``swept`` names the hyperparameters whose values (but the
    seed's) make a setting; ``max_gap`` the widest gap a value is interpolated across unmarked (``"records"``:
    :func:`max_gap_of` the records). Empty without an objective, a KL column, or KL values."""
    levels = tuple(levels) if levels is not None else levels_of(records)
    if not objective or not levels or checkpoints.empty or not {"kl", objective} <= set(checkpoints.columns):
        return pd.DataFrame()
    gap = max_gap_of(records) if max_gap == "records" else max_gap
    declared = declared or {}
    se_column = columns.se_column_of(objective, declared, list(checkpoints.columns))
    bases = baselines(records, objective, declared, se_column)
    sources = trains_on(records, objective)
    frame = checkpoints.assign(kl=pd.to_numeric(checkpoints["kl"], errors="coerce"))
    healthy = frame["kl"] <= KL_HIGH  # a diverged checkpoint (KL beyond the health band) is no frontier point
    if f"{SELECTION_PREFIX}kl" in frame:
        healthy &= ~(pd.to_numeric(frame[f"{SELECTION_PREFIX}kl"], errors="coerce") > KL_HIGH)
    frame = frame.assign(
        _healthy=healthy & pd.to_numeric(frame[objective], errors="coerce").notna(),
        _prompts=_checkpoint_prompts(frame, records, objective),
    )
    keys = ["method", *[k for k in swept if k != "seed" and k in frame.columns]]
    sign = -1.0 if direction == "minimize" else 1.0
    names = knobs.paper_names(records)
    rows = [
        {
            "trains_on": sources.get(str(method), ""),
            **_method_row(
                group, keys, objective, se_column, levels, bases, sign, gap, names.get(str(method))
            ),
        }
        for method, group in frame.groupby("method", sort=True)
    ]
    if not rows:
        return pd.DataFrame()
    table = pd.DataFrame(rows)
    first = ["method", "trains_on", "selected_on", "trials", "max_kl"]
    table = table[first + [c for c in table.columns if c not in first]]
    return table.sort_values(
        level_column(levels[0]), ascending=direction == "minimize", na_position="last", kind="stable"
    ).reset_index(drop=True)


def level_columns(table: pd.DataFrame) -> list[str]:
    """The value columns of ``table``, one per KL value (``at_kl_2``), in order."""
    return [c for c in table.columns if str(c).startswith(PREFIX) and "_" not in str(c)[len(PREFIX) :]]


def _cell_text(row: pd.Series, column: str) -> str:
    """One cell as the reports show it: ``0.344 [0.28, 0.41] †`` (value, 95% interval, mark), with
    ``(k of n seeds)`` when only some of the setting's seeds reached the KL."""
    if frames.is_missing(row[column]):
        return ""
    text = frames.format_value(row[column])
    low, high = row[f"{column}_low"], row[f"{column}_high"]
    if not frames.is_missing(low) and not frames.is_missing(high):
        text += f" [{frames.format_value(low)}, {frames.format_value(high)}]"
    if row[f"{column}_mark"]:
        text += f" {row[f'{column}_mark']}"
    seeds, of = int(row[f"{column}_seeds"]), int(row[f"{column}_of"])
    return text + (f" ({seeds} of {of} seeds)" if seeds < of else "")


def _settings_text(row: pd.Series, levels: Sequence[str]) -> str:
    """The settings read at ``levels``: one text when they agree, else each with the KL values it was read
    at (``beta=0.1 (at 1, 2); beta=0.3 (at 5)``)."""
    at: dict[str, list[str]] = {}
    for c in levels:
        if not frames.is_missing(row[f"{c}_setting"]):
            at.setdefault(str(row[f"{c}_setting"]), []).append(c[len(PREFIX) :])
    if len(at) <= 1:
        return next(iter(at), "")
    return "; ".join(f"{text} (at {', '.join(kls)})" for text, kls in at.items())


def shown(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` (from :func:`matched_kl_table`) as the reports show it: ``method``, ``trains_on``,
    ``selected_on``, ``trials``, ``setting`` (when a method has several), ``seeds`` (the most of the settings
    read), ``max_kl`` and one text cell per KL value (:func:`_cell_text`)."""
    levels = level_columns(table)
    out = table[["method", "trains_on", "selected_on", "trials"]].copy()
    settings = [_settings_text(row, levels) for _, row in table.iterrows()]
    if any(s not in ("", ONE_SETTING) for s in settings):
        out["setting"] = settings
    seeds = table[[f"{c}_of" for c in levels]].apply(pd.to_numeric, errors="coerce").max(axis=1)
    out["seeds"] = [None if pd.isna(n) else int(n) for n in seeds]
    out["max_kl"] = table["max_kl"]
    for column in levels:
        out[column] = [_cell_text(row, column) for _, row in table.iterrows()]
    return out


def _nats(value: float | None) -> str:
    return f"{value or 0:g} nat{'' if value == 1 else 's'}"


def _marked(table: pd.DataFrame, mark: str) -> bool:
    return any(
        mark in str(v) for c in level_columns(table) for v in table[f"{c}_mark"] if not frames.is_missing(v)
    )


def explanation(table: pd.DataFrame, objective: str | None, max_gap: float | None = None) -> str:
    """What the matched-KL table shows, in plain words (Markdown: backticks for names); the marks, one-seed
    intervals and test-prompt choices are explained when the table has them."""
    levels = ", ".join(c[len(PREFIX) :] for c in level_columns(table))
    text = [
        f"Each method's **{objective}** at KL = {levels} nats, read off each seed's own frontier: the best "
        "value against KL of the seed's checkpoints (but those beyond the health band, KL > "
        f"{KL_HIGH:g} nats: diverged) and of the reference model at KL 0, as measured on the selection "
        "prompts. At each KL the frontier picks a checkpoint, or two and the weights that interpolate "
        "between them; the cell shows the test values of those same checkpoints with the same weights, so no "
        "cell is the best of many noisy test values. A method shows its best setting at each KL (by mean "
        "selection value) as the mean over its seeds with a 95% interval [low, high] by bootstrap over seeds "
        "and the test prompts, drawn once for all seeds as they share them (from each value's standard error "
        "where its per-prompt scores are not kept), never narrower than the seeds-only t interval."
    ]
    ofs = [table[f"{c}_of"] for c in level_columns(table)]
    if any((pd.to_numeric(s, errors="coerce") == 1).any() for s in ofs):
        text.append(
            "With one seed (`seeds` 1) the interval is evaluation noise alone: the seeds that would show "
            "the spread between training runs are missing."
        )
    if (table["selected_on"] == ON_TEST).any():
        text.append(
            f"Where `selected_on` says '{ON_TEST}' the method has no selection values "
            "(`eval.selection.num_prompts=0`): its points were chosen on the values shown, which flatters it."
        )
    if _marked(table, cells.BELOW):
        text.append(
            f"{cells.BELOW} below the method's lowest measured KL: a straight line from the reference model "
            "(KL 0) to its first checkpoint, not a measurement."
        )
    if _marked(table, cells.GAP):
        text.append(
            f"{cells.GAP} interpolated across a gap wider than `leaderboard.matched_kl_max_gap` = "
            f"{_nats(max_gap)} between two checkpoints: a guess between distant measurements."
        )
    text.append(
        "A frontier is never extrapolated: a blank cell is a KL no seed of the method reached (`max_kl`), "
        "and a cell says 'k of n seeds' when only some did. Compare methods within a column: a method ranked "
        "higher above may have bought its reward with more KL."
    )
    if table["trains_on"].str.contains("the objective itself").any():
        text.append(
            "A method whose `trains_on` says 'the objective itself' was trained on the very metric it is "
            "ranked by; the others never saw it."
        )
    return " ".join(text)
