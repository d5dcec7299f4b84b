"""The committed reference studies recompute from their trial records: each report's method means, intervals
and Holm-adjusted p-values, and its matched-KL cells, come out of ``records.jsonl.gz`` exactly as committed;
and every one of them was run on a toy world the toy defaults were never tuned on (issue 31)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1] / "leaderboards"
STUDIES = ("toy-reference", "toy-online-vs-offline")


def _rebuild(study: str, tmp_path: Path):
    from harness.leaderboard import load_leaderboard

    with gzip.open(ROOT / study / "records.jsonl.gz", "rt", encoding="utf-8") as f:
        lines = f.read().splitlines()
    for i, line in enumerate(lines):
        trial_dir = tmp_path / "records" / str(i)
        trial_dir.mkdir(parents=True)
        (trial_dir / "trial.json").write_text(line)
    return load_leaderboard([tmp_path / "records"]), [json.loads(line) for line in lines]


@pytest.mark.unit
@pytest.mark.parametrize("study", STUDIES)
def test_a_committed_study_recomputes_from_its_records(study, tmp_path):
    board, records = _rebuild(study, tmp_path)
    committed = pd.read_csv(ROOT / study / "methods.csv").set_index("method")
    rebuilt = board.method_summary.set_index("method")
    assert sorted(rebuilt.index) == sorted(committed.index)
    for column in ("n_seeds", "objective_mean", "objective_ci95", "survivors_mean", "p_vs_best", "p_holm"):
        pd.testing.assert_series_equal(
            rebuilt.loc[committed.index, column].astype(float),
            committed[column].astype(float),
            check_names=False,
            rtol=1e-9,
            atol=1e-12,
        )
    assert list(rebuilt.loc[committed.index, "verdict"]) == list(committed["verdict"])
    cells = pd.read_csv(ROOT / study / "matched_kl.csv").set_index("method")
    again = board.matched_kl.set_index("method")
    numbers = [c for c in cells.columns if c.startswith("at_kl_") and cells[c].dtype.kind == "f"]
    for column in numbers:
        pd.testing.assert_series_equal(
            again.loc[cells.index, column].astype(float), cells[column], check_names=False, rtol=1e-9
        )
    # held-out worlds only: every trial names its world, and none is one the toy defaults were tuned on
    from harness.toyworld.spec import TUNING_WORLDS

    worlds = {r["config"]["toyworld"]["spec"].get("seed", 0) for r in records}
    assert worlds and not worlds & set(TUNING_WORLDS)
    assert all("held out from the toy defaults' tuning" in r["data"]["source"] for r in records)
    assert f"toy world seed {min(worlds)}" in (ROOT / study / "leaderboard.md").read_text()


@pytest.mark.unit
@pytest.mark.parametrize("study", STUDIES)
def test_a_committed_report_opens_with_its_verdict_which_recomputes_from_its_records(study, tmp_path):
    from harness.leaderboard.analysis import verdict as V

    board, _ = _rebuild(study, tmp_path)
    again = json.loads(json.dumps(V.decide(board).to_dict()))
    committed = json.loads((ROOT / study / "verdict.json").read_text())
    for key in ("state", "headline", "details", "commands", "margin_share"):
        assert committed[key] == again[key], key
    for old, new in zip(committed["methods"], again["methods"], strict=True):
        assert (old["method"], old["status"], old["n_seeds"]) == (
            new["method"],
            new["status"],
            new["n_seeds"],
        )
        for key in ("selection_mean", "test_mean", "test_low", "test_high", "diff", "p_holm", "p_best"):
            expected = new[key] if new[key] is None else pytest.approx(new[key], rel=1e-9, abs=1e-12)
            assert old[key] == expected, (new["method"], key)
    md = (ROOT / study / "leaderboard.md").read_text()
    assert [line for line in md.splitlines() if line.startswith("## ")][0] == "## Verdict"
    assert committed["headline"] in md.split("## Verdict")[1].split("## ")[0]


@pytest.mark.unit
def test_the_main_jobs_committed_report_says_one_seed_cannot_rank_methods():
    committed = json.loads((ROOT / "toy-dpo-simpo-orpo" / "verdict.json").read_text())
    assert committed["state"] == "one seed"
    assert committed["headline"].startswith("No verdict: one seed per method ranks trials, not methods")
    assert committed["commands"][0].startswith("python -m harness -m method=dpo,orpo,simpo ")
    md = (ROOT / "toy-dpo-simpo-orpo" / "leaderboard.md").read_text()
    assert [line for line in md.splitlines() if line.startswith("## ")][0] == "## Verdict"
    assert committed["commands"][0] in md
