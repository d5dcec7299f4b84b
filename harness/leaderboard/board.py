"""The leaderboard: a pure function of trial records, rebuilt from disk at any time.

``python -m harness.leaderboard multirun/<sweep> [...]`` reads every ``trial.json`` under the given
directories (corrupt or foreign records are skipped with a warning), chooses each trial's best checkpoint
within the KL budget (:mod:`harness.leaderboard.ranking`), ranks trials by the objective and marks the Pareto front,
aggregates repeated settings over seeds (:mod:`harness.leaderboard.seeds`), lists failed and pruned trials with their
reasons, and writes ``leaderboard.md``, ``leaderboard.csv``, ``checkpoints.csv``, the plots and
``leaderboard.html``. Records compared on different model, data or evaluation settings are never ranked
together (:mod:`harness.leaderboard.merging`). The same runs when a multirun ends (:mod:`harness.cli.callbacks`).

From Python: ``load_leaderboard(paths)`` returns a :class:`Leaderboard` whose attributes are DataFrames.
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness.errors import ConfigError
from harness.leaderboard import frames as board_frames
from harness.leaderboard import merging, ranking, seeds
from harness.leaderboard.frames import format_value
from harness.records import atomic_write_text, load_records


@dataclass
class Leaderboard:
    """A ranked leaderboard and the records it was built from; every table is a pandas DataFrame.

    Attributes:
        trials: one row per trial (its best checkpoint within the KL budget), ranked; failed and pruned
            trials last, with their reasons.
        checkpoints: one row per evaluated checkpoint of every trial.
        methods: each method's best trial.
        seeds: one row per setting run with several seeds (mean, 95% CI, significance), else empty.
        cost: wall time, peak memory and models in memory per method, measured.
        swept: the hyperparameters that vary between the trials of one method (the sweep's), shown as columns.
        objective_name: the column trials are ranked by (None when nothing ranks them).
        kl_budget: the KL budget in nats per sequence (None: no budget).
        groups: when the records come from incompatible setups, their setting keys with trial counts and the
            settings that differ; the tables are then empty (nothing is ranked across setups).
        importances: for Optuna sweeps, Optuna's parameter importances per method (:mod:`harness.sweep.results`).
        studies: for Optuna sweeps, each study's name, storage, objectives and trial counts by state.
        settings: one row per method: its hyperparameters that are not swept (``key=value`` text).
    """

    title: str
    records: list[dict[str, Any]]
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

    @property
    def table(self) -> pd.DataFrame:
        """The ranked trials table (alias of ``trials``)."""
        return self.trials

    @property
    def completed(self) -> pd.DataFrame:
        """Rows of completed trials, ranked."""
        return self.trials[self.trials["status"] == "completed"] if not self.trials.empty else self.trials


def _empty(title: str, records: list[dict[str, Any]], objective: str | None, kl_budget: float | None,
           groups: dict[str, Any] | None = None) -> Leaderboard:
    e = pd.DataFrame()
    return Leaderboard(title, records, e, e, e, e, e, [], objective, kl_budget, groups or {})


def trials_table(records: Sequence[dict[str, Any]], checkpoints: pd.DataFrame, swept: Sequence[str]) -> pd.DataFrame:
    """One row per trial: its chosen checkpoint's metrics (see :func:`harness.leaderboard.ranking.best_checkpoints`; the
    checkpoints are :func:`harness.leaderboard.ranking.annotate`-d) beside the trial's baseline, cost and status; ranked,
    with the Pareto front marked."""
    best = ranking.best_checkpoints(checkpoints)
    by_trial = {row["trial_id"]: row for row in best.to_dict("records")} if not best.empty else {}
    rows = []
    for r in records:
        info = board_frames.trial_info(r, swept)
        chosen = by_trial.get(info["trial_id"], {})
        metrics = {k: v for k, v in chosen.items() if k not in ("trial_id", "method", "health", *swept)}
        rows.append({**{k: info[k] for k in ("trial_id", "method", *swept)}, **metrics,
                     **{k: v for k, v in info.items() if k not in ("trial_id", "method", *swept)}})
    df = pd.DataFrame(rows)
    for column, default in (("objective", math.nan), ("within_budget", False), ("step", pd.NA), ("kl", math.nan)):
        if column not in df.columns:
            df[column] = default
    done = df["status"] == "completed"
    df["pareto"] = ranking.pareto_front(df["objective"].where(done), df["kl"].where(done))
    return ranking.rank_trials(df)


def cost_table(trials: pd.DataFrame) -> pd.DataFrame:
    """Measured cost per method over its completed trials: mean train seconds, peak memory, models held."""
    done = trials[trials["status"] == "completed"] if not trials.empty else trials
    if done.empty:
        return pd.DataFrame()
    grouped = done.groupby("method", sort=True)
    return pd.DataFrame({"trials": grouped.size(), "train_s_mean": grouped["train_s"].mean(),
                         "peak_mem_mb_max": grouped["peak_mem_mb"].max(),
                         "models_in_memory": grouped["models"].max()}).reset_index()


def build(records: list[dict[str, Any]], title: str = "leaderboard", objective: str = "auto",
          kl_budget: float | None = ranking.DEFAULT_KL_BUDGET) -> Leaderboard:
    """The leaderboard of ``records`` (see :class:`Leaderboard`)."""
    if kl_budget is not None and (not isinstance(kl_budget, (int, float)) or kl_budget <= 0):
        raise ConfigError(f"leaderboard.kl_budget={kl_budget!r} is invalid; use a number of nats > 0, or null.")
    if not records:
        return _empty(title, records, None, kl_budget)
    groups = merging.group_records(records)
    if len(groups) > 1:
        detail = {"counts": {k: len(v) for k, v in groups.items()},
                  "differ": merging.differing_settings(groups),
                  "trials": {k: [board_frames.trial_id(r) for r in v] for k, v in groups.items()}}
        return _empty(title, records, None, kl_budget, detail)
    swept = board_frames.varying_hyperparameters(records)
    checkpoints = board_frames.checkpoints_frame(records, swept)
    name = ranking.resolve_objective(checkpoints, objective)
    checkpoints = ranking.annotate(checkpoints, name, kl_budget)
    trials = trials_table(records, checkpoints, swept)
    done = trials[trials["status"] == "completed"]
    methods = (done.sort_values("rank").groupby("method", sort=False).head(1).reset_index(drop=True)
               if not done.empty else pd.DataFrame())
    return Leaderboard(title, records, trials, checkpoints, methods, seeds.aggregate_seeds(trials, swept),
                       cost_table(trials), swept, name, kl_budget,
                       settings=board_frames.method_settings(records, swept))


def load_leaderboard(paths: Iterable[Path | str], title: str | None = None, objective: str = "auto",
                     kl_budget: float | None = ranking.DEFAULT_KL_BUDGET, study_name: str | None = None) -> Leaderboard:
    """Read every record under ``paths`` (skipping unreadable ones with a warning) and build the leaderboard.

    A path may also name an Optuna storage (a journal file or a storage URL; ``study_name`` picks one of its
    studies): its trials' directories are read. For Optuna sweeps the board gets the study's parameter
    importances, and ranks by the study's objective when ``objective`` is ``auto``.
    """
    from harness.sweep import results as optuna_results

    paths = [str(p) for p in paths]
    dirs = [Path(p) for p in paths if not optuna_results.is_storage(p)]
    studies = optuna_results.find_study_settings(dirs)
    for storage in (p for p in paths if optuna_results.is_storage(p)):
        trial_dirs, found = optuna_results.trial_dirs_of_storage(storage, study_name)
        dirs += trial_dirs
        studies += found
    if objective == "auto" and len({s.objectives[0] for s in studies}) == 1:
        objective = _study_objective(studies[0].objectives[0])
    board = build(list(load_records(dirs)), title or (Path(paths[0]).resolve().name if paths else "leaderboard"),
                  objective, kl_budget)
    frames = []
    for settings in {(s.study_name, s.storage): s for s in studies}.values():
        try:
            study = optuna_results.open_study(settings)
        except Exception as exc:  # a moved or unreachable storage must not cost the rest of the report
            warnings.warn(f"cannot open Optuna study {settings.study_name!r} ({settings.storage}): {exc}", stacklevel=2)
            continue
        board.studies.append(optuna_results.study_summary(study, settings))
        frames.append(optuna_results.param_importances(study))
    if frames:
        board.importances = pd.concat(frames, ignore_index=True)
    return board


def _study_objective(name: str) -> str:
    """The leaderboard objective for a study's first objective (its column name; gold reward stays auto)."""
    columns = dict(board_frames.METRIC_COLUMNS)
    return "auto" if name in ("auto", "gold_reward") else columns.get(name, name)


# ---------------------------------------------------------------------------------------------------
# Markdown and the console.
# ---------------------------------------------------------------------------------------------------

_HIDDEN = ("reason", "overrides", "record", "eval_prompts", "status", "trial_id", "within_budget", "objective",
           "base_rm_score", "final")


def _table(df: pd.DataFrame) -> str:
    shown = df.drop(columns=[c for c in _HIDDEN if c in df.columns]).dropna(axis=1, how="all")
    if "pareto" in shown:
        shown = shown.assign(pareto=shown["pareto"].map(lambda v: "★" if v is True else ""))
    return shown.map(format_value).to_markdown(index=False)


def to_markdown(board: Leaderboard, plots: Sequence[str] = ()) -> str:
    """The leaderboard as Markdown: ranked trials, per-method best, seeds, cost, failures, plots, reproduce."""
    lines = [f"# Leaderboard: {board.title}", ""]
    if board.groups:
        return "\n".join([*lines, *incompatible_lines(board), ""])
    df = board.trials
    if df.empty:
        return "\n".join([*lines, "No trial records found.", ""])
    n_done = int((df["status"] == "completed").sum())
    prompts = df["eval_prompts"].dropna()
    budget = f"within a KL budget of {board.kl_budget:g} nats" if board.kl_budget is not None else "(no KL budget)"
    lines += [f"{len(df)} trials ({n_done} completed). Each trial is shown at its best checkpoint by "
              f"**{board.objective_name or 'record order'}** {budget} (a trial with none inside the budget keeps "
              f"its final checkpoint and ranks after the others), on {int(prompts.iloc[0]) if len(prompts) else '?'} "
              "held-out prompts. `kl` is KL(policy || reference) in nats per sequence; `base_gold` is the "
              "reference model's gold reward; `*_se` columns are standard errors; ★ marks the Pareto front "
              "(no other trial has a higher reward at a lower KL); `health` lists flags raised at any checkpoint.", ""]
    if not board.completed.empty:
        lines += [_table(board.completed), ""]
    if len(board.methods) > 1:
        lines += ["## Best per method", "", _table(board.methods), ""]
    if not board.seeds.empty:
        lines += ["## Over seeds", "", f"Mean and 95% confidence interval over seeds of **{board.objective_name}** "
                  "and KL; `p_vs_best` is Welch's t-test against rank 1, and `same_as_best` marks settings whose "
                  "difference from the best is not significant (p >= 0.05).", "",
                  board.seeds.map(format_value).to_markdown(index=False), ""]
    if not board.settings.empty:
        lines += ["## Method settings", "", "Each method's hyperparameters that are the same in all its trials (the "
                  "swept ones are columns of the tables above):", "", board.settings.to_markdown(index=False), ""]
    lines += optuna_lines(board)
    if not board.cost.empty:
        lines += ["## Compute cost per method (measured)", "", board.cost.map(format_value).to_markdown(index=False), ""]
    others = df[df["status"] != "completed"]
    if not others.empty:
        lines += ["## Failed and pruned trials", ""]
        for _, row in others.iterrows():
            step = f" at step {format_value(row.get('step'))}" if row["status"] == "pruned" and format_value(row.get("step")) else ""
            lines.append(f"- **{row['method']}** ({row['status']}{step}): {row['reason'] or 'no reason recorded'}"
                         f"  \n  `{row['overrides']}`")
        lines.append("")
    if plots:
        lines += ["## Plots", "", *[f"![{Path(p).stem}]({Path(p).name})" for p in plots], ""]
    lines += ["## Reproduce", "", "Each trial's exact overrides:", ""]
    for _, row in df.iterrows():
        lines.append(f"- rank {format_value(row['rank']) or '-'} {row['method']}: `python -m harness {row['overrides']}`")
    lines.append("")
    return "\n".join(lines)


def optuna_lines(board: Leaderboard) -> list[str]:
    """Markdown lines for the Optuna studies behind the board: trial counts and parameter importances."""
    from harness.sweep.study import goal_text

    if not board.studies:
        return []
    lines = ["## Optuna study", ""]
    for info in board.studies:
        counts = ", ".join(f"{n} {state}" for state, n in sorted(info["counts"].items()))
        goal = goal_text(info["objectives"], info["directions"])
        lines += [f"- `{info['study']}` ({goal}): {counts}. Open it with `optuna-dashboard {info['storage']}`."]
    from harness.sweep.results import importance_table

    table = importance_table(board.importances)
    if not table.empty:
        lines += ["", "Parameter importances (Optuna's fANOVA over completed trials, per method; each column sums "
                  "to 1; a blank: the method has no such parameter):", "",
                  table.map(format_value).to_markdown(index=False)]
    return [*lines, ""]


def incompatible_lines(board: Leaderboard) -> list[str]:
    """Markdown lines explaining why records from several setups were not merged."""
    g = board.groups
    lines = [f"These {len(board.records)} trial records come from {len(g['counts'])} different setups (model, data "
             "or evaluation settings), so they are not ranked together. Rebuild the leaderboard from the "
             "directories of one setup at a time.", "", "Settings that differ (one value per setup):", ""]
    lines += [f"- `{key}`: {', '.join(repr(v) for v in values)}" for key, values in g["differ"].items()]
    lines += ["", "Setups:", ""]
    lines += [f"- `{key}`: {count} trials ({', '.join(g['trials'][key][:5])}{' ...' if count > 5 else ''})"
              for key, count in g["counts"].items()]
    return lines


def console_table(board: Leaderboard) -> str:
    """A compact text table for the terminal."""
    if board.groups:
        return "\n".join(incompatible_lines(board))
    if board.trials.empty:
        return "(no trial records)"
    return _table(board.trials.drop(columns=["base_rm_score"], errors="ignore"))


# ---------------------------------------------------------------------------------------------------
# Files.
# ---------------------------------------------------------------------------------------------------


def write_reports(board: Leaderboard, out_dir: Path | str) -> list[Path]:
    """Write ``leaderboard.md``, ``leaderboard.csv``, ``checkpoints.csv``, the plots and ``leaderboard.html``
    to ``out_dir`` (atomically, each); returns the paths written."""
    out = Path(out_dir)
    written: list[Path] = []
    pngs: dict[str, bytes] = {}
    if not board.trials.empty and not board.checkpoints.empty:
        from harness.leaderboard import plots as plotting

        pngs = plotting.render_plots(board)
        written += list(plotting.save_plots(board, out, pngs).values())
    atomic_write_text(out / "leaderboard.md", to_markdown(board, [str(p) for p in written]))
    atomic_write_text(out / "leaderboard.csv", board.trials.to_csv(index=False))
    atomic_write_text(out / "checkpoints.csv", board.checkpoints.to_csv(index=False))
    written += [out / "leaderboard.md", out / "leaderboard.csv", out / "checkpoints.csv"]
    if not board.importances.empty:
        atomic_write_text(out / "importances.csv", board.importances.to_csv(index=False))
        written.append(out / "importances.csv")
    from harness.leaderboard.html import write_html

    written.append(write_html(board, out / "leaderboard.html", pngs))
    return written


def write_leaderboard(paths: Iterable[Path | str], out_dir: Path | str, title: str | None = None,
                      objective: str = "auto", kl_budget: float | None = ranking.DEFAULT_KL_BUDGET,
                      study_name: str | None = None) -> Leaderboard:
    """Build the leaderboard of ``paths`` and write its reports to ``out_dir`` (see :func:`write_reports`)."""
    out = Path(out_dir)
    board = load_leaderboard(paths, title or out.name, objective, kl_budget, study_name)
    write_reports(board, out)
    return board


def _budget(value: str) -> float | None:
    return None if value.lower() in ("none", "null", "off") else float(value)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m harness.leaderboard DIR... [--out DIR]``: rebuild a leaderboard from trial records."""
    parser = argparse.ArgumentParser(prog="python -m harness.leaderboard", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", help="multirun directories, trial.json files, or an Optuna storage "
                        "(a journal file such as multirun/<sweep>/optuna.journal, or a storage URL)")
    parser.add_argument("--study", default=None, help="with a storage holding several studies: the study to report")
    parser.add_argument("--out", type=Path, default=None,
                        help="output directory (default: leaderboards/<name of the first path>)")
    parser.add_argument("--title", default=None, help="report title (default: the output directory's name)")
    parser.add_argument("--objective", default="auto", help="column to rank by (default: gold reward, else "
                        "reward-model score)")
    parser.add_argument("--kl-budget", type=_budget, default=ranking.DEFAULT_KL_BUDGET,
                        help="KL budget in nats per sequence, or none (default: 10)")
    args = parser.parse_args(argv)
    from harness.sweep.results import is_storage

    missing = [p for p in args.paths if not Path(p).exists() and not (is_storage(p) and "://" in p)]
    if missing:
        print(f"harness.leaderboard: error: no such file or directory: {', '.join(missing)}", file=sys.stderr)
        return 2
    first = Path(args.paths[0])
    name = first.resolve().parent.name if is_storage(args.paths[0]) and "://" not in args.paths[0] else first.resolve().name
    out = args.out or Path("leaderboards") / (args.study or name)
    try:
        board = write_leaderboard(args.paths, out, args.title, args.objective, args.kl_budget, args.study)
    except ConfigError as exc:
        print(f"harness.leaderboard: error: {exc}", file=sys.stderr)
        return 2
    print(console_table(board))
    print(f"\nwrote {out}/leaderboard.md, leaderboard.html, leaderboard.csv and checkpoints.csv")
    return 3 if board.groups else 0

