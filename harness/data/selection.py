"""Held-out data in two disjoint parts: the reported (test) part and the selection (validation) part.

A trial's checkpoint is chosen (its best within the KL budget, and the value Optuna optimises) on *selection*
prompts; every number a report shows comes from the *reported* prompts. Choosing and reporting on the same
prompts and sampling seed would report the luckiest checkpoint's score, an optimistic one.

Where the selection part comes from:

- a data source that provides its own selection prompts (and pairs), like the toy world
  (``PreferenceData.selection_prompts`` / ``selection_pairs``): those;
- any other data: the held-out prompts are split deterministically. The reported prompts are the first
  ``eval.num_prompts`` (as before; with ``null``, all but the selection ones, keeping at least half for
  reporting), the selection prompts the last ``eval.selection.num_prompts`` of the remaining ones. Held-out
  preference pairs follow their prompts: the pairs of selection prompts are the selection pairs, the others
  are reported (at most ``eval.preference_pairs`` of each, in order).

When too few prompts remain, the selection part takes what is left and :attr:`HeldOutSplit.warning` says so in
one line; with none left, selection falls back to the reported prompts and pairs (``disjoint`` is False). When
no held-out pair belongs to a selection prompt, the selection part uses the reported pairs (``pairs_disjoint``
is False).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


def _key(prompt: Any) -> str:
    return prompt if isinstance(prompt, str) else json.dumps(prompt, sort_keys=True)


@dataclass(frozen=True)
class HeldOutSplit:
    """The held-out data of a trial, split (see the module docstring).

    :param prompts: the reported (test) prompts.
    :param selection_prompts: the selection prompts (the reported ones when none are left).
    :param pair_rows: rows of the held-out pairs (``PreferenceData.eval``) that are reported.
    :param selection_pair_rows: rows of the selection pairs: of ``PreferenceData.selection_pairs`` when
        ``pairs_given``, else of ``PreferenceData.eval`` (the reported rows when no pair is a selection
        prompt's).
    :param disjoint: whether no selection prompt is a reported one.
    :param pairs_disjoint: whether the selection pairs are other pairs than the reported ones
        (None: no pairs).
    :param warning: one line when the selection part is smaller than asked for, else None.
    """

    prompts: list[Any]
    selection_prompts: list[Any]
    pair_rows: list[int]
    selection_pair_rows: list[int]
    pairs_given: bool
    disjoint: bool
    pairs_disjoint: bool | None
    warning: str | None = None


def take(total: int, reported: int | None, wanted: int) -> tuple[int, int]:
    """``(n_reported, n_selection)`` of ``total`` items: the first ``n_reported`` are reported, the last
    ``n_selection`` are for selection, disjoint. ``reported=None`` reports all but the selection items,
    keeping at least half for reporting."""
    if reported is None:
        n_selection = min(wanted, total // 2)
        return total - n_selection, n_selection
    n_reported = min(reported, total)
    return n_reported, min(wanted, total - n_reported)


def _split_prompts(
    prompts: Sequence[Any], num_prompts: int | None, wanted: int, given: Sequence[Any] | None
) -> tuple[list[Any], list[Any], str | None]:
    """Reported prompts, selection prompts (empty: none left) and why fewer than ``wanted``, if so."""
    if given is not None:
        reported = list(prompts[:num_prompts] if num_prompts else prompts)
        chosen = list(given[:wanted])
        short = (
            f"the data source provides {len(chosen)} selection prompts, fewer than "
            f"eval.selection.num_prompts={wanted}"
            if len(chosen) < wanted
            else None
        )
        return reported, chosen, short
    n_reported, n_selection = take(len(prompts), num_prompts, wanted)
    reported = list(prompts[:n_reported])
    chosen = list(prompts[len(prompts) - n_selection :]) if n_selection else []
    short = None
    if n_selection < wanted:
        after = f"the {n_reported} reported ones" if num_prompts is not None else "keeping half for reporting"
        short = (
            f"eval.selection.num_prompts={wanted} but only {n_selection} of {len(prompts)} held-out prompts "
            f"are left after {after}"
            + (f": checkpoints are chosen on those {n_selection}" if n_selection else "")
        )
    return reported, chosen, short


def _split_pairs(
    pair_prompts: Sequence[Any], num_pairs: int, selection: set[str] | None
) -> tuple[list[int], list[int]]:
    """Rows of the reported and the selection pairs: those of the ``selection`` prompts are for selection, the
    others reported; with no selection prompts (None), or no pair on one side, the first rows, for both."""
    keys = [_key(p) for p in pair_prompts]
    chosen = [i for i, k in enumerate(keys) if selection is not None and k in selection][:num_pairs]
    reported = [i for i, k in enumerate(keys) if selection is None or k not in selection][:num_pairs]
    if not chosen or not reported:
        first = list(range(min(num_pairs, len(keys))))
        return first, first
    return reported, chosen


def split_held_out(
    prompts: Sequence[Any],
    num_prompts: int | None,
    num_selection: int,
    *,
    pair_prompts: Sequence[Any] = (),
    num_pairs: int = 0,
    given_prompts: Sequence[Any] | None = None,
    given_pair_rows: int | None = None,
) -> HeldOutSplit:
    """Split held-out prompts and pair rows into reported and selection parts (see the module docstring).

    :param prompts: the held-out prompts (``PreferenceData.eval_prompts``).
    :param num_prompts: ``eval.num_prompts`` (None: all).
    :param num_selection: ``eval.selection.num_prompts`` (> 0).
    :param pair_prompts: the prompt of each held-out pair row, in order (empty: no pairs).
    :param num_pairs: ``eval.preference_pairs``: pairs reported, and at most as many for selection.
    :param given_prompts: the data source's own selection prompts, if it has them.
    :param given_pair_rows: how many selection pairs the data source provides, if it does.
    """
    reported, chosen, short = _split_prompts(prompts, num_prompts, num_selection, given_prompts)
    disjoint = bool(chosen) and not {_key(p) for p in chosen} & {_key(p) for p in reported}
    problems = [short] if short else []
    if not chosen:
        chosen = reported
        problems.append(
            "checkpoints are chosen on the reported prompts (optimistic scores); hold out more data "
            "or lower eval.num_prompts"
        )
    pairs_given = bool(given_pair_rows)
    if pairs_given:
        pair_rows = list(range(min(num_pairs, len(pair_prompts))))
        selection_rows = list(range(min(num_pairs, int(given_pair_rows or 0))))
    else:
        pair_rows, selection_rows = _split_pairs(
            pair_prompts, num_pairs, {_key(p) for p in chosen} if disjoint else None
        )
    pairs_disjoint = None if not len(pair_prompts) else pairs_given or selection_rows != pair_rows
    warning = "; ".join(problems) + "." if problems else None
    return HeldOutSplit(
        reported, chosen, pair_rows, selection_rows, pairs_given, disjoint, pairs_disjoint, warning
    )
