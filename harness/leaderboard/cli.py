"""``python -m harness.leaderboard DIR... [--out DIR]``: rebuild a leaderboard from trial records.

An Optuna study's storage (a journal file or a URL such as ``postgresql://user@host/db``) may stand for its
sweep directories: the records of trials whose directories are not on this machine are read from the storage,
and the report says where those trials' checkpoints are. The password of a URL is never written or printed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from harness.errors import ConfigError
from harness.leaderboard.analysis import ranking
from harness.leaderboard.analysis.problems import EXIT_NO_OBJECTIVE
from harness.leaderboard.analysis.verdict import check_margin
from harness.leaderboard.markdown import console_table
from harness.leaderboard.reports import write_leaderboard
from harness.verbosity import route_console


def _budget(value: str) -> float | None:
    return None if value.lower() in ("none", "null", "off") else float(value)


def _parser() -> argparse.ArgumentParser:
    """The command line's arguments."""
    parser = argparse.ArgumentParser(
        prog="python -m harness.leaderboard", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "paths",
        nargs="+",
        help="multirun directories, trial.json files, or an Optuna storage "
        "(a journal file such as multirun/<sweep>/optuna.journal, or a storage URL)",
    )
    parser.add_argument(
        "--study", default=None, help="with a storage holding several studies: the study to report"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output directory (default: leaderboards/<name of the first path>)",
    )
    parser.add_argument("--title", default=None, help="report title (default: the output directory's name)")
    parser.add_argument(
        "--objective",
        default="auto",
        help="metric to rank by: any metric the trials' evaluators "
        "declare with a direction, by name or column (default auto: gold reward, else reward-model "
        "score, ...)",
    )
    parser.add_argument(
        "--kl-budget",
        type=_budget,
        default=ranking.DEFAULT_KL_BUDGET,
        help="KL budget in nats per sequence, or none (default: 10)",
    )
    parser.add_argument(
        "--margin",
        type=float,
        default=None,
        help="the verdict's tie margin, a share in (0, 1) of the recommended method's gain over the base "
        "model (default: the records' leaderboard.verdict_margin, else 0.2)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m harness.leaderboard DIR... [--out DIR]``: rebuild a leaderboard from trial records."""
    args = _parser().parse_args(argv)
    from harness.sweep.results import is_storage

    try:
        margin = check_margin(args.margin, "--margin") if args.margin is not None else None
    except ConfigError as exc:
        print(f"harness.leaderboard: error: {exc}", file=sys.stderr)
        return 2

    route_console(False)  # "skipping <unreadable record>": one line each

    missing = [p for p in args.paths if not Path(p).exists() and not (is_storage(p) and "://" in p)]
    if missing:
        print(f"harness.leaderboard: error: no such file or directory: {', '.join(missing)}", file=sys.stderr)
        return 2
    from harness.sweep.storage import label

    first = args.paths[
        0
    ]  # a storage is named after its database or its journal's directory, never its password
    name = label(first) if is_storage(first) else Path(first).resolve().name
    out = args.out or Path("leaderboards") / (args.study or name)
    try:
        board = write_leaderboard(
            args.paths, out, args.title, args.objective, args.kl_budget, args.study, margin
        )
    except ConfigError as exc:
        print(f"harness.leaderboard: error: {exc}", file=sys.stderr)
        return 2
    print(console_table(board))
    samples = ", samples.csv" if not board.samples.empty else ""
    print(
        f"\nwrote {out}/leaderboard.md, leaderboard.html, leaderboard.csv{samples}, checkpoints.csv and "
        "verdict.json"
    )
    if board.problem:
        print(f"harness.leaderboard: error: {board.problem}", file=sys.stderr)
    return EXIT_NO_OBJECTIVE if board.problem else 3 if board.groups else 0
