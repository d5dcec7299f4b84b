"""End to end through the command line: a multirun with a failing trial, its leaderboard, and a rebuild."""

from __future__ import annotations

import json

import pandas as pd

from tests.conftest import REPO, run_cli
from tests.helpers import FAST


def test_multirun_records_a_failing_trial_and_goes_on(tiny_world, tmp_path):
    env = {"PYTHONPATH": str(REPO / "tests" / "fixtures")}
    args = [
        "-m",
        "method=dpo,nan_demo,orpo",
        "plugins=[nan_plugin]",
        "sweep_name=with-failure",
        *tiny_world,
        *FAST,
    ]
    result = run_cli(args, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr[-3000:]

    records = [
        json.loads((tmp_path / "multirun" / "with-failure" / str(i) / "trial.json").read_text())
        for i in range(3)
    ]
    assert [r["status"] for r in records] == ["completed", "failed", "completed"]
    assert records[1]["error"]["message"].startswith("training loss became nan at step 2")
    for r in (records[0], records[2]):
        final = [c for c in r["checkpoints"] if c["final"]][0]
        assert final["step"] == 4 and "gold_reward" in final["metrics"] and "kl" in final["metrics"]
        assert r["reference"]["metrics"]["kl"] == 0.0
        assert r["versions"]["trl"] and r["peak_memory"]["rss_peak_mb"] > 0
        assert r["timings"]["train_s"] > 0 and r["hyperparameters"]["learning_rate"] > 0

    board = tmp_path / "leaderboards" / "with-failure"
    md = (board / "leaderboard.md").read_text()
    assert (
        "## Failed, pruned and interrupted trials" in md
        and "nan_demo" in md
        and "training loss became nan" in md
    )
    table = pd.read_csv(board / "leaderboard.csv")
    assert sorted(table["method"]) == ["dpo", "nan_demo", "orpo"]
    assert "Leaderboard (3 trials)" in result.stdout

    # The leaderboard is a pure function of the records: rebuilding it from disk gives the same table.
    rebuilt = run_cli(
        ["multirun/with-failure", "--out", "rebuilt"], cwd=tmp_path, module="harness.leaderboard"
    )
    assert rebuilt.returncode == 0, rebuilt.stderr
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "rebuilt" / "leaderboard.csv"), table)


def test_single_run_prints_its_result_and_fails_loudly(tiny_world, tmp_path):
    env = {"PYTHONPATH": str(REPO / "tests" / "fixtures")}
    ok = run_cli([*tiny_world, *FAST, "method=simpo"], cwd=tmp_path, env=env)
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert "simpo" in ok.stdout and "completed" in ok.stdout and "gold_reward" in ok.stdout
    bad = run_cli([*tiny_world, *FAST, "plugins=[nan_plugin]", "method=nan_demo"], cwd=tmp_path, env=env)
    assert bad.returncode == 1
    assert "failed" in bad.stdout and "training loss became nan" in bad.stdout
