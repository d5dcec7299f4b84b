"""The leaderboard is a pure function of trial records: ranking, failed trials, files, CLI rebuild."""

from __future__ import annotations

import json
from dataclasses import replace

import pandas as pd
import pytest

from harness import leaderboard
from harness.errors import ConfigError
from harness.plugin.manager import get_plugin_manager
from harness.records import RECORD_NAME, SCHEMA_VERSION, atomic_write_text, write_record
from tests.helpers import make_record

pytestmark = pytest.mark.unit

# What records written by trials declare: the built-in evaluators' metrics (see harness.trial.runner).
BUILTIN = {m.name: m.to_record(e.name) for e in get_plugin_manager().evaluators.values() for m in e.metrics}


def record(method, beta, gold, kl, status="completed", error=None, job=0):
    return make_record(
        status=status,
        method=method,
        error=error,
        hyperparameters={"beta": beta, "learning_rate": 1e-4, "seed": 0},
        overrides=[f"method={method}", f"method.beta={beta}"],
        reference={"metrics": {"gold_reward": -0.2, "kl": 0.0}},
        checkpoints=[]
        if status != "completed"
        else [
            {"step": 5, "final": False, "metrics": {"gold_reward": gold - 0.1, "kl": kl / 2}},
            {"step": 10, "final": True, "metrics": {"gold_reward": gold, "gold_reward_se": 0.01, "kl": kl}},
        ],
        timings={"train_s": 3.0},
        peak_memory={"rss_peak_mb": 900.0},
        models_in_memory=2,
        eval_prompts=128,
        metric_declarations=BUILTIN,
    )


def write_sweep(root):
    rows = [
        record("dpo", 0.1, 0.4, 2.0),
        record("simpo", 0.1, 0.6, 3.0),
        record("orpo", 0.05, 0.1, 1.0),
        record(
            "kto",
            0.1,
            None,
            None,
            status="failed",
            error={"type": "TrialFailed", "message": "training loss became nan at step 3"},
        ),
    ]
    for i, r in enumerate(rows):
        write_record(root / str(i) / RECORD_NAME, r)


def test_ranks_completed_by_gold_reward_and_lists_failures(tmp_path):
    write_sweep(tmp_path)
    board = leaderboard.load_leaderboard([tmp_path])
    df = board.table
    assert list(df["method"]) == ["simpo", "dpo", "orpo", "kto"]
    assert list(df["rank"][:3]) == [1, 2, 3] and pd.isna(df["rank"].iloc[3])
    assert df.loc[df.method == "dpo", "gold_reward"].item() == 0.4  # the final checkpoint, not the first
    assert (
        df.loc[df.method == "dpo", "base_gold_reward"].item() == -0.2
    )  # the reference's value of the objective
    assert "beta" in df.columns and "learning_rate" not in df.columns  # only varying hyperparameters
    assert df.loc[df.method == "kto", "reason"].item().startswith("training loss became nan")


def test_writes_markdown_and_csv(tmp_path):
    write_sweep(tmp_path / "sweep")
    out = tmp_path / "report"
    leaderboard.write_leaderboard([tmp_path / "sweep"], out)
    md = (out / "leaderboard.md").read_text()
    assert "| simpo" in md.replace("|  ", "| ") or "simpo" in md.split("## Failed")[0]
    assert "## Failed, pruned and interrupted trials" in md and "training loss became nan" in md
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


# --- ranking, KL budget, Pareto front, seeds, merging, partial records --------------------------------------

from harness.leaderboard.analysis import ranking, seeds  # noqa: E402


def trial(method, checkpoints, seed=0, beta=0.1, config=None, status="completed", job="0"):
    """A record with the given (step, gold, kl) checkpoints."""
    return make_record(
        trial_id=f"{method}-{beta}-{seed}-{job}",
        status=status,
        method=method,
        error=None,
        hyperparameters={"beta": beta, "seed": seed},
        overrides=[f"method={method}", f"seed={seed}"],
        config=config
        or {"model": {"name_or_path": "toy"}, "data": {"source": "toy"}, "eval": {"num_prompts": 128}},
        reference={"metrics": {"gold_reward": 0.0, "kl": 0.0}},
        checkpoints=[
            {
                "step": s,
                "final": i == len(checkpoints) - 1,
                "metrics": {"gold_reward": g, "gold_reward_se": 0.02, "kl": k},
            }
            for i, (s, g, k) in enumerate(checkpoints)
        ],
        timings={"train_s": 10.0},
        peak_memory={"rss_peak_mb": 500.0},
        models_in_memory=2,
        metric_declarations=BUILTIN,
    )


def test_each_trial_is_shown_at_its_best_checkpoint_within_the_kl_budget():
    records = [
        trial("dpo", [(10, 0.3, 2.0), (20, 0.5, 8.0), (30, 0.9, 14.0)]),  # best inside 10 nats: step 20
        trial("orpo", [(10, 0.4, 1.0), (20, 0.45, 1.5)]),
    ]
    board = leaderboard.build(records, kl_budget=10.0)
    dpo = board.trials.set_index("method").loc["dpo"]
    assert dpo["step"] == 20 and dpo["gold_reward"] == 0.5
    assert list(board.trials["method"]) == ["dpo", "orpo"]
    unbounded = leaderboard.build(records, kl_budget=None).trials.set_index("method").loc["dpo"]
    assert unbounded["step"] == 30 and unbounded["gold_reward"] == 0.9


def test_a_trial_with_no_checkpoint_inside_the_budget_ranks_after_those_with_one():
    records = [trial("dpo", [(10, 0.9, 20.0), (20, 1.0, 30.0)]), trial("ipo", [(10, 0.2, 1.0)])]
    board = leaderboard.build(records, kl_budget=10.0)
    assert list(board.trials["method"]) == ["ipo", "dpo"]
    dpo = board.trials.set_index("method").loc["dpo"]
    assert not dpo["within_budget"] and dpo["step"] == 20  # keeps its final checkpoint


def test_pareto_front_marks_undominated_trials():
    records = [
        trial("a", [(1, 0.5, 1.0)]),
        trial("b", [(1, 0.6, 3.0)]),
        trial("c", [(1, 0.4, 2.0)]),
        trial("d", [(1, 0.6, 4.0)]),
    ]
    pareto = leaderboard.build(records).trials.set_index("method")["pareto"]
    assert pareto.to_dict() == {"a": True, "b": True, "c": False, "d": False}
    assert ranking.pareto_front(pd.Series([1.0, float("nan")]), pd.Series([1.0, 1.0])).tolist() == [
        True,
        False,
    ]


def test_seeds_aggregate_to_mean_and_95_percent_interval_with_significance():
    values = {"dpo": [0.50, 0.52, 0.54], "ipo": [0.49, 0.53, 0.51], "kto": [0.10, 0.12, 0.11]}
    records = [trial(m, [(10, g, 1.0)], seed=s) for m, gs in values.items() for s, g in enumerate(gs)]
    table = leaderboard.build(records).seeds.set_index("method")
    assert table.loc["dpo", "n_seeds"] == 3
    assert table.loc["dpo", "objective_mean"] == pytest.approx(0.52)
    # evaluation noise included: Var = sd²/3 + se² with sd = se = 0.02; df = 2 * (Var / (sd²/3))² = 32, giving
    # 2.036933 * sqrt(Var) = 0.0470; the seeds-only t interval t(0.975, 2) * sd / sqrt(3) = 0.0497 is wider,
    # and the reported interval is never narrower than it
    assert table.loc["dpo", "objective_ci95"] == pytest.approx(4.302653 * 0.02 / 3**0.5, rel=1e-4)
    assert table.loc["dpo", "objective_ci95"] > 2.036933 * (0.02**2 / 3 + 0.02**2) ** 0.5
    assert table.loc["ipo", "same_as_best"] and not table.loc["kto", "same_as_best"]
    assert table.loc["kto", "p_vs_best"] < 0.05 <= table.loc["ipo", "p_vs_best"]
    assert seeds.mean_ci95(pd.Series([1.0]))[0] == 1.0  # one seed: a mean, no interval


def test_sweeps_with_the_same_setup_merge_and_different_setups_are_not_mixed(tmp_path):
    same = {"model": {"name_or_path": "toy"}, "data": {"source": "toy"}, "eval": {"num_prompts": 128}}
    other = {**same, "eval": {"num_prompts": 64}}
    write_record(tmp_path / "monday" / "0" / RECORD_NAME, trial("dpo", [(10, 0.3, 1.0)], config=same))
    write_record(
        tmp_path / "tuesday" / "0" / RECORD_NAME,
        trial("orpo", [(10, 0.4, 1.0)], config={**same, "eval": {**same["eval"], "evaluators": ["kl"]}}),
    )
    merged = leaderboard.load_leaderboard([tmp_path / "monday", tmp_path / "tuesday"])
    assert not merged.groups and sorted(merged.trials["method"]) == ["dpo", "orpo"]
    write_record(tmp_path / "wednesday" / "0" / RECORD_NAME, trial("ipo", [(10, 0.5, 1.0)], config=other))
    refused = leaderboard.write_leaderboard([tmp_path / "monday", tmp_path / "wednesday"], tmp_path / "out")
    assert refused.groups and refused.trials.empty
    assert refused.groups["differ"] == {"eval.num_prompts": [128, 64]}
    md = (tmp_path / "out" / "leaderboard.md").read_text()
    assert "not ranked together" in md and "eval.num_prompts" in md
    assert (
        leaderboard.main(
            [str(tmp_path / "monday"), str(tmp_path / "wednesday"), "--out", str(tmp_path / "out2")]
        )
        == 3
    )


def test_partial_and_corrupt_records_are_skipped_or_shown_never_a_crash(tmp_path):
    write_record(tmp_path / "0" / RECORD_NAME, trial("dpo", [(10, 0.3, 1.0)]))
    write_record(tmp_path / "1" / RECORD_NAME, trial("ipo", [], status="running"))  # its process was killed
    (tmp_path / "2").mkdir()
    (tmp_path / "2" / RECORD_NAME).write_text('{"status": "compl')  # cut off mid-write (not by the harness)
    partial = {"schema_version": SCHEMA_VERSION, "status": "running", "method": "kto"}  # fields missing
    atomic_write_text(tmp_path / "3" / RECORD_NAME, json.dumps(partial))  # (the harness writes them all)
    with pytest.warns(UserWarning) as warned:
        board = leaderboard.write_leaderboard([tmp_path], tmp_path / "out")
    assert {str(w.message).split(RECORD_NAME)[0][-2] for w in warned} >= {"2", "3"}
    assert list(board.trials["method"]) == ["dpo", "ipo"]
    assert board.trials.set_index("method").loc["ipo", "status"] == "running"
    assert (tmp_path / "out" / "checkpoints.csv").exists() and (
        tmp_path / "out" / "leaderboard.html"
    ).exists()


def test_the_dataframes_are_the_python_api(tmp_path):
    write_sweep(tmp_path)
    board = leaderboard.load_leaderboard([tmp_path])
    assert len(board.checkpoints) == 6 and set(board.checkpoints["step"]) == {5, 10}
    assert set(board.cost["method"]) == {"dpo", "simpo", "orpo"}
    assert board.objective_name == "gold_reward" and board.kl_budget == 10.0
    assert list(board.methods["method"]) == ["simpo", "dpo", "orpo"]


def test_method_defaults_are_settings_not_swept_columns(tmp_path):
    """Methods compared at their own defaults: the table keeps only what the sweep varied (here the seed),
    and each method's other settings are listed once, in the Method settings section."""
    rows = []
    for seed in (1, 2):
        dpo = replace(
            record("dpo", 0.1, 0.4, 2.0),
            hyperparameters={"beta": 0.1, "learning_rate": 3e-4, "seed": seed},
            overrides=["method=dpo", f"seed={seed}"],
        )
        ppo = replace(
            record("ppo", 0.1, 0.7, 7.0),
            hyperparameters={"init_kl_coef": 0.05, "learning_rate": 1e-4, "cliprange": 0.2, "seed": seed},
            overrides=["method=ppo", f"seed={seed}"],
        )
        rows += [dpo, ppo]
    for i, r in enumerate(rows):
        write_record(tmp_path / "sweep" / str(i) / RECORD_NAME, r)
    board = leaderboard.write_leaderboard([tmp_path / "sweep"], tmp_path / "out")
    assert board.swept == ["seed"]
    assert not {"beta", "learning_rate", "init_kl_coef", "cliprange"} & set(board.trials.columns)
    settings = dict(zip(board.settings["method"], board.settings["settings"], strict=True))
    assert settings == {
        "dpo": "beta=0.1, learning_rate=0.0003",
        "ppo": "cliprange=0.2, init_kl_coef=0.05, learning_rate=0.0001",
    }
    md = (tmp_path / "out" / "leaderboard.md").read_text()
    assert "## Method settings" in md and "cliprange=0.2, init_kl_coef=0.05" in md
    assert "cliprange=0.2, init_kl_coef=0.05" in (tmp_path / "out" / "leaderboard.html").read_text()


def test_a_value_set_on_the_command_line_is_a_column_even_when_each_method_has_one(tmp_path):
    rows = [record("dpo", 0.1, 0.4, 2.0), record("ipo", 0.3, 0.3, 1.0)]  # overrides set method.beta
    for i, r in enumerate(rows):
        write_record(tmp_path / str(i) / RECORD_NAME, r)
    board = leaderboard.load_leaderboard([tmp_path])
    assert board.swept == ["beta"] and list(board.trials["beta"]) == [0.1, 0.3]


# --- metrics declared by plugins ----------------------------------------------------------------------------

REPETITION = {
    "rep_ngram": {
        "evaluator": "repetition",
        "help": "repeated n-grams per completion",
        "direction": "minimize",
        "column": "rep_ngram",
        "headline": True,
        "se": None,
        "objective_priority": None,
    },
    "rep_detail": {
        "evaluator": "repetition",
        "help": "a detail",
        "direction": None,
        "column": "rep_detail",
        "headline": False,
        "se": None,
        "objective_priority": None,
    },
}


def plugin_trial(method, steps, seed=0):
    """A record whose checkpoints also carry a plugin evaluator's metrics: (step, gold, kl, rep_ngram)."""
    r = trial(method, [(s, g, k) for s, g, k, _ in steps], seed=seed)
    for entry, (_, _, _, rep) in zip(r.checkpoints, steps, strict=True):
        entry.metrics.update(rep_ngram=rep, rep_detail=1.0)
    r.reference.metrics.update(rep_ngram=0.5, rep_detail=1.0)
    r.metric_declarations = {**BUILTIN, **REPETITION}
    return r


def test_a_plugin_metric_is_a_column_of_every_report(tmp_path):
    for i, r in enumerate(
        [plugin_trial("dpo", [(10, 0.3, 1.0, 0.2)]), plugin_trial("ipo", [(10, 0.4, 1.0, 0.1)])]
    ):
        write_record(tmp_path / "sweep" / str(i) / RECORD_NAME, r)
    board = leaderboard.write_leaderboard([tmp_path / "sweep"], tmp_path / "out")
    assert "rep_ngram" in board.shown(board.trials).columns  # a headline metric: a column of the ranked table
    assert "rep_detail" not in board.shown(board.trials).columns and "rep_detail" in board.checkpoints.columns
    out = tmp_path / "out"
    md, html = (out / "leaderboard.md").read_text(), (out / "leaderboard.html").read_text()
    ranked = md.split("## Ranked trials")[1].split("## ")[0]  # after the Verdict
    assert "rep_ngram" in ranked and "`rep_ngram`: repeated n-grams per completion" in md
    assert ">rep_ngram</th>" in html and "repeated n-grams per completion" in html
    assert "rep_ngram" in pd.read_csv(out / "leaderboard.csv").columns
    assert "rep_ngram" in pd.read_csv(out / "checkpoints.csv").columns


def test_an_objective_withheld_in_every_trial_is_the_reports_first_line_never_a_tie(tmp_path):
    """A judge that could not judge: its win rate is withheld in every trial (the checkpoints'
    withheld_metrics); the report is written, unranked, with the problem and the reason at its top."""
    reason = "unusable (31/32 verdicts unusable: 31 under min_label_prob)"
    for i, method in enumerate(("dpo", "ipo")):
        r = plugin_trial(method, [(10, 0.3, 1.0, 0.2)])
        r.metric_declarations["judge_win_rate"] = {
            "evaluator": "judge",
            "help": "judge win rate",
            "direction": "maximize",
            "column": "judge_wr",
            "headline": True,
            "se": None,
            "objective_priority": 20,
        }
        r.checkpoints[0].withheld_metrics = {"judge_win_rate": reason}
        write_record(tmp_path / "sweep" / str(i) / RECORD_NAME, r)
    board = leaderboard.write_leaderboard([tmp_path / "sweep"], tmp_path / "out", objective="judge_win_rate")
    assert board.objective_name is None and len(board.trials) == 2
    assert board.problem.startswith(
        f"objective judge_win_rate has no value in any trial: the judge evaluator withheld it in 2 of 2 "
        f"trials: {reason}"
    )
    md = (tmp_path / "out" / "leaderboard.md").read_text()
    html = (tmp_path / "out" / "leaderboard.html").read_text()
    top = md.split("## ")[0]
    assert top.index("**Problem**: objective judge_win_rate has no value") < top.index("trials (2 completed)")
    assert f"- judge_wr in {board.records[0].trial_id} (step 10): {reason}" in top
    assert '<p class="problem"><b>Problem</b>: objective judge_win_rate has no value' in html
    assert "31/32 verdicts unusable" in html and "0.5" not in top.split("**No objective**")[0]
    # An Optuna trial with no value of the objective fails with the reason it was withheld
    from harness.sweep.trials import _withheld_because

    assert _withheld_because(board.records[0], "judge_win_rate") == f": withheld: {reason}"
    assert _withheld_because(board.records[0], "gold_reward") == ""
    # auto ranks by what was measured (gold here), and says nothing is wrong
    assert leaderboard.build(board.records).objective_name == "gold_reward"
    assert leaderboard.build(board.records).problem is None


def test_a_minimised_objective_ranks_and_chooses_checkpoints_lowest_first():
    records = [
        plugin_trial("dpo", [(10, 0.3, 1.0, 0.30), (20, 0.5, 2.0, 0.10), (30, 0.6, 3.0, 0.20)]),
        plugin_trial("ipo", [(10, 0.4, 1.0, 0.15)]),
    ]
    board = leaderboard.build(records, objective="rep_ngram")
    assert board.objective_name == "rep_ngram" and board.objective_direction == "minimize"
    assert list(board.trials["method"]) == ["dpo", "ipo"]  # 0.10 beats 0.15
    assert board.trials.set_index("method").loc["dpo", "step"] == 20  # its lowest repetition
    assert board.trials.set_index("method").loc["dpo", "base_rep_ngram"] == 0.5
    seeded = [
        plugin_trial(m, [(10, 0.3, 1.0, r)], seed=s)
        for m, rs in (("a", (0.3, 0.31)), ("b", (0.1, 0.11)))
        for s, r in enumerate(rs)
    ]
    assert list(leaderboard.build(seeded, objective="rep_ngram").seeds["method"]) == ["b", "a"]


def test_an_objective_is_any_declared_metric_by_name_or_column_and_nothing_else():
    records = [plugin_trial("dpo", [(10, 0.3, 1.0, 0.2)])]
    unmeasured = leaderboard.build(records, objective="pref_acc")  # declared, not measured: reported unranked
    assert unmeasured.objective_name is None and len(unmeasured.trials) == 1
    assert unmeasured.problem.startswith(
        "objective pref_acc has no value in any trial: its evaluator returned"
    )
    with pytest.raises(
        ConfigError, match="Unknown leaderboard objective 'rep_ngrm'. Did you mean: rep_ngram"
    ):
        leaderboard.build(records, objective="rep_ngrm")
    with pytest.raises(ConfigError, match="descriptive metric"):
        leaderboard.build(records, objective="rep_detail")
    assert leaderboard.build(records, objective="gold_reward").objective_name == "gold_reward"


def test_records_without_declarations_show_their_metrics_by_key():
    old = replace(trial("dpo", [(10, 0.3, 1.0)]), metric_declarations=None)
    board = leaderboard.build([old])
    assert board.objective_name == "gold_reward" and {"gold_reward", "gold_reward_se", "kl"} <= set(
        board.shown(board.trials).columns
    )
