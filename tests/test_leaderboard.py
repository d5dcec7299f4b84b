"""The leaderboard is a pure function of trial records: ranking, failed trials, files, CLI rebuild."""

from __future__ import annotations

import pandas as pd

from harness import leaderboard
from harness.records import RECORD_NAME, write_record


def record(method, beta, gold, kl, status="completed", error=None, job=0):
    return {
        "status": status, "method": method, "error": error,
        "hyperparameters": {"beta": beta, "learning_rate": 1e-4, "seed": 0},
        "overrides": [f"method={method}", f"method.beta={beta}"],
        "reference": {"metrics": {"gold_reward": -0.2, "kl": 0.0}},
        "checkpoints": [] if status != "completed" else
        [{"step": 5, "final": False, "metrics": {"gold_reward": gold - 0.1, "kl": kl / 2}},
         {"step": 10, "final": True, "metrics": {"gold_reward": gold, "gold_reward_se": 0.01, "kl": kl}}],
        "timings": {"train_s": 3.0}, "peak_memory": {"rss_peak_mb": 900.0}, "models_in_memory": 2,
        "eval_prompts": 128,
    }


def write_sweep(root):
    rows = [record("dpo", 0.1, 0.4, 2.0), record("simpo", 0.1, 0.6, 3.0), record("orpo", 0.05, 0.1, 1.0),
            record("kto", 0.1, None, None, status="failed",
                   error={"type": "TrialFailed", "message": "training loss became nan at step 3"})]
    for i, r in enumerate(rows):
        write_record(root / str(i) / RECORD_NAME, r)


def test_ranks_completed_by_gold_reward_and_lists_failures(tmp_path):
    write_sweep(tmp_path)
    board = leaderboard.build_leaderboard([tmp_path])
    df = board.table
    assert list(df["method"]) == ["simpo", "dpo", "orpo", "kto"]
    assert list(df["rank"][:3]) == [1, 2, 3] and pd.isna(df["rank"].iloc[3])
    assert df.loc[df.method == "dpo", "gold_reward"].item() == 0.4  # the final checkpoint, not the first
    assert df.loc[df.method == "dpo", "base_gold"].item() == -0.2
    assert "beta" in df.columns and "learning_rate" not in df.columns  # only varying hyperparameters
    assert df.loc[df.method == "kto", "reason"].item().startswith("training loss became nan")


def test_writes_markdown_and_csv(tmp_path):
    write_sweep(tmp_path / "sweep")
    out = tmp_path / "report"
    leaderboard.write_leaderboard([tmp_path / "sweep"], out)
    md = (out / "leaderboard.md").read_text()
    assert "| simpo" in md.replace("|  ", "| ") or "simpo" in md.split("## Failed")[0]
    assert "## Failed and pruned trials" in md and "training loss became nan" in md
    assert "python -m harness method=dpo method.beta=0.1" in md
    csv = pd.read_csv(out / "leaderboard.csv")
    assert len(csv) == 4 and set(csv["status"]) == {"completed", "failed"}


def test_cli_rebuilds_from_disk(tmp_path, capsys):
    write_sweep(tmp_path / "mysweep")
    out = tmp_path / "lb"
    assert leaderboard.main([str(tmp_path / "mysweep"), "--out", str(out)]) == 0
    assert (out / "leaderboard.md").exists()
    assert "simpo" in capsys.readouterr().out


def test_cli_reports_missing_directory(tmp_path, capsys):
    assert leaderboard.main([str(tmp_path / "nope")]) == 2
    assert "no such file or directory" in capsys.readouterr().err


def test_empty_directory_gives_empty_report(tmp_path):
    board = leaderboard.write_leaderboard([tmp_path], tmp_path / "out")
    assert board.table.empty
    assert "No trial records" in (tmp_path / "out" / "leaderboard.md").read_text()
