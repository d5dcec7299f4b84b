"""The committed racing benchmark (leaderboards/racing-benchmark) is what the racing rules give: a few of
its replays are recomputed from its record bundle with the rules and verdict the sweeper uses, and its
replays hold the claims the README makes of them."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "leaderboards" / "racing-benchmark"
sys.path.insert(0, str(REPO / "benchmarks"))

pytestmark = pytest.mark.skipif(not (BENCH / "records.jsonl.gz").is_file(), reason="no committed benchmark")


def test_replays_recomputed_from_the_bundle_match_the_committed_ones():
    import racing

    from harness.race import evidence as race_evidence

    committed = pd.read_csv(BENCH / "replays.csv", dtype={"order": str})
    for world, rows in committed.groupby("world"):
        records = racing.world_records(BENCH, int(world))
        ev = race_evidence.collect(records)
        total = sum(ev.steps.values())
        for _, row in rows.iloc[::40].iterrows():  # 3 of the 120 seed orders per world
            out = racing.replay(records, ev, tuple(int(c) for c in row["order"]), int(0.4 * total), 1)
            assert (out["recommended"], out["trials"], out["why"], out["state"]) == (
                row["recommended"],
                row["trials"],
                row["why"],
                row["state"],
            )
            assert out["confidence"] == pytest.approx(row["confidence"], abs=1e-9)


def test_racing_is_right_at_least_nine_times_in_ten_at_under_forty_percent_of_the_compute():
    committed = pd.read_csv(BENCH / "replays.csv", dtype={"order": str})
    assert set(committed["world"]) >= {0, 3, 4} and (committed.groupby("world").size() >= 50).all()
    assert committed["share"].max() <= 0.4
    assert committed.groupby("world")["right"].mean().min() >= 0.9
