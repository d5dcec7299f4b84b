"""The command line of ``python -m harness.export`` (see :mod:`harness.export`): its options, and one line and
exit status 2 for every problem a user can cause, before any weights are written."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from harness.errors import UserError
from harness.export.choose import Chosen, ExportError, choose
from harness.export.write import check_out, export

VERDICT_FILE = "verdict.json"
CARD_FILE = "README.md"


DESCRIPTION = (
    "python -m harness.export PATH --out DIR: a trial's checkpoint as a model directory loadable anywhere "
    "(with --verdict: the sweeps' recommended method, with a model card and verdict.json)."
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m harness.export", description=DESCRIPTION)
    parser.add_argument(
        "path",
        type=Path,
        nargs="+",
        help="a trial directory (or its trial.json), or a sweep's directory "
        "(multirun/<sweep>): its leaderboard's trial at --rank; with --verdict, one or more sweeps",
    )
    parser.add_argument("--out", type=Path, required=True, help="the model directory to write (new or empty)")
    parser.add_argument(
        "--rank", type=int, default=1, help="with a sweep: the leaderboard rank to export (default 1)"
    )
    parser.add_argument(
        "--step",
        default=None,
        help="final, or a step with saved weights (default: a trial's "
        "final checkpoint; a sweep's trial at the checkpoint the leaderboard ranked)",
    )
    parser.add_argument(
        "--verdict",
        action="store_true",
        help="export the verdict's recommended method (its seed with the best selection value, at its chosen "
        "checkpoint) with a model card (README.md) and verdict.json",
    )
    parser.add_argument(
        "--require-decided",
        action="store_true",
        help="with --verdict: refuse a verdict that is not decided (undecided, one seed, one method)",
    )
    parser.add_argument(
        "--margin",
        type=float,
        default=None,
        help="with --verdict: the tie margin as a share of the gain over the base model, in (0, 1) "
        "(default: the records' leaderboard.verdict_margin, else 0.2)",
    )
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument(
        "--merged",
        dest="adapter",
        action="store_false",
        help="merge a LoRA adapter into the base weights (the default)",
    )
    kind.add_argument("--adapter", dest="adapter", action="store_true", help="export a LoRA adapter alone")
    parser.set_defaults(adapter=False)
    return parser


def _check(args: argparse.Namespace) -> None:
    if args.step not in (None, "final", "ranked") and not str(args.step).isdigit():
        raise ExportError(f"--step {args.step} is invalid; use final or a step number.")
    if not args.verdict:
        extra = [
            o
            for o, given in (("--require-decided", args.require_decided), ("--margin", args.margin))
            if given
        ]
        if extra:
            raise ExportError(f"{' and '.join(extra)} apply with --verdict; add --verdict or leave them out.")
        if len(args.path) > 1:
            raise ExportError(
                f"{len(args.path)} paths given; export takes one trial or sweep (several with --verdict)."
            )
    elif args.rank != 1:
        raise ExportError(
            "--rank does not apply with --verdict (the verdict chooses the trial); leave it out."
        )


def _run(args: argparse.Namespace) -> tuple[Chosen, str, str]:
    """Export what ``args`` ask for; returns the chosen checkpoint, what was written and the verdict's state
    (empty without --verdict)."""
    _check(args)
    check_out(args.out)
    if not args.verdict:
        chosen = choose(args.path[0], args.rank, args.step)
        return chosen, export(chosen, args.out, adapter=args.adapter), ""
    from harness.export.model_card import model_card
    from harness.export.winner import choose_winner

    winner = choose_winner(args.path, args.margin, args.require_decided, args.step)
    files = {
        CARD_FILE: model_card(winner, merged=winner.chosen.is_adapter and not args.adapter),
        VERDICT_FILE: json.dumps(winner.verdict.to_dict(), indent=2) + "\n",
    }
    what = export(winner.chosen, args.out, adapter=args.adapter, files=files)
    return winner.chosen, what, winner.verdict.state


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m harness.export PATH... --out DIR [--verdict [--require-decided] [--margin S]] [--rank N]
    [--step final|N] [--adapter | --merged]``."""
    args = _parser().parse_args(argv)
    try:
        chosen, what, state = _run(args)
    except UserError as exc:
        print(f"harness.export: error: {exc}", file=sys.stderr)
        return 2
    card = f"; verdict {state!r}, model card {CARD_FILE} and {VERDICT_FILE}" if state else ""
    print(
        f"exported trial {chosen.name} ({chosen.record.method}), step {chosen.step}: {what}, with its "
        f"tokenizer{card}, to {args.out}"
    )
    return 0
