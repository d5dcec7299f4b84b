"""Reward at matched KL without choosing on the test set: each seed's points chosen on selection values and
the test values read there, cells below the lowest measured KL or across wide gaps marked, intervals by
bootstrap over seeds and evaluation noise, and test-value choices said so."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from harness import leaderboard
from harness.config.sweep_checks import DEFAULT_MATCHED_KL_MAX_GAP
from harness.leaderboard.analysis import bootstrap
from harness.leaderboard.analysis.frontier import REFERENCE, frontier_at, read
from harness.leaderboard.analysis.matched_kl import matched_kl_table, max_gap_of
from harness.leaderboard.analysis.matched_kl_cells import BELOW, GAP
from harness.plugin.manager import get_plugin_manager
from tests.helpers import cli_error_line, make_record

pytestmark = pytest.mark.unit

BUILTIN = {m.name: m.to_record(e.name) for e in get_plugin_manager().evaluators.values() for m in e.metrics}


def trial(method, points, job, seed=0, beta=0.1, se=0.03, board=None):
    """A completed trial; ``points``: (step, test gold, test KL) or (step, test gold, test KL, selection gold,
    selection KL) per checkpoint (without the last two: no selection values). The reference has gold 0 on
    both prompt sets."""
    config = {"model": {"name_or_path": "toy"}, "data": {"source": "toy"}, "eval": {"num_prompts": 128}}
    if board is not None:
        config["leaderboard"] = board
    checkpoints = []
    for i, (step, gold, kl, *chosen) in enumerate(points):
        entry = {
            "step": step,
            "final": i == len(points) - 1,
            "metrics": {"gold_reward": gold, "gold_reward_se": se, "kl": kl, "kl_se": 0.1},
        }
        if chosen:
            entry["selection"] = {"metrics": {"gold_reward": chosen[0], "kl": chosen[1]}}
        checkpoints.append(entry)
    reference = {"metrics": {"gold_reward": 0.0, "gold_reward_se": se, "kl": 0.0}}
    if any(len(p) > 3 for p in points):
        reference["selection"] = {"metrics": {"gold_reward": 0.0, "kl": 0.0}}
    return make_record(
        trial_id=f"sweep/{job}",
        method=method,
        hyperparameters={"seed": seed, "beta": beta},
        overrides=[f"method={method}", f"method.beta={beta}", f"seed={seed}"],
        config=config,
        reference=reference,
        checkpoints=checkpoints,
        eval_prompts=128,
        metric_declarations=BUILTIN,
    )


def table(records, levels, max_gap="records"):
    board = leaderboard.build(records)
    frame = matched_kl_table(
        board.checkpoints, records, "gold_reward", declared=board.declarations, levels=levels,
        swept=board.swept, max_gap=max_gap,
    )  # fmt: skip
    return frame.set_index("method")


def section(tmp_path, records):
    """The Markdown and HTML of the Reward at matched KL section of ``records``' reports."""
    leaderboard.write_reports(leaderboard.build(records), tmp_path)
    md = (tmp_path / "leaderboard.md").read_text().split("## Reward at matched KL")[1].split("\n## ")[0]
    html = (tmp_path / "leaderboard.html").read_text()
    return md, html[html.index('id="matched_kl"') :]


# A: the best test value (0.5 at KL 1) but a poor selection value; B: the best on selection.
CHOSEN_ON_SELECTION = trial("dpo", [(10, 0.50, 1.0, 0.10, 1.0), (20, 0.20, 2.0, 0.30, 2.0)], 0)


def test_the_test_value_is_read_at_the_points_chosen_on_selection_not_the_best_test_point():
    at = table([CHOSEN_ON_SELECTION], levels=(1.5, 2.0)).loc["dpo"]
    # on test values alone the frontier at 2 nats is A's 0.5 (the best within the KL): chosen on the test set
    assert frontier_at([1.0, 2.0], [0.50, 0.20], [2.0], reference=0.0) == [0.5]
    assert at["at_kl_2"] == pytest.approx(0.20)  # B, chosen on selection, read on test
    assert at["at_kl_1.5"] == pytest.approx(0.5 * 0.50 + 0.5 * 0.20)  # A and B with the selection's weights
    assert at["selected_on"] == "selection prompts" and at["at_kl_2_mark"] == at["at_kl_1.5_mark"] == ""


def test_the_weights_come_from_the_selection_kl():
    # selection KL 1 and 3 (test KL 1 and 2): at 2 nats halfway between them, whatever the test KL says
    record = trial("dpo", [(10, 0.40, 1.0, 0.1, 1.0), (20, 0.20, 2.0, 0.3, 3.0)], 0)
    at = table([record], levels=(2.0,), max_gap=None).loc["dpo"]
    assert at["at_kl_2"] == pytest.approx(0.30) and at["at_kl_2_gap"] == pytest.approx(2.0)
    assert at["max_kl"] == 3.0  # measured where the points were chosen


def test_frontier_readings_name_the_points_and_weights():
    below, between, on, past, beyond = read([2.0, 4.0, 5.0], [0.3, 0.6, 0.5], [1.0, 3.0, 4.0, 4.5, 6.0], 0.0)
    assert (below.lower, below.upper, below.weight, below.below_lowest) == (REFERENCE, 0, 0.5, True)
    assert (between.lower, between.upper, between.gap, between.below_lowest) == (0, 1, 2.0, False)
    assert (on.lower, on.weight, on.interpolated) == (1, 0.0, False)
    assert (past.lower, past.upper, past.gap) == (1, 1, 0.0)  # past the envelope: the best point within it
    assert beyond is None  # beyond the largest KL measured: never extrapolated
    assert between.combine([1.0, 2.0, 9.0], None) == pytest.approx(1.5)


# PPO's issue-31 shape: measured at 1.65 and 5.38 nats only.
WIDE = trial("ppo", [(20, 0.30, 1.65), (40, 0.60, 5.38)], 0)


def test_cells_below_the_lowest_kl_and_across_wide_gaps_are_marked():
    at = table([WIDE], levels=(1.0, 2.0, 5.38)).loc["ppo"]
    assert at["at_kl_1_mark"] == BELOW  # a straight line from the reference to the first checkpoint
    assert at["at_kl_1"] == pytest.approx(0.30 / 1.65)
    assert at["at_kl_2_mark"] == GAP and at["at_kl_2_gap"] == pytest.approx(5.38 - 1.65)
    assert at["at_kl_5.38_mark"] == ""  # on a measured checkpoint
    assert table([WIDE], levels=(2.0,), max_gap=None).loc["ppo", "at_kl_2_mark"] == ""  # null: never marked
    assert table([WIDE], levels=(2.0,), max_gap=4.0).loc["ppo", "at_kl_2_mark"] == ""
    assert table([WIDE], levels=(2.0,), max_gap=3.0).loc["ppo", "at_kl_2_mark"] == GAP


def test_the_reports_show_and_explain_the_marks(tmp_path):
    md, html = section(tmp_path, [WIDE])
    assert "0.182 [0.1" in md and f"] {BELOW}" in md  # cells: value [interval] mark
    for text in (md, html):
        assert BELOW in text and GAP in text
        assert "lowest measured KL" in text and "matched_kl_max_gap" in text and "= 1 nat" in text
        assert "test prompts" in text  # no selection values: chosen on the values shown
    assert "evaluation noise alone" in md  # one seed: the seeds are missing


def test_a_gap_setting_from_the_records_and_its_default():
    assert max_gap_of([WIDE]) == DEFAULT_MATCHED_KL_MAX_GAP == 1.0  # records older than the setting
    assert max_gap_of([trial("ppo", [(20, 0.3, 1.65)], 0, board={"matched_kl_max_gap": None})]) is None
    assert max_gap_of([trial("ppo", [(20, 0.3, 1.65)], 0, board={"matched_kl_max_gap": 4})]) == 4.0


def test_a_bad_gap_stops_the_command_line_with_one_line(tmp_path, monkeypatch, capsys):
    line = cli_error_line(tmp_path, monkeypatch, capsys, ["leaderboard.matched_kl_max_gap=0"])
    assert line == (
        "harness: error: leaderboard.matched_kl_max_gap=0 is invalid; use a KL gap in nats > 0, or null "
        "(never marked)."
    )


def test_without_selection_values_the_cell_is_chosen_on_test_and_says_so(tmp_path):
    plain = trial("simpo", [(10, 0.50, 1.0), (20, 0.20, 2.0)], 1)
    at = table([CHOSEN_ON_SELECTION, plain], levels=(2.0,))
    assert at.loc["simpo", "selected_on"] == "test prompts" and at.loc["simpo", "at_kl_2"] == pytest.approx(
        0.5
    )
    assert at.loc["dpo", "selected_on"] == "selection prompts"
    md, html = section(tmp_path, [CHOSEN_ON_SELECTION, plain])
    for text in (md, html):
        assert "which flatters it" in text and "eval.selection.num_prompts=0" in text


def test_settings_are_chosen_on_selection_and_every_seed_counts():
    # beta 0.1: the better test values, the worse selection values; beta 0.3: one of three seeds diverged
    good_test = [trial("dpo", [(10, 0.9, 2.0, 0.1, 2.0)], j, seed=j, beta=0.1) for j in (0, 1)]
    chosen = [trial("dpo", [(10, 0.3 + 0.1 * j, 2.0, 0.5, 2.0)], 2 + j, seed=j, beta=0.3) for j in (0, 1)]
    blown = trial("dpo", [(10, -5.0, 40.0, -5.0, 40.0)], 4, seed=2, beta=0.3)
    at = table([*good_test, *chosen, blown], levels=(2.0,)).loc["dpo"]
    assert at["at_kl_2_setting"] == "beta=0.3" and at["at_kl_2"] == pytest.approx(0.35)
    assert (at["at_kl_2_seeds"], at["at_kl_2_of"], at["trials"]) == (2, 3, 5)
    assert at["at_kl_2_low"] < 0.3 < 0.4 < at["at_kl_2_high"]  # two seeds: at least the t interval
    shown = leaderboard.build([*good_test, *chosen, blown])
    cells = shown.matched_kl.set_index("method")
    assert pd.isna(cells.loc["dpo", "at_kl_1"]) or cells.loc["dpo", "at_kl_1_of"] == 3


def test_the_bootstrap_interval_contains_the_mean_and_widens_in_the_right_order():
    one = bootstrap.interval([0.30], [0.05])
    assert one[0] < 0.30 < one[1] and one[1] - one[0] == pytest.approx(2 * 1.96 * 0.05, rel=0.05)
    assert all(math.isnan(x) for x in bootstrap.interval([0.30]))  # one seed, no standard error: none
    quiet = bootstrap.interval([0.1, 0.2, 0.3], [0.0, 0.0, 0.0])
    noisy = bootstrap.interval([0.1, 0.2, 0.3], [0.3, 0.3, 0.3])
    half_t = 4.303 * 0.1 / math.sqrt(3)  # t(0.975, 2) · s / sqrt(n): the seeds alone
    assert quiet == pytest.approx((0.2 - half_t, 0.2 + half_t), abs=1e-3)  # never narrower than it
    assert noisy[0] < quiet[0] < 0.2 < quiet[1] < noisy[1]  # evaluation noise widens it
    many = bootstrap.interval([0.1, 0.2, 0.3] * 10, [0.0] * 30)
    assert quiet[0] < many[0] < 0.2 < many[1] < quiet[1]  # more seeds narrow it
    assert bootstrap.interval([0.1, 0.5], [0.02, 0.02]) == bootstrap.interval([0.1, 0.5], [0.02, 0.02])


def test_one_seed_shows_the_prompt_level_interval():
    at = table([CHOSEN_ON_SELECTION], levels=(2.0,)).loc["dpo"]
    low, high = at["at_kl_2_low"], at["at_kl_2_high"]
    assert low < 0.20 < high and high - low == pytest.approx(2 * 1.96 * 0.03, rel=0.05)


@pytest.mark.unit
def test_the_interval_resamples_the_shared_test_prompts_once_for_every_seed():
    """Four seeds scored on the same 128 prompts: a hard draw of prompts is hard for all of them, so the
    prompts' noise does not shrink with the seeds (it would, drawn independently per seed)."""
    import numpy as np

    from harness.leaderboard.analysis import bootstrap

    rng = np.random.default_rng(1)
    shape = rng.normal(0.0, 0.5, 128)
    offsets = [0.300, 0.301, 0.302, 0.303]  # seeds that barely differ
    rows = [shape - shape.mean() + o for o in offsets]
    se = float(shape.std(ddof=1) / np.sqrt(128))
    low, high = bootstrap.interval(offsets, [se] * 4, prompts=rows)
    assert (high - low) / 2 == pytest.approx(1.96 * se, rel=0.1)  # the prompts' noise, whole
    old_low, old_high = bootstrap.interval(offsets, [se] * 4)  # independent per seed: divided by sqrt(4)
    assert (old_high - old_low) / 2 == pytest.approx(1.96 * se / 2, rel=0.1)
    # one seed without its prompt scores: the standard errors for all of them
    assert bootstrap.interval(offsets, [se] * 4, prompts=[*rows[:3], None]) == (old_low, old_high)
