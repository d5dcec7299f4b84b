"""The leaderboard: a pure function of trial records, rebuilt from disk at any time.

``python -m harness.leaderboard multirun/<sweep> [...]`` reads every ``trial.json`` under the given
directories (corrupt or foreign records are skipped with a warning), builds one pandas row per trial (its
final checkpoint), ranks completed trials by the objective (gold reward when the data defines one), lists
failed and pruned trials with their reasons, and writes ``leaderboard.md`` and ``leaderboard.csv``. The same
runs automatically when a multirun ends (:mod:`harness.hydra_callbacks`).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from harness.records import atomic_write_text, load_records

# Metric columns shown when present, in this order: (record metric key, column name).
METRIC_COLUMNS = [
    ("gold_reward", "gold_reward"),
    ("gold_reward_se", "gold_se"),
    ("reward_model_score", "rm_score"),
    ("kl", "kl"),
    ("kl_se", "kl_se"),
    ("win_rate", "win_rate"),
    ("preference_accuracy", "pref_acc"),
    ("length", "length"),
    ("distinct_2", "distinct_2"),
]
# lm-eval scores (lm_eval/<task>/<metric>) shown as columns: the main metrics, not their standard errors.
LM_EVAL_METRICS = ("acc", "acc_norm", "exact_match", "f1")
OBJECTIVE_PREFERENCE = ("gold_reward", "reward_model_score")


def final_checkpoint(record: dict[str, Any]) -> dict[str, Any]:
    """The record's final checkpoint entry (the last evaluated one if none is marked final)."""
    checkpoints = record.get("checkpoints") or []
    final = [c for c in checkpoints if c.get("final")]
    evaluated = [c for c in checkpoints if c.get("metrics")]
    return (final or evaluated or [{}])[-1]


def varying_hyperparameters(records: Sequence[dict[str, Any]]) -> list[str]:
    """Hyperparameter names whose values differ between records (or that only some records have)."""
    keys: dict[str, set[str]] = {}
    for r in records:
        for k, v in r.get("hyperparameters", {}).items():
            keys.setdefault(k, set()).add(repr(v))
    counts = {k: sum(k in r.get("hyperparameters", {}) for r in records) for k in keys}
    return sorted(k for k, vals in keys.items() if len(vals) > 1 or counts[k] < len(records))


def trials_frame(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per trial: method, varying hyperparameters, final metrics, baseline, cost, status."""
    varying = varying_hyperparameters(records)
    rows = []
    for r in records:
        final = final_checkpoint(r)
        metrics = final.get("metrics", {})
        reference = (r.get("reference") or {}).get("metrics", {})
        row: dict[str, Any] = {"method": r["method"]}
        for k in varying:
            row[k] = r["hyperparameters"].get(k)
        for key, column in METRIC_COLUMNS:
            if key in metrics or key in reference:
                row[column] = metrics.get(key)
        for key in sorted(k for k in {*metrics, *reference} if k.startswith("lm_eval/")):
            if key.split("/")[2] in LM_EVAL_METRICS:
                row[key] = metrics.get(key)
        if "gold_reward" in reference:
            row["base_gold"] = reference["gold_reward"]
        row["health"] = ", ".join(f["flag"] for f in r.get("health") or [])
        memory = r.get("peak_memory") or {}
        row.update(
            steps=final.get("step"),
            train_s=(r.get("timings") or {}).get("train_s"),
            peak_mem_mb=memory.get("cuda_peak_mb") or memory.get("rss_peak_mb"),
            models=r.get("models_in_memory"),
            status=r["status"],
            reason=(r.get("error") or {}).get("message"),
            eval_prompts=r.get("eval_prompts"),
            overrides=" ".join(r.get("overrides") or []),
            record=r.get("_path"),
        )
        rows.append(row)
    return pd.DataFrame(rows)


def objective_column(df: pd.DataFrame) -> str | None:
    """The column trials are ranked by: the gold reward if any trial has one, else the reward-model score."""
    for name in OBJECTIVE_PREFERENCE:
        if name in df.columns and df[name].notna().any():
            return name
    return None


def rank(df: pd.DataFrame) -> pd.DataFrame:
    """Completed trials sorted by the objective (best first, with a 1-based rank), then the others."""
    if df.empty:
        return df
    objective = objective_column(df)
    done = df[df["status"] == "completed"]
    rest = df[df["status"] != "completed"]
    if objective is not None:
        done = done.sort_values(objective, ascending=False, na_position="last", kind="stable")
    done = done.assign(rank=range(1, len(done) + 1))
    ranked = pd.concat([done, rest.assign(rank=pd.NA)], ignore_index=True)
    return ranked[["rank", *[c for c in ranked.columns if c != "rank"]]]


@dataclass
class Leaderboard:
    """A ranked table of trials and the records it was built from."""

    table: pd.DataFrame
    records: list[dict[str, Any]]

    @property
    def completed(self) -> pd.DataFrame:
        """Rows of completed trials, ranked."""
        return self.table[self.table["status"] == "completed"] if not self.table.empty else self.table


def build_leaderboard(paths: Iterable[Path | str]) -> Leaderboard:
    """Read every record under ``paths`` and rank them."""
    records = list(load_records(paths))
    return Leaderboard(rank(trials_frame(records)), records)


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e-3 and value != 0 else f"{value:.3f}".rstrip("0").rstrip(".")
    return str(value)


_HIDDEN_IN_MARKDOWN = ("reason", "overrides", "record", "eval_prompts", "status")


def to_markdown(board: Leaderboard, title: str) -> str:
    """The leaderboard as Markdown: ranked table, then failed and pruned trials with their reasons."""
    df = board.table
    lines = [f"# Leaderboard: {title}", ""]
    if df.empty:
        return "\n".join([*lines, "No trial records found.", ""])
    objective = objective_column(df)
    n_done = int((df["status"] == "completed").sum())
    prompts = df["eval_prompts"].dropna()
    lines.append(f"{len(df)} trials ({n_done} completed). Ranked by **{objective or 'record order'}** of the final "
                 f"checkpoint, on {int(prompts.iloc[0]) if len(prompts) else '?'} held-out prompts; `kl` is "
                 "KL(policy || reference) in nats per sequence; `base_gold` is the reference model's gold reward; "
                 "`±` columns are standard errors.")
    lines.append("")
    shown = board.completed.drop(columns=[c for c in _HIDDEN_IN_MARKDOWN if c in df.columns])
    if not shown.empty:
        shown = shown.dropna(axis=1, how="all")
        lines.append(shown.map(_fmt).to_markdown(index=False))
        lines.append("")
    others = df[df["status"] != "completed"]
    if not others.empty:
        lines += ["## Failed and pruned trials", ""]
        for _, row in others.iterrows():
            lines.append(f"- **{row['method']}** ({row['status']}): {row['reason']}  \n  `{row['overrides']}`")
        lines.append("")
    lines += ["## Reproduce", "", "Each trial's overrides (append to `python -m harness`):", ""]
    for _, row in df.iterrows():
        lines.append(f"- rank {_fmt(row['rank']) or '-'} {row['method']}: `python -m harness {row['overrides']}`")
    lines.append("")
    return "\n".join(lines)


def write_leaderboard(paths: Iterable[Path | str], out_dir: Path | str, title: str | None = None) -> Leaderboard:
    """Build the leaderboard of ``paths`` and write ``leaderboard.md`` and ``leaderboard.csv`` to ``out_dir``."""
    out = Path(out_dir)
    board = build_leaderboard(paths)
    atomic_write_text(out / "leaderboard.md", to_markdown(board, title or out.name))
    atomic_write_text(out / "leaderboard.csv", board.table.to_csv(index=False))
    return board


def console_table(board: Leaderboard) -> str:
    """A compact text table for the terminal."""
    if board.table.empty:
        return "(no trial records)"
    cols = [c for c in board.table.columns if c not in ("overrides", "record", "eval_prompts")]
    return board.table[cols].dropna(axis=1, how="all").map(_fmt).to_markdown(index=False)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m harness.leaderboard DIR... [--out DIR]``: rebuild a leaderboard from trial records."""
    parser = argparse.ArgumentParser(prog="python -m harness.leaderboard", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path, help="multirun directories or trial.json files")
    parser.add_argument("--out", type=Path, default=None,
                        help="output directory (default: leaderboards/<name of the first path>)")
    parser.add_argument("--title", default=None, help="report title (default: the output directory's name)")
    args = parser.parse_args(argv)
    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        print(f"harness.leaderboard: error: no such file or directory: {', '.join(missing)}", file=sys.stderr)
        return 2
    out = args.out or Path("leaderboards") / args.paths[0].resolve().name
    board = write_leaderboard(args.paths, out, args.title)
    print(console_table(board))
    print(f"\nwrote {out / 'leaderboard.md'} and {out / 'leaderboard.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
