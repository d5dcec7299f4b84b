"""Reward at matched KL: each method read off its own reward-vs-KL frontier at common KL values,
never extrapolated."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from harness import leaderboard
from harness.config.sweep_checks import check_matched_kl
from harness.errors import ConfigError
from harness.leaderboard.analysis.frontier import frontier_at
from harness.leaderboard.analysis.matched_kl import level_columns, matched_kl_table
from harness.leaderboard.analysis.matched_kl_cells import BELOW
from harness.plugin.manager import get_plugin_manager
from tests.helpers import make_record

pytestmark = pytest.mark.unit

BUILTIN = {m.name: m.to_record(e.name) for e in get_plugin_manager().evaluators.values() for m in e.metrics}


def record(method, checkpoints, trial, reward=None, data_kind="pairwise", matched=None, base=0.012):
    """A completed trial with the given (step, gold reward, KL) checkpoints."""
    config = {"model": {"name_or_path": "toy"}, "data": {"source": "toy"}, "eval": {"num_prompts": 128}}
    if matched is not None:
        config["leaderboard"] = {"matched_kl": matched}
    return make_record(
        trial_id=f"sweep/{trial}",
        status="completed",
        method=method,
        error=None,
        hyperparameters={"seed": 0, **({"reward": reward} if reward else {})},
        overrides=[f"method={method}"],
        data_kind=data_kind,
        config=config,
        reference={"metrics": {"gold_reward": base, "kl": 0.0}},
        checkpoints=[
            {
                "step": s,
                "final": i == len(checkpoints) - 1,
                "metrics": {"gold_reward": g, "gold_reward_se": 0.03, "kl": k, "kl_se": 0.2},
            }
            for i, (s, g, k) in enumerate(checkpoints)
        ],
        timings={"train_s": 10.0},
        peak_memory={"rss_peak_mb": 500.0},
        models_in_memory=2,
        eval_prompts=128,
        metric_declarations=BUILTIN,
    )


# The seed's toy-world example: PPO ranks first at 7.2 nats, DPO second at 2.0; at 2 nats DPO is ahead only of
# PPO's straight line from the reference to its first checkpoint at 2.5 nats (marked).
PPO = record(
    "ppo", [(20, 0.30, 2.5), (40, 0.60, 5.0), (60, 0.732, 7.2)], 0, reward="gold", data_kind="prompts"
)
DPO = record("dpo", [(100, 0.20, 1.0), (375, 0.344, 2.0)], 1)


def test_the_frontier_is_interpolated_exactly_between_envelope_points():
    # (2, 0.1) is dominated by (1, 0.2): not on the envelope; the reference is the envelope's start at KL 0.
    kls, values = [1.0, 2.0, 3.0], [0.2, 0.1, 0.6]
    at = frontier_at(kls, values, [0.5, 1.0, 2.0, 2.5, 3.0], reference=0.0)
    assert at == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.6])


def test_the_frontier_is_never_extrapolated():
    at = frontier_at([1.0, 3.0, 6.0], [0.2, 0.6, -1.0], [0.5, 4.0, 6.0, 6.5])
    assert math.isnan(at[0])  # below the smallest KL, without a reference: unknown
    assert at[1] == at[2] == 0.6  # up to the largest KL measured, the best reward within it
    assert math.isnan(at[3])  # beyond it: unknown
    assert all(math.isnan(v) for v in frontier_at([], [], [1.0, 2.0]))


def test_ppo_above_dpo_at_its_own_kl_is_below_it_at_kl_2():
    board = leaderboard.build([PPO, DPO])
    assert list(board.trials["method"]) == ["ppo", "dpo"]  # the budget ranking: PPO first
    table = board.matched_kl.set_index("method")
    assert list(table.columns[:4]) == ["trains_on", "selected_on", "trials", "max_kl"]
    assert level_columns(board.matched_kl) == ["at_kl_1", "at_kl_2", "at_kl_5"]
    assert table.loc["dpo", "at_kl_2"] == pytest.approx(0.344) and table.loc["dpo", "at_kl_2_mark"] == ""
    assert table.loc["ppo", "at_kl_2"] == pytest.approx(
        0.012 + (0.30 - 0.012) * 2 / 2.5
    )  # from the reference: below PPO's lowest measured KL, so marked
    assert table.loc["ppo", "at_kl_2_mark"] == BELOW
    assert table.loc["dpo", "at_kl_2"] > table.loc["ppo", "at_kl_2"]
    assert table.loc["ppo", "at_kl_5"] == pytest.approx(0.60) and pd.isna(table.loc["dpo", "at_kl_5"])
    assert list(board.matched_kl["method"]) == ["dpo", "ppo"]  # ordered by the first KL value
    assert table.loc["ppo", "trains_on"] == "gold reward (the objective itself)"
    assert table.loc["dpo", "trains_on"] == "preferences" and table.loc["dpo", "max_kl"] == 2.0
    assert set(table["selected_on"]) == {"test prompts"}  # these records have no selection values


def test_reward_sources_are_named():
    rm = record("grpo", [(10, 0.1, 1.0)], 2, reward="/models/rm", data_kind="prompts")
    kto = record("kto", [(10, 0.1, 1.0)], 3, data_kind="unpaired")
    sources = matched_kl_table(leaderboard.build([rm, kto]).checkpoints, [rm, kto], "gold_reward").set_index(
        "method"
    )["trains_on"]
    assert sources["grpo"] == "reward model /models/rm" and sources["kto"] == "preferences (unpaired labels)"


def test_reports_show_the_table_and_write_its_csv(tmp_path):
    board = leaderboard.build([PPO, DPO])
    leaderboard.write_reports(board, tmp_path)
    md = (tmp_path / "leaderboard.md").read_text()
    section = md.split("## Reward at matched KL")[1].split("\n## ")[0]
    assert "never extrapolated" in section and "| dpo " in section and "the objective itself" in section
    assert "0.344 [" in section and "†" in section  # a value with its interval; PPO's marked cell
    assert "at_kl_2" in (tmp_path / "leaderboard.html").read_text()
    csv = pd.read_csv(tmp_path / "matched_kl.csv")
    assert list(csv["method"]) == ["dpo", "ppo"] and pd.isna(csv.loc[0, "at_kl_5"])


def test_kl_values_come_from_the_config_and_are_validated():
    board = leaderboard.build([record("dpo", [(10, 0.2, 1.0), (20, 0.4, 3.0)], 0, matched=[3, 0.5])])
    assert level_columns(board.matched_kl) == ["at_kl_0.5", "at_kl_3"]
    assert leaderboard.build([record("dpo", [(10, 0.2, 1.0)], 0, matched=[])]).matched_kl.empty
    assert check_matched_kl([5, 1, 2, 2]) == (1.0, 2.0, 5.0) and check_matched_kl(None) == ()
    for bad in ([0], [-1, 2], ["a"], "1,2", [True], [math.inf]):
        with pytest.raises(ConfigError, match="leaderboard.matched_kl"):
            check_matched_kl(bad)


def test_a_minimised_objective_uses_the_lower_envelope():
    at = matched_kl_table(
        pd.DataFrame({"method": "m", "trial_id": "t", "kl": [1.0, 2.0], "loss": [0.5, 0.3]}),
        [],
        "loss",
        direction="minimize",
        levels=[1.0, 1.5, 2.0],
    )
    assert list(at.loc[0, ["at_kl_1", "at_kl_1.5", "at_kl_2"]]) == pytest.approx([0.5, 0.4, 0.3])


def test_a_bad_matched_kl_stops_the_command_line_with_one_line(tmp_path, monkeypatch, capsys):
    from harness.cli.app import main

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main(["leaderboard.matched_kl=[0,2]"])
    assert exited.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert lines == [
        "harness: error: leaderboard.matched_kl=[0, 2] is invalid: 0 is not a KL value in nats > 0; "
        "give a list such as [1, 2, 5]."
    ]


def test_a_diverged_checkpoint_is_no_point_of_the_frontier():
    """KTO's seed that blew up to KL 120 with a gold reward of -5 must not stretch its frontier to KL 5."""
    frame = pd.DataFrame(
        {
            "method": "kto",
            "trial_id": ["ok", "ok", "blown"],
            "kl": [0.5, 1.5, 120.0],
            "gold_reward": [0.1, 0.2, -5.0],
        }
    )
    at = matched_kl_table(frame, [], "gold_reward", levels=(1.0, 5.0)).iloc[0]
    assert at["at_kl_1"] == pytest.approx(0.15) and math.isnan(at["at_kl_5"]) and at["max_kl"] == 1.5
