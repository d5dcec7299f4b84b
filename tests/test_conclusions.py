"""Method-level conclusions: Holm's correction, diverged seeds, intervals with evaluation noise, selection on
selection values, the verdict sentence and where the reports show them."""

from __future__ import annotations

import math
from dataclasses import replace

import pandas as pd
import pytest
from scipy import stats

from harness import leaderboard
from harness.leaderboard.analysis import columns, conclusions, seeds
from harness.plugin.manager import get_plugin_manager
from tests.helpers import make_record

pytestmark = pytest.mark.unit

BUILTIN = {m.name: m.to_record(e.name) for e in get_plugin_manager().evaluators.values() for m in e.metrics}


def trial(
    method,
    gold,
    seed,
    beta=0.1,
    kl=2.0,
    se=0.02,
    health=(),
    status="completed",
    error=None,
    selection=None,
    base=0.0,
    prompts=None,
):
    """A record with one evaluated checkpoint (gold reward ``gold`` ± ``se`` at KL ``kl``; ``selection``: its
    gold reward on the selection prompts; ``base``: the reference model's; ``prompts``: per-prompt gold
    rewards kept as its readable samples)."""
    checkpoint = {"step": 10, "final": True, "metrics": {"gold_reward": gold, "gold_reward_se": se, "kl": kl}}
    if selection is not None:
        checkpoint["selection"] = {"metrics": {"gold_reward": selection, "kl": kl}}
    if prompts is not None:
        checkpoint["samples"] = [
            {"prompt": f"p{i}", "reference": "r", "policy": "x", "scores": {"gold_reward": {"policy": v}}}
            for i, v in enumerate(prompts)
        ]
    return make_record(
        trial_id=f"{method}-{beta}-{seed}",
        status=status,
        method=method,
        error={"type": "TrialFailed", "message": error} if error else None,
        hyperparameters={"beta": beta, "seed": seed},
        overrides=[f"method={method}", f"seed={seed}"],
        config={"model": {"name_or_path": "toy"}, "data": {"source": "toy"}, "eval": {"num_prompts": 128}},
        reference={"metrics": {"gold_reward": base, "kl": 0.0}},
        checkpoints=[] if status != "completed" else [checkpoint],
        health=[{"flag": f, "message": "", "fix": ""} for f in health],
        timings={"train_s": 10.0},
        peak_memory={"rss_peak_mb": 500.0},
        models_in_memory=2,
        eval_prompts=128,
        metric_declarations=BUILTIN,
    )


def seeded(method, golds, **kwargs):
    return [trial(method, g, seed, **kwargs) for seed, g in enumerate(golds, start=1)]


def diverging(method, golds):
    """Seeds of ``method``; the last one diverged (KL 70 nats, flagged ``kl_high``)."""
    return [*seeded(method, golds[:-1]), trial(method, golds[-1], len(golds), kl=70.0, health=("kl_high",))]


def test_holm_adjustment_matches_a_hand_computed_example():
    # sorted 0.01, 0.03, 0.04 -> 3 * 0.01, 2 * 0.03, max(0.06, 1 * 0.04)
    assert seeds.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    adjusted = seeds.holm([math.nan, 0.02, 0.45, 0.6])  # NaN is not a test: m = 3; capped at 1
    assert math.isnan(adjusted[0]) and adjusted[1:] == pytest.approx([0.06, 0.9, 0.9])
    assert seeds.holm([0.3, 0.4]) == pytest.approx([0.6, 0.6]) and seeds.holm([0.6, 0.9]) == [1.0, 1.0]


def test_a_diverged_seed_counts_in_n_seeds_and_in_the_mean_at_worst_no_gain():
    records = [
        *seeded("dpo", [0.50, 0.52, 0.54]),
        *diverging("kto", [0.20, 0.22, -4.0]),
        *seeded("orpo", [0.49, 0.51]),
        trial("orpo", None, 3, status="failed", error="training loss became nan at step 3"),
    ]
    board = leaderboard.build(records)
    kto = board.seeds.set_index("method").loc["kto"]
    assert kto["diverged"] == "1 of 3" and kto["n_seeds"] == 3
    # the diverged seed counts at its measured -4.0 (worse than the reference's 0.0)
    assert kto["objective_mean"] == pytest.approx((0.20 + 0.22 - 4.0) / 3)
    assert kto["survivors_mean"] == pytest.approx(0.21) and kto["kl_mean"] == pytest.approx(2.0)
    assert not kto["same_as_best"]  # a setting with a diverged seed is never the same as the best
    orpo = board.seeds.set_index("method").loc["orpo"]
    assert orpo["diverged"] == "1 of 3" and not orpo["same_as_best"]  # a NaN loss is a diverged seed too
    # nothing was measured: it counts at the reference model's value (no gain)
    assert orpo["objective_mean"] == pytest.approx((0.49 + 0.51 + 0.0) / 3)
    summary = board.method_summary.set_index("method")
    assert list(board.method_summary["method"]) == ["dpo", "orpo", "kto"]
    assert summary.loc["kto", "verdict"] == "not significantly different; diverged in 1 of 3 seeds"
    assert summary.loc["orpo", "verdict"] == "not significantly different; diverged in 1 of 3 seeds"
    assert summary.loc["kto", "survivors_mean"] == pytest.approx(0.21)
    # a diverged seed never counts above the reference: a KL blow-up at a high reward is no gain
    high = leaderboard.build([*seeded("dpo", [0.5, 0.5]), *diverging("kto", [0.3, 0.3, 0.9])])
    assert high.method_summary.set_index("method").loc["kto", "objective_mean"] == pytest.approx(0.2)


def test_the_kto_example_of_the_reference_study_counts_its_diverged_seed():
    """KTO beta=0.3 in leaderboards/toy-reference: seed 2 diverged (KL 33.7 nats); 0.154 over the survivors
    was its score while n_seeds said 3; over all three it is -0.565."""
    values = {1: (0.13617929699504006, 0.6), 2: (-2.0018905592755343, 33.7), 3: (0.17214801523363968, 0.6)}
    records = [
        trial("kto", g, s, beta=0.3, kl=kl, health=("kl_high",) if kl > 15 else (), base=0.012)
        for s, (g, kl) in values.items()
    ]
    records += seeded("cpo", [0.45, 0.40, 0.35])
    board = leaderboard.build(records)
    kto = board.method_summary.set_index("method").loc["kto"]
    assert kto["n_seeds"] == 3 and kto["diverged"] == "1 of 3"
    assert kto["objective_mean"] == pytest.approx(-0.5645, abs=1e-4)
    assert kto["survivors_mean"] == pytest.approx(0.1542, abs=1e-4)
    assert "kto diverged in 1 of 3 seeds (mean over all seeds -0.565, 0.154 over the 2 that did not)" in (
        board.verdict
    )


def test_best_setting_prefers_the_setting_that_never_diverged():
    """Two settings with equal selection values on the seeds that trained; one diverged in 1 of 3 seeds."""
    rows = [
        {
            "method": "dpo",
            "beta": beta,
            "seed": seed,
            "status": "completed",
            "objective": 0.4,
            "kl": 70.0 if bad else 2.0,
            "gold_se": 0.02,
            "health": "kl_high" if bad else "",
            "selection_objective": 0.5,
        }
        for beta in (
            0.1,
            0.05,
        )  # the diverging one first: the old rule (survivors' mean, first wins) chose it
        for seed in (1, 2, 3)
        for bad in [beta == 0.1 and seed == 3]
    ]
    trials = pd.DataFrame(rows)
    pool = seeds.seeded_pool(trials, ["beta", "seed"])
    # the diverged seed counts at the reference's 0.0: (0.5 + 0.5 + 0.0) / 3 < 0.5
    key, chosen, _ = conclusions.best_setting(pool, ["method", "beta"], "maximize", (0.0, 0.0))
    assert key == ("dpo", 0.05) and not chosen["_diverged"].any()
    # no reference value known: it counts at its measured 0.5, a tie, and the tie goes to fewer diverged seeds
    key, _, _ = conclusions.best_setting(pool, ["method", "beta"], "maximize")
    assert key == ("dpo", 0.05)
    diverged = {"kl": 70.0, "health": ("kl_high",)}
    records = [
        trial("dpo", 0.4, s, beta=0.1, selection=0.5, **(diverged if s == 3 else {})) for s in (1, 2, 3)
    ]
    records += [trial("dpo", 0.4, s, beta=0.05, selection=0.5) for s in (1, 2, 3)]
    summary = leaderboard.build(records).method_summary
    assert summary.loc[0, "setting"] == "beta=0.05" and summary.loc[0, "diverged"] == "0 of 3"


def test_an_interval_is_never_narrower_than_the_seeds_only_t_interval():
    """KTO beta=0.3 of the reference study, its two surviving seeds: the old interval (evaluation noise, its
    Welch–Satterthwaite df) was ± 0.080, the seeds-only t interval ± 0.229."""
    values, ses = pd.Series([0.13617929699504006, 0.17214801523363968]), pd.Series([0.032569, 0.034850])
    e = seeds.estimate(values, ses)
    seed_var = values.var(ddof=1) / 2  # s²/n
    assert e.seeds_ci95 == pytest.approx(stats.t.ppf(0.975, 1) * math.sqrt(seed_var))
    assert e.seeds_ci95 == pytest.approx(0.229, abs=5e-4)
    var = seed_var + (ses**2).mean()
    assert e.noise_ci95 == pytest.approx(stats.t.ppf(0.975, (var / seed_var) ** 2) * math.sqrt(var))
    assert e.noise_ci95 == pytest.approx(0.080, abs=5e-4)  # what the report said
    assert e.ci95 == e.seeds_ci95 >= e.noise_ci95
    # and a test is never more significant than Welch's test on the seeds alone
    a, b = (
        seeds.estimate(pd.Series([0.50, 0.52]), pd.Series([0.001] * 2)),
        seeds.estimate(pd.Series([0.40, 0.46]), pd.Series([0.001] * 2)),
    )
    welch = stats.ttest_ind([0.50, 0.52], [0.40, 0.46], equal_var=False).pvalue
    assert seeds.compare(a, b) >= welch - 1e-12 and seeds.compare(a, b) == pytest.approx(welch, rel=1e-6)


def _per_prompt(gold):
    """Eight prompts of very different difficulty whose mean is ``gold`` (± 0.002 of noise each)."""
    shape = [-0.6, -0.3, 0.0, 0.3, 0.6, 0.9, -0.9, 0.0]
    return [gold + x + (0.002 if i % 2 else -0.002) * (i % 3) for i, x in enumerate(shape)]


def test_a_paired_test_detects_a_consistent_per_prompt_difference_an_unpaired_one_misses():
    """A beats B by 0.05 on every prompt of every seed; prompts differ by ± 0.9, so each trial's standard
    error (0.05) hides it from a test that does not pair."""
    golds = {"dpo": [0.55, 0.56, 0.57], "ipo": [0.50, 0.51, 0.52]}
    records = [
        trial(m, g, s, se=0.05, prompts=_per_prompt(g))
        for m, gs in golds.items()
        for s, g in enumerate(gs, start=1)
    ]
    summary = leaderboard.build(records).method_summary.set_index("method")
    assert summary.loc["ipo", "test"] == "paired (seeds, prompts)"
    assert summary.loc["ipo", "verdict"] == "significantly behind" and summary.loc["ipo", "p_holm"] < 0.001
    # the same trials without per-prompt scores, and the same values unpaired: not significant
    bare = leaderboard.build(
        [trial(m, g, s, se=0.05) for m, gs in golds.items() for s, g in enumerate(gs, 1)]
    )
    ipo = bare.method_summary.set_index("method").loc["ipo"]
    assert ipo["test"] == "paired (seeds)" and ipo["verdict"] == "not significantly different"
    unpaired = seeds.compare(
        seeds.estimate(pd.Series(golds["dpo"]), pd.Series([0.05] * 3)),
        seeds.estimate(pd.Series(golds["ipo"]), pd.Series([0.05] * 3)),
    )
    assert unpaired > 0.3
    # by hand: d_s = 0.05 on every seed (s_d = 0); v_s = var over prompts of the difference / 128 prompts
    diffs = [a - b for a, b in zip(_per_prompt(0.55), _per_prompt(0.50), strict=True)]
    assert pd.Series(diffs).var() / 128 < 1e-7
    shifted = leaderboard.build(  # other seeds: nothing to pair on, the unpaired test
        [trial("dpo", g, s, se=0.05) for s, g in enumerate(golds["dpo"], 1)]
        + [trial("ipo", g, s, se=0.05) for s, g in enumerate(golds["ipo"], 4)]
    )
    assert shifted.method_summary.set_index("method").loc["ipo", "test"] == "unpaired"


def test_the_paired_test_reads_every_prompt_the_records_kept():
    """The records' scores on all 128 test prompts win over the 8 readable samples' (which here show no
    difference at all, so they would leave the seeds alone to speak)."""
    import numpy as np

    rng = np.random.default_rng(0)
    shape = rng.normal(0.0, 0.5, 128)
    golds = {"dpo": [0.55, 0.58, 0.56], "ipo": [0.50, 0.52, 0.53]}
    noise = {m: rng.normal(0.0, 0.3, (3, 128)) for m in golds}
    records = []
    for m, gs in golds.items():
        for s, g in enumerate(gs, start=1):
            r = trial(m, g, s, se=0.05, prompts=[0.0] * 8)
            r.checkpoints[0].prompt_scores = {"gold_reward": list(g + shape + noise[m][s - 1])}
            records.append(r)
    summary = leaderboard.build(records).method_summary.set_index("method")
    assert summary.loc["ipo", "test"] == "paired (seeds, prompts)"
    # by hand: d_s over the seeds, v_s = var over the 128 prompts of the difference / 128
    d = np.subtract(golds["dpo"], golds["ipo"])
    seed_var = d.var(ddof=1) / 3
    v = np.mean([np.var(noise["dpo"][i] - noise["ipo"][i], ddof=1) / 128 for i in range(3)])
    df = 2 * ((seed_var + v) / seed_var) ** 2
    expected = max(
        2 * stats.t.sf(d.mean() / np.sqrt(seed_var), 2), 2 * stats.t.sf(d.mean() / np.sqrt(seed_var + v), df)
    )
    assert 0.01 < expected < 0.5
    assert summary.loc["ipo", "p_vs_best"] == pytest.approx(expected, rel=1e-6)
    # the readable samples alone (no difference on their 8 prompts): the seeds-only test, more significant
    for r in records:
        r.checkpoints[0].prompt_scores = None
    readable = leaderboard.build(records).method_summary.set_index("method")
    assert readable.loc["ipo", "p_vs_best"] == pytest.approx(2 * stats.t.sf(d.mean() / np.sqrt(seed_var), 2))
    assert readable.loc["ipo", "p_vs_best"] < expected


def test_the_methods_table_says_what_each_method_trained_on_when_they_differ():
    same = leaderboard.build([*seeded("dpo", [0.50, 0.52, 0.54]), *seeded("ipo", [0.40, 0.42, 0.44])])
    assert "trains_on" not in same.method_summary.columns  # both on preferences: nothing to tell apart
    online = seeded("grpo", [0.60, 0.61, 0.62])
    for r in online:
        r.hyperparameters["reward"] = "trained"
        r.overrides = [*r.overrides, "method.reward=trained"]  # set on its command line: a column
        r.eval_reward_model = "/home/me/.cache/harness/reward_models/e96d3c90fc37df1c/checkpoints/step-125"
    board = leaderboard.build([*seeded("dpo", [0.50, 0.52, 0.54]), *online])
    sources = board.method_summary.set_index("method")["trains_on"]
    assert sources["dpo"] == "preferences"
    settings = board.method_summary.set_index("method")["setting"]  # reward is grpo's knob, not dpo's
    assert "reward" not in settings["dpo"] and "reward=trained" in settings["grpo"]
    assert (
        sources["grpo"]
        == "reward model trained by the reward stage on the same data (stage e96d3c90fc37df1c)"
    )
    from harness.leaderboard.markdown import to_markdown

    assert "trains_on" in to_markdown(board).split("## Methods")[1].split("##")[0]


def test_a_method_whose_every_seed_diverged_is_not_compared():
    records = [
        *seeded("dpo", [0.50, 0.52, 0.54]),
        *seeded("ipo", [0.40, 0.42, 0.44]),
        *[trial("kto", -4.0, s, kl=70.0, health=("kl_high", "mode_collapse")) for s in (1, 2, 3)],
    ]
    board = leaderboard.build(records)
    summary = board.method_summary.set_index("method")
    assert summary.loc["kto", "verdict"] == "diverged in 3 of 3 seeds" and math.isnan(
        summary.loc["kto", "p_holm"]
    )
    assert summary.loc["ipo", "p_holm"] == pytest.approx(
        summary.loc["ipo", "p_vs_best"]
    )  # one comparison, not two
    assert list(board.method_summary["method"]) == ["dpo", "ipo", "kto"]
    assert not board.seeds.set_index("method").loc["kto", "same_as_best"]


def test_the_interval_includes_evaluation_noise_even_when_seeds_agree_exactly():
    values = pd.Series([0.3, 0.3, 0.3])
    assert seeds.mean_ci95(values)[1] == 0.0  # the spread over seeds alone: none
    assert seeds.mean_ci95(values, pd.Series([0.05] * 3))[1] == pytest.approx(stats.norm.ppf(0.975) * 0.05)
    spread = seeds.estimate(pd.Series([0.50, 0.52, 0.54]), pd.Series([0.02] * 3))
    var = 0.02**2 / 3 + 0.02**2  # s²/n + mean(se²); Welch–Satterthwaite df = (n - 1) (Var / (s²/n))² = 32
    assert spread.var == pytest.approx(var) and spread.df == pytest.approx(32)
    assert spread.noise_ci95 == pytest.approx(stats.t.ppf(0.975, 32) * math.sqrt(var))
    # the seeds-only t interval, t(0.975, 2) · s / √3, is wider here, and it is the one reported
    assert spread.ci95 == pytest.approx(stats.t.ppf(0.975, 2) * 0.02 / math.sqrt(3))
    assert spread.ci95 > spread.noise_ci95
    assert seeds.estimate(pd.Series([0.3]), pd.Series([0.05])).ci95 == pytest.approx(
        1.959964 * 0.05
    )  # one seed
    narrow = leaderboard.build([*seeded("dpo", [0.3] * 3, se=0.001), *seeded("ipo", [0.25] * 3, se=0.001)])
    wide = leaderboard.build([*seeded("dpo", [0.3] * 3, se=0.05), *seeded("ipo", [0.25] * 3, se=0.05)])
    assert wide.seeds["objective_ci95"].min() > 40 * narrow.seeds["objective_ci95"].max()
    assert wide.method_summary.loc[0, "objective_ci95"] == pytest.approx(1.959964 * 0.05, rel=1e-4)
    assert narrow.method_summary.loc[1, "verdict"] == "significantly behind"
    assert wide.method_summary.loc[1, "verdict"] == "not significantly different"  # 0.05 apart, SE 0.05 each


def test_the_best_setting_is_chosen_on_selection_values_not_on_the_test_objective():
    rows = [
        {
            "method": "dpo",
            "beta": beta,
            "seed": seed,
            "status": "completed",
            "objective": test,
            "kl": 2.0,
            "gold_se": 0.02,
            "health": "",
            "selection_objective": selection,
        }
        for beta, selection, test in ((0.1, 0.6, 0.3), (0.05, 0.4, 0.5))
        for seed in (1, 2)
    ]
    rows += [{**row, "method": "ipo", "selection_objective": math.nan} for row in rows]
    trials = pd.DataFrame(rows)
    summary = conclusions.method_summary(trials, ["beta", "seed"], "maximize", "gold_se").set_index("method")
    assert (
        summary.loc["dpo", "setting"] == "beta=0.1"
        and summary.loc["dpo", "selected_on"] == "selection prompts"
    )
    assert summary.loc["dpo", "objective_mean"] == pytest.approx(0.3)  # reported on the test prompts
    assert summary.loc["dpo", "selection_mean"] == pytest.approx(0.6)
    # no selection value: chosen on the test objective itself, and the sentence says so
    assert (
        summary.loc["ipo", "setting"] == "beta=0.05" and summary.loc["ipo", "selected_on"] == "test prompts"
    )
    sentence = conclusions.verdict(conclusions.method_summary(trials, ["beta", "seed"], se_column="gold_se"))
    assert sentence.startswith("ipo (beta=0.05) leads with 0.5 ± ")
    assert "on the test prompts for ipo, which flatters them" in sentence
    no_column = conclusions.method_summary(trials.drop(columns="selection_objective"), ["beta", "seed"])
    assert set(no_column["setting"]) == {"beta=0.05"} and set(no_column["selected_on"]) == {"test prompts"}


def test_records_with_selection_metrics_choose_the_setting_on_them():
    records = [
        trial("dpo", test, seed, beta=beta, selection=selection)
        for beta, selection, test in ((0.1, 0.6, 0.3), (0.05, 0.4, 0.5))
        for seed in (1, 2)
    ]
    records += [
        trial("ipo", test, seed, beta=beta) for beta, test in ((0.1, 0.3), (0.05, 0.5)) for seed in (1, 2)
    ]
    summary = leaderboard.build(records).method_summary.set_index("method")
    assert (
        summary.loc["dpo", "setting"] == "beta=0.1"
        and summary.loc["dpo", "selected_on"] == "selection prompts"
    )
    assert summary.loc["dpo", "objective_mean"] == pytest.approx(0.3)
    # the test value stands in for a selection value these records lack: it is not taken for one
    assert (
        summary.loc["ipo", "setting"] == "beta=0.05" and summary.loc["ipo", "selected_on"] == "test prompts"
    )


def test_the_verdict_sentence_names_each_group():
    records = [
        *seeded("dpo", [0.50, 0.52, 0.54]),
        *seeded("cpo", [0.49, 0.51, 0.53]),
        *seeded("simpo", [0.10, 0.11, 0.12]),
        *seeded("orpo", [0.12, 0.13, 0.14]),
        *diverging("kto", [0.20, 0.22, -4.0]),
    ]
    board = leaderboard.build(records)
    # kto's diverged seed counts (-4.0): its all-seeds mean, -1.19, ranks it last, and with that seed's
    # spread it is not significantly different; the sentence gives both of its means
    assert list(board.method_summary["method"]) == ["dpo", "cpo", "orpo", "simpo", "kto"]
    assert list(board.method_summary["verdict"]) == [
        "best",
        "not significantly different",
        "significantly behind",
        "significantly behind",
        "not significantly different; diverged in 1 of 3 seeds",
    ]
    sentence = board.verdict
    assert sentence.startswith("dpo leads with 0.52 ± ")  # one setting per method: none to name
    assert "cpo and kto are not significantly different (Holm p = " in sentence
    assert "orpo and simpo are significantly behind after Holm's correction (Holm p " in sentence
    assert (
        "kto diverged in 1 of 3 seeds (mean over all seeds -1.193, 0.21 over the 2 that did not)" in sentence
    )
    assert "95% CIs include evaluation noise (`gold_se`), never narrower than over seeds alone" in sentence
    assert "p-values paired over the seeds methods share, Holm-corrected" in sentence
    assert leaderboard.build(seeded("dpo", [0.5])).verdict == ""  # one seed: no conclusions


def test_the_reports_open_with_the_methods_and_write_methods_csv(tmp_path):
    records = [*seeded("dpo", [0.50, 0.52, 0.54]), *diverging("kto", [0.20, 0.22, -4.0])]
    board = leaderboard.build(records, title="t")
    written = leaderboard.write_reports(board, tmp_path)
    md = (tmp_path / "leaderboard.md").read_text()
    assert md.index("**Objective: `gold_reward`**") < md.index("## Methods") < md.index("## Ranked trials")
    assert board.verdict in md and "| verdict" in md.replace("  ", " ") and "`p_holm`" in md
    methods = pd.read_csv(tmp_path / "methods.csv")
    assert tmp_path / "methods.csv" in written and list(methods["method"]) == ["dpo", "kto"]
    assert "verdict" not in pd.read_csv(tmp_path / "leaderboard.csv").columns
    page = (tmp_path / "leaderboard.html").read_text()
    assert page.index('id="conclusions"') < page.index('id="trials"') and "diverged in 1 of 3" in page


def test_the_standard_error_column_comes_from_the_declarations():
    assert columns.se_column_of("gold_reward", BUILTIN, ["gold_reward", "gold_se"]) == "gold_se"
    assert columns.se_column_of("rm_score", BUILTIN, ["rm_se"]) == "rm_se"
    task = "lm_eval/hellaswag/acc"
    assert columns.se_column_of(task, BUILTIN, [task, f"{task}_se"]) == f"{task}_se"  # a pattern declaration
    assert columns.se_column_of("gold_reward", BUILTIN, ["gold_reward"]) is None  # not measured
    assert columns.se_column_of("score", {}, ["score", "score_se"]) == "score_se"  # undeclared: <column>_se


def test_settings_and_columns_carry_each_methods_paper_name_for_a_shared_key(tmp_path):
    """One key, three meanings: IPO's beta is its paper's tau and ORPO's is lambda; the reports say so."""
    from harness.plugin.manager import get_plugin_manager as manager

    names = {m: manager().method(m).paper_names() for m in ("dpo", "ipo", "orpo")}
    assert names == {"dpo": {}, "ipo": {"beta": "tau"}, "orpo": {"beta": "lambda"}}
    records = [
        replace(r, paper_names=names[m])
        for m, b in (("dpo", 0.1), ("ipo", 0.5), ("orpo", 1.0))
        for r in seeded(m, [0.4, 0.41, 0.42], beta=b)
    ]
    records += [replace(r, paper_names=names["ipo"]) for r in seeded("ipo", [0.1, 0.11, 0.12], beta=0.25)]
    board = leaderboard.build(records)
    settings = dict(zip(board.method_summary["method"], board.method_summary["setting"], strict=True))
    assert settings == {"dpo": "beta=0.1", "ipo": "beta (tau)=0.5", "orpo": "beta (lambda)=1"}
    assert board.swept_note.startswith("Column `beta` is ipo's tau and orpo's lambda")
    leaderboard.write_reports(board, tmp_path)
    assert board.swept_note in (tmp_path / "leaderboard.md").read_text()
    assert (
        "Column beta is ipo&#x27;s tau and orpo&#x27;s lambda" in (tmp_path / "leaderboard.html").read_text()
    )
    from harness.leaderboard import plots
    from harness.leaderboard.analysis import knobs

    figure = plots.sensitivity_plot(
        board.trials, board.swept, "gold_reward", paper_names=knobs.paper_names(board.records)
    )
    assert figure.axes[0].get_xlabel() == "beta (ipo: tau, orpo: lambda)"
    one = leaderboard.build([r for r in records if r["method"] == "dpo"])
    assert one.swept_note == ""  # DPO's paper calls it beta too
