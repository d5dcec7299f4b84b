"""Writing a leaderboard's files: Markdown, CSV (readable samples included), the verdict for tools (JSON and a
CSV row), the plots and the self-contained HTML page, each atomically."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from harness.leaderboard.analysis import ranking
from harness.leaderboard.analysis import verdict as verdicts
from harness.leaderboard.board import Leaderboard, load_leaderboard
from harness.leaderboard.markdown import to_markdown
from harness.leaderboard.sections import Figures, compute_sections
from harness.records import atomic_write_text

SAMPLES_CSV = "samples.csv"


def checkpoints_table(board: Leaderboard) -> pd.DataFrame:
    """``board.checkpoints`` with a ``samples`` column: :data:`SAMPLES_CSV` for a checkpoint whose readable
    samples are there (its rows keyed by ``trial_id`` and ``step``), else blank."""
    checkpoints = board.checkpoints
    if checkpoints.empty:
        return checkpoints
    kept = (
        set(zip(board.samples["trial_id"], board.samples["step"], strict=True))
        if not board.samples.empty
        else set()
    )
    return checkpoints.assign(
        samples=[
            SAMPLES_CSV if key in kept else None
            for key in zip(checkpoints["trial_id"], checkpoints["step"], strict=True)
        ]
    )


def write_reports(board: Leaderboard, out_dir: Path | str) -> list[Path]:
    """Write ``leaderboard.md``, ``leaderboard.csv``, ``checkpoints.csv``, ``samples.csv`` (when checkpoints
    kept readable samples), ``methods.csv`` (the method-level conclusions, with seeds), ``verdict.json`` and
    ``verdict.csv`` (the verdict, :mod:`harness.leaderboard.analysis.verdict`: every field, and one flat row),
    the plots and ``leaderboard.html`` to ``out_dir`` (atomically, each), the two reports from one computation
    of their sections; returns the paths written."""
    out = Path(out_dir)
    written: list[Path] = []
    pngs: dict[str, bytes] = {}
    if not board.trials.empty and not board.checkpoints.empty:
        from harness.leaderboard import plots as plotting

        pngs = plotting.render_plots(board)
        written += list(plotting.save_plots(board, out, pngs).values())
    sections = compute_sections(board, Figures(pngs=pngs, files=tuple(str(p) for p in written)))
    atomic_write_text(out / "leaderboard.md", to_markdown(board, sections=sections))
    atomic_write_text(out / "leaderboard.csv", board.trials.to_csv(index=False))
    atomic_write_text(out / "checkpoints.csv", checkpoints_table(board).to_csv(index=False))
    written += [out / "leaderboard.md", out / "leaderboard.csv", out / "checkpoints.csv"]
    written += write_verdict(board.decided, out)
    matched = board.matched_kl
    if (
        not matched.empty
    ):  # each method's objective at common KL values (harness.leaderboard.analysis.matched_kl)
        atomic_write_text(out / "matched_kl.csv", matched.to_csv(index=False))
        written.append(out / "matched_kl.csv")
    if not board.samples.empty:
        atomic_write_text(out / SAMPLES_CSV, board.samples.to_csv(index=False))
        written.append(out / SAMPLES_CSV)
    if not board.method_summary.empty:
        atomic_write_text(out / "methods.csv", board.method_summary.to_csv(index=False))
        written.append(out / "methods.csv")
    if not board.importances.empty:
        atomic_write_text(out / "importances.csv", board.importances.to_csv(index=False))
        written.append(out / "importances.csv")
    from harness.leaderboard.html import write_html  # matplotlib, for the plots

    written.append(write_html(board, out / "leaderboard.html", sections=sections))
    return written


def write_verdict(verdict: verdicts.Verdict, out_dir: Path | str) -> list[Path]:
    """Write ``verdict.json`` (:meth:`~harness.leaderboard.analysis.verdict.Verdict.to_dict`, NaN as null) and
    ``verdict.csv`` (its :meth:`~harness.leaderboard.analysis.verdict.Verdict.csv_row`) to ``out_dir``,
    atomically; returns their paths."""
    out = Path(out_dir)
    atomic_write_text(out / "verdict.json", json.dumps(verdict.to_dict(), indent=2) + "\n")
    atomic_write_text(out / "verdict.csv", pd.DataFrame([verdict.csv_row()]).to_csv(index=False))
    return [out / "verdict.json", out / "verdict.csv"]


def write_leaderboard(
    paths: Iterable[Path | str],
    out_dir: Path | str,
    title: str | None = None,
    objective: str = "auto",
    kl_budget: float | None = ranking.DEFAULT_KL_BUDGET,
    study_name: str | None = None,
    verdict_margin: float | None = None,
) -> Leaderboard:
    """Build the leaderboard of ``paths`` and write its reports to ``out_dir`` (see :func:`write_reports`);
    ``verdict_margin`` (checked first) overrides the records' ``leaderboard.verdict_margin``.

    :raises ConfigError: an invalid KL budget, objective or margin (:class:`VerdictError` for the margin)."""
    if verdict_margin is not None:
        verdicts.check_margin(verdict_margin)
    out = Path(out_dir)
    board = load_leaderboard(paths, title or out.name, objective, kl_budget, study_name)
    board.verdict_margin = verdict_margin
    write_reports(board, out)
    return board
