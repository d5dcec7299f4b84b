"""The verdict at the top of every report: its state and wording for one seed, a tie, an undecided and a
decided study, the recommended method chosen on selection values, the margin's one-line error, verdict.json
and verdict.csv, and the two-way paired statistics behind it against a hand computation and scipy."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from harness import leaderboard
from harness.errors import ConfigError
from harness.leaderboard.analysis import twoway
from harness.leaderboard.analysis import verdict as V
from tests.test_conclusions import trial

PROMPTS = 32


def study(tests, seeds=5, seed_sd=0.01, prompt_sd=0.02, selections=None, rng_seed=0, margin=None):
    """Records of each method in ``tests`` (method -> true test mean) over ``seeds`` seeds, every test
    prompt's score kept: a prompt effect shared by every trial, a seed effect of sd ``seed_sd`` per method and
    seed, and per-prompt noise of sd ``prompt_sd``; the selection value is the trial's test value plus
    ``selections[method]`` (default 0). The reference model scores 0."""
    rng = np.random.default_rng(rng_seed)
    shape = rng.normal(0.0, 0.05, PROMPTS)
    records = []
    for method, mean in tests.items():
        for s in range(1, seeds + 1):
            scores = mean + rng.normal(0.0, seed_sd) + shape + rng.normal(0.0, prompt_sd, PROMPTS)
            gold = float(np.mean(scores))
            shift = (selections or {}).get(method, 0.0)
            record = trial(method, gold, s, se=0.01, selection=gold + shift)
            record.checkpoints[0].prompt_scores = {"gold_reward": [float(v) for v in scores]}
            if margin is not None:
                record.config["leaderboard"] = {"verdict_margin": margin}
            records.append(record)
    return records


def decide(records, margin=None):
    return V.decide(leaderboard.build(records, title="t"), margin)


@pytest.mark.unit
def test_one_seed_per_method_says_it_cannot_rank_methods_and_gives_the_command_for_seeds():
    verdict = decide(study({"dpo": 0.5, "orpo": 0.3, "simpo": 0.2}, seeds=1))
    assert verdict.state == "one seed"
    assert verdict.headline.startswith("No verdict: one seed per method ranks trials, not methods")
    assert "Leading on the selection prompts: **dpo**" in verdict.headline
    assert [m.status for m in verdict.others] == ["not ranked", "not ranked"]
    assert all(math.isnan(m.p_best) and math.isnan(m.p_holm) for m in verdict.methods)
    run, board = verdict.commands
    assert (
        run.startswith("python -m harness -m method=dpo,orpo,simpo ") and "seed=0,2,3,4 " in run
    )  # 4 new seeds
    assert board.startswith("python -m harness.leaderboard ")
    assert "run each with 5 seeds" in verdict.details[-1]  # just above the commands


@pytest.mark.unit
def test_a_clear_leader_is_decided_and_the_others_behind_after_holm():
    verdict = decide(study({"dpo": 0.5, "orpo": 0.3, "simpo": 0.2}))
    assert verdict.state == "decided" and verdict.recommended.method == "dpo"
    assert verdict.headline.startswith("Ship **dpo**: test gold_reward 0.")
    assert "orpo and simpo behind (Holm p" in verdict.headline  # method names keep their case
    assert [m.status for m in verdict.others] == ["behind", "behind"]
    assert all(m.p_holm < 0.05 and m.diff > 0 for m in verdict.others)
    assert verdict.recommended.p_best > 0.9 and verdict.confidence > 0.9 and not verdict.commands
    assert verdict.margin == pytest.approx(0.2 * verdict.gain)
    assert "smallest difference this study detects (80% power" in verdict.details[0]
    # what it is conditioned on: the KL budget, and each method's KL there (equal here: no warning)
    assert verdict.details[1].startswith("Every trial is scored at its best checkpoint within the KL budget")
    assert "dpo at KL 2" in verdict.details[1] and "order may differ" not in verdict.details[1]


@pytest.mark.unit
def test_two_methods_inside_the_margin_are_tied():
    verdict = decide(study({"dpo": 0.5, "ipo": 0.5}))
    assert verdict.state == "decided" and verdict.others[0].status == "tied"
    assert "ipo tied within the margin ± " in verdict.headline
    # the same data with a margin too narrow to show it: no longer tied
    narrow = decide(study({"dpo": 0.5, "ipo": 0.5}), margin=0.001)
    assert narrow.others[0].status != "tied" and narrow.margin_share == 0.001


@pytest.mark.unit
def test_a_close_call_with_noisy_seeds_is_undecided_with_the_seeds_that_would_settle_it():
    verdict = decide(study({"dpo": 0.5, "ipo": 0.45}, seeds=3, seed_sd=0.08, rng_seed=3))
    assert verdict.state == "undecided" and verdict.others[0].status == "undecided"
    assert verdict.headline.startswith("Undecided. Leading on the selection prompts: **dpo**")
    assert "ipo undecided" in verdict.headline
    wanted = verdict.others[0].seeds_to_settle
    assert wanted is not None and wanted > 3
    assert any(d.startswith(f"To settle it: about {wanted} seeds in all") for d in verdict.details)
    assert "method=dpo,ipo" in verdict.commands[0] and "seed=" in verdict.commands[0]


@pytest.mark.unit
def test_the_recommended_method_is_chosen_on_selection_values_not_test_means():
    # dpo leads on the selection prompts, orpo on the test prompts
    records = study({"dpo": 0.40, "orpo": 0.45}, selections={"dpo": 0.20, "orpo": 0.0})
    verdict = decide(records)
    assert verdict.recommended.method == "dpo"
    assert verdict.recommended.selection_mean > verdict.others[0].selection_mean
    assert verdict.others[0].test_mean > verdict.recommended.test_mean
    assert verdict.others[0].status == "ahead" and verdict.state == "undecided"
    assert any("the two splits disagree" in d for d in verdict.details)


@pytest.mark.unit
def test_a_margin_outside_zero_one_is_one_line_naming_the_key_and_the_fix():
    for bad in (0, 1, 1.5, -0.1, True, "x", math.nan):
        with pytest.raises(V.VerdictError) as caught:
            V.check_margin(bad)
        line = str(caught.value)
        assert "\n" not in line and line.startswith("leaderboard.verdict_margin=")
        assert "e.g. leaderboard.verdict_margin=0.2" in line
    assert issubclass(V.VerdictError, ConfigError)  # a user error: exit status 2
    assert V.check_margin(0.1) == 0.1
    with pytest.raises(V.VerdictError):
        decide(study({"dpo": 0.5, "orpo": 0.3}, seeds=2), margin=1.5)
    # the records' setting is read when no margin is given; a given one wins
    records = study({"dpo": 0.5, "orpo": 0.3}, seeds=2, margin=0.5)
    assert V.margin_of(records) == 0.5 and decide(records).margin_share == 0.5
    assert decide(records, margin=0.1).margin_share == 0.1


@pytest.mark.unit
def test_the_setting_is_checked_before_any_compute():
    from harness.config.settings_run import LEADERBOARD

    with pytest.raises(ConfigError, match=r"^leaderboard.verdict_margin=1.5 is not a share in \(0, 1\)"):
        LEADERBOARD.check({"verdict_margin": 1.5})
    LEADERBOARD.check({"verdict_margin": None})  # null: the default
    assert LEADERBOARD.option("verdict_margin").default == V.DEFAULT_MARGIN


def test_python_m_harness_stops_on_a_bad_margin_with_one_line(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "harness", "leaderboard.verdict_margin=1.5", f"hydra.run.dir={tmp_path}"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert run.returncode == 2
    assert "leaderboard.verdict_margin=1.5 is not a share in (0, 1)" in run.stderr
    assert not (tmp_path / "trial.json").exists()


@pytest.mark.unit
def test_the_reports_open_with_the_verdict_and_write_verdict_json_and_csv(tmp_path):
    board = leaderboard.build(study({"dpo": 0.5, "orpo": 0.3}, seeds=3), title="t")
    written = leaderboard.write_reports(board, tmp_path)
    assert tmp_path / "verdict.json" in written and tmp_path / "verdict.csv" in written
    saved = json.loads((tmp_path / "verdict.json").read_text())
    assert saved["state"] == "decided" and saved["recommended"]["method"] == "dpo"
    assert [m["method"] for m in saved["methods"]] == ["dpo", "orpo"] and saved["methods"][1][
        "status"
    ] == "behind"
    row = pd.read_csv(tmp_path / "verdict.csv")
    assert len(row) == 1 and row.loc[0, "recommended"] == "dpo" and row.loc[0, "status_orpo"] == "behind"
    md = (tmp_path / "leaderboard.md").read_text()
    headings = [line for line in md.splitlines() if line.startswith("## ")]
    assert headings[:2] == ["## Verdict", "## Methods"]
    verdict = md.split("## Verdict")[1].split("## Methods")[0]
    assert "Ship **dpo**" in verdict and "| status" in verdict.replace("  ", " ") and "`p_best`:" in verdict
    assert "the Verdict above chooses on the selection prompts" in md.split("## Methods")[1]
    page = (tmp_path / "leaderboard.html").read_text()
    assert page.index('id="verdict"') < page.index('id="conclusions"') and "Ship <b>dpo</b>" in page


@pytest.mark.unit
def test_the_console_prints_the_verdict_in_plain_text_before_the_table():
    board = leaderboard.build(study({"dpo": 0.5, "orpo": 0.3}, seeds=1), title="t")
    text = leaderboard.console_table(board)
    assert "**" not in text and "No verdict: one seed per method" in text
    assert text.index("python -m harness -m method=dpo,orpo") < text.index("| method")


@pytest.mark.unit
def test_the_cli_margin_overrides_the_setting_and_a_bad_one_is_one_line(tmp_path, capsys):
    from harness.leaderboard.cli import main

    records = study({"dpo": 0.5, "orpo": 0.3}, seeds=2)
    for i, record in enumerate(records):
        (tmp_path / "runs" / str(i)).mkdir(parents=True)
        (tmp_path / "runs" / str(i) / "trial.json").write_text(json.dumps(record.to_dict()))
    assert main([str(tmp_path / "runs"), "--out", str(tmp_path / "bad"), "--margin", "1.5"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--margin=1.5 is not a share in (0, 1)" in err
    assert main([str(tmp_path / "runs"), "--out", str(tmp_path / "out"), "--margin", "0.1"]) == 0
    assert json.loads((tmp_path / "out" / "verdict.json").read_text())["margin_share"] == 0.1


# -- the two-way paired statistics --------------------------------------------------------------------------


@pytest.mark.unit
def test_the_two_way_difference_matches_a_hand_computation():
    a_rows = np.array([[0.9, 0.4, 0.6, 0.3], [0.8, 0.5, 0.7, 0.2], [1.0, 0.3, 0.5, 0.4]])
    b_rows = np.array([[0.5, 0.5, 0.4, 0.1], [0.6, 0.2, 0.6, 0.3], [0.7, 0.1, 0.2, 0.0]])
    seeds = (1, 2, 3)
    a = twoway.Evidence(seeds, tuple(a_rows.mean(axis=1)), tuple(a_rows), (math.nan,) * 3)
    b = twoway.Evidence(seeds, tuple(b_rows.mean(axis=1)), tuple(b_rows), (math.nan,) * 3)
    diff = twoway.difference(a, b)
    d_s = a_rows.mean(axis=1) - b_rows.mean(axis=1)  # per seed
    c_p = (a_rows - b_rows).mean(axis=0)  # per prompt, over the seeds
    seed_part = np.var(d_s, ddof=1) / 3
    prompt_part = np.var(c_p, ddof=1) / 4
    df = (seed_part + prompt_part) ** 2 / (seed_part**2 / 2 + prompt_part**2 / 3)  # Welch-Satterthwaite
    assert diff.paired and diff.per_prompt and diff.n == 3 and diff.prompts == 4
    assert diff.mean == pytest.approx(d_s.mean())
    assert diff.seed_var == pytest.approx(seed_part) and diff.prompt_var == pytest.approx(prompt_part)
    assert diff.se == pytest.approx(math.sqrt(seed_part + prompt_part)) and diff.df == pytest.approx(df)
    t = d_s.mean() / math.sqrt(seed_part + prompt_part)
    assert twoway.p_value(diff) == pytest.approx(2 * stats.t.sf(abs(t), df))
    detectable = (stats.t.ppf(0.975, df) + stats.t.ppf(0.8, df)) * math.sqrt(seed_part + prompt_part)
    assert twoway.detectable(diff) == pytest.approx(detectable)


@pytest.mark.unit
def test_without_prompt_scores_the_test_is_scipys_paired_t_test_over_seeds():
    a_values, b_values = (0.52, 0.47, 0.58, 0.50, 0.55), (0.44, 0.46, 0.49, 0.41, 0.50)
    seeds = (1, 2, 3, 4, 5)
    a = twoway.Evidence(seeds, a_values, (None,) * 5, (math.nan,) * 5)
    b = twoway.Evidence(seeds, b_values, (None,) * 5, (math.nan,) * 5)
    diff = twoway.difference(a, b)
    assert diff.paired and not diff.per_prompt and math.isnan(diff.prompt_var) and diff.df == pytest.approx(4)
    assert twoway.p_value(diff) == pytest.approx(stats.ttest_rel(a_values, b_values).pvalue, rel=1e-12)


@pytest.mark.unit
def test_a_study_whose_every_trial_diverged_recommends_nothing_and_says_what_to_fix():
    records = [trial(m, -5.0, s, kl=80.0, health=("kl_high",)) for m in ("dpo", "orpo") for s in (1, 2)]
    verdict = decide(records)
    assert verdict.state == "none" and verdict.recommended is None
    assert verdict.headline.startswith(
        "No verdict: every trial of dpo and orpo diverged; nothing to recommend."
    )
    assert "lower learning rate" in verdict.headline


@pytest.mark.unit
def test_a_setting_tried_on_one_seed_is_not_set_against_one_confirmed_on_several():
    """A race's search drops a setting after one seed; its lucky single selection value must not beat the
    setting the race confirmed on three seeds."""
    confirmed = [trial("dpo", 0.40, s, beta=0.1, selection=0.40) for s in (1, 2, 3)]
    dropped = [trial("dpo", 0.30, 1, beta=0.5, selection=0.45)]
    other = [trial("orpo", 0.20, s, selection=0.20) for s in (1, 2, 3)]
    verdict = decide([*confirmed, *dropped, *other])
    assert verdict.recommended.method == "dpo" and verdict.recommended.setting == "beta=0.1"
    assert verdict.recommended.n_seeds == 3
