"""What the data lost before training, per method and per trial: rows read, ties dropped, rows dropped because
their prompt alone fills the method's maximum length, rows the trainer truncates, and the rows trained on.

The figures are each record's ``data`` (:class:`~harness.records.DataSummary`, filled by
:func:`harness.data.fit_to_length` and the loader's report); this module only tabulates them. Trials of one
method whose figures agree share a row (``trials`` counts them); a method whose trials differ (a swept
``method.trl.max_length``) has a row per distinct set of figures. Shares are of the rows read (ties) or of
the examples in the method's kind before fitting to its length (pairs; twice as many unpaired examples for
KTO), so methods of different kinds compare.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from harness.records import TrialRecord

#: The meaning of the table's columns (HTML header tooltips, and the caption).
NOTES = {
    "trials": "trials with these figures",
    "max_length": "the method's maximum tokens per sequence (method.trl.max_length; blank: no limit)",
    "rows_read": "rows read from the data (pairs)",
    "ties_dropped": "pairs dropped because both answers were equally good (share of the rows read)",
    "examples": "training examples in the method's kind before fitting to its length "
    "(pairs; unpaired examples for KTO)",
    "dropped_long_prompt": "examples dropped because the prompt alone fills max_length (share of examples)",
    "truncated": "examples the trainer truncates to max_length (share of examples)",
    "trained_on": "examples the method trained on",
}
COLUMNS = ("method", *NOTES)


def _share(part: int, whole: int) -> str:
    """``part`` with its share of ``whole``: ``"95 (15.6%)"``, ``"0"`` for none."""
    if not part:
        return "0"
    share = 100 * part / whole if whole else 0.0
    return f"{part} ({'<0.1' if 0 < share < 0.1 else f'{share:.1f}'}%)"


def _figures(record: TrialRecord) -> tuple[Any, ...] | None:
    """(max_length, rows read, ties dropped, examples, dropped for a long prompt, truncated, trained on) of a
    record whose data was fitted to its length; None for one that got no further than loading."""
    data = record.data
    if data is None or data.truncated is None or data.train_examples is None:
        return None
    dropped = int(data.dropped_long_prompt or 0)
    return (
        data.max_length,
        int(data.rows_in or 0),
        int(data.ties_dropped or 0),
        int(data.train_examples) + dropped,
        dropped,
        int(data.truncated),
        int(data.train_examples),
    )


def lost_anything(records: Sequence[TrialRecord]) -> bool:
    """Whether any record's data lost rows (ties or long prompts dropped) or had rows truncated."""
    return any(f is not None and (f[2] or f[4] or f[5]) for f in map(_figures, records))


def data_loss_table(records: Sequence[TrialRecord]) -> pd.DataFrame:
    """One row per method and distinct set of data figures (see the module docstring), methods in name order;
    counts with their shares as text (``"95 (15.6%)"``). Empty when no record was fitted to its length."""
    groups: dict[tuple[str, tuple[Any, ...]], int] = {}
    for record in records:
        figures = _figures(record)
        if figures is not None:
            key = (str(record.method), figures)
            groups[key] = groups.get(key, 0) + 1
    rows = []
    for (method, figures), count in sorted(groups.items(), key=lambda item: (item[0][0], str(item[0][1]))):
        max_length, read, ties, examples, dropped, truncated, trained = figures
        rows.append(
            {
                "method": method,
                "trials": count,
                "max_length": max_length,
                "rows_read": read,
                "ties_dropped": _share(ties, read),
                "examples": examples,
                "dropped_long_prompt": _share(dropped, examples),
                "truncated": _share(truncated, examples),
                "trained_on": trained,
            }
        )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def kept_share(table: pd.DataFrame) -> dict[str, float]:
    """Each row's share of its examples trained on, by method (the lowest of a method's rows)."""
    shares: dict[str, float] = {}
    for row in table.itertuples(index=False):
        share = row.trained_on / row.examples if row.examples else 1.0
        shares[row.method] = min(share, shares.get(row.method, 1.0))
    return shares


def unequal_note(table: pd.DataFrame) -> str | None:
    """One sentence when the methods trained on different shares of their examples (by more than 0.1
    percentage point), naming each method's share; None otherwise."""
    shares = kept_share(table)
    if len(shares) < 2 or max(shares.values()) - min(shares.values()) <= 0.001:
        return None
    listed = ", ".join(f"{method} {100 * share:.1f}%" for method, share in shares.items())
    return (
        "The methods trained on different shares of their data (" + listed + "): their scores compare "
        "models trained on different rows; give them the same `method.trl.max_length` (or filter the long "
        "prompts out of the data) to compare them on the same rows."
    )
