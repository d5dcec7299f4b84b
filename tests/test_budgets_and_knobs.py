"""Comparisons a reviewer can trust: one knob name with several meanings is announced, swept values that
changed nothing are flagged, compute budgets and loss conventions are stated, and one diverged trial cannot
flatten a plot."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from datasets import Dataset

from harness import leaderboard
from harness.config.sweep_checks import knob_meaning_warning, method_knobs
from harness.data import count_lengths
from harness.errors import PluginError
from harness.leaderboard import plot_scale, plots
from harness.leaderboard.analysis import budgets, caveats
from harness.leaderboard.html import render_html
from harness.leaderboard.markdown import to_markdown
from harness.plugin import MethodSpec
from harness.plugin.manager import get_plugin_manager
from harness.records import DataSummary, TrainSummary
from tests.helpers import make_record

pytestmark = pytest.mark.unit

PM = get_plugin_manager()
BUILTIN = {m.name: m.to_record(e.name) for e in PM.evaluators.values() for m in e.metrics}


# --- one knob, several meanings -----------------------------------------------------------------------------


def test_a_knob_with_several_meanings_is_one_warning_line():
    warning = knob_meaning_warning([("dpo", {"beta"}), ("ipo", {"beta"}), ("orpo", {"beta"})], PM)
    assert warning is not None and "\n" not in warning
    assert warning.startswith(
        "method.beta means different things here: dpo: KL strength, ipo: regularisation tau"
    )
    assert "orpo: weight lambda of the odds-ratio term" in warning
    assert warning.endswith(
        "sweep each method's own grid (e.g. -m method=dpo method.beta=... and one sweep each for "
        "ipo and orpo)"
    )
    # methods that share a meaning share a grid
    assert "dpo and kto: KL strength" in knob_meaning_warning(
        [("dpo", {"beta"}), ("kto", {"beta"}), ("simpo", {"beta"})], PM
    )


def test_a_knob_with_one_meaning_or_one_method_is_not_announced():
    assert knob_meaning_warning([("dpo", {"beta"}), ("kto", {"beta"})], PM) is None  # both "KL strength"
    assert (
        knob_meaning_warning([("dpo", {"learning_rate"}), ("orpo", {"learning_rate"})], PM) is None
    )  # common knob
    assert knob_meaning_warning([("dpo", {"beta"}), ("dpo", {"beta"})], PM) is None
    assert knob_meaning_warning([("dpo", set()), ("orpo", set())], PM) is None  # each at its own default
    assert method_knobs(
        ["method=dpo", "method.beta=0.1", "method.trl.max_length=64", "+method.x=1", "seed=1"]
    ) == {"beta", "x"}


def test_the_multirun_prints_the_warning_before_any_trial(tmp_path, monkeypatch, capsys):
    from harness.config.compose import validate_jobs

    monkeypatch.chdir(tmp_path)
    assert validate_jobs(["method=dpo,orpo", "method.beta=0.1"], {}, multirun=True) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(
        "harness: warning: method.beta means different things here: dpo: KL strength, orpo: weight lambda"
    )


# --- parameters that changed nothing ------------------------------------------------------------------------


def trial(method, beta, checkpoints, seed=0, job=0, losses=None):
    """A completed trial with the given (step, gold, gold_se, kl, length) checkpoints."""
    return make_record(
        trial_id=f"sweep/{job}",
        status="completed",
        method=method,
        error=None,
        hyperparameters={"beta": beta, "gamma": 2.4, "seed": seed},
        overrides=[f"method={method}", f"method.beta={beta}"],
        data_kind="pairwise",
        config={"model": {"name_or_path": "toy"}, "data": {"source": "toy"}, "eval": {"num_prompts": 128}},
        reference={"metrics": {"gold_reward": 0.0, "kl": 0.0}},
        checkpoints=[
            {
                "step": s,
                "final": i == len(checkpoints) - 1,
                "metrics": {"gold_reward": g, "gold_reward_se": se, "kl": k, "kl_se": 0.1, "length": n},
            }
            for i, (s, g, se, k, n) in enumerate(checkpoints)
        ],
        train={
            "steps": 100,
            "log_history": [{"step": 10 * i, "loss": v} for i, v in enumerate(losses or [])],
        },
        timings={"train_s": 10.0},
        peak_memory={"rss_peak_mb": 500.0},
        models_in_memory=1,
        eval_prompts=128,
        metric_declarations=BUILTIN,
    )


RUN = [(50, 0.10, 0.03, 0.30, 8.0), (100, 0.13, 0.03, 0.60, 7.0)]


def test_identical_runs_of_two_swept_values_are_flagged():
    records = [
        trial("simpo", 0.05, RUN, job=0, losses=[2.44, 2.40]),
        trial("simpo", 0.1, RUN, job=1, losses=[2.39, 2.3]),
        trial("dpo", 0.1, RUN, job=2),
    ]
    board = leaderboard.build(records)
    found = board.no_effect
    assert list(found["method"]) == ["simpo"] and found.loc[0, "kind"] == "identical"
    assert found.loc[0, "note"] == (
        "beta=0.05 and beta=0.1 gave identical runs with seed 0 (likely cause: the loss is "
        "scale-invariant in this parameter under Adam, or the parameter is unused)"
    )
    health = board.trials.set_index("trial_id")["health"]
    assert health["sweep/0"] == health["sweep/1"] == "no_effect" and health["sweep/2"] in ("", None)
    md = to_markdown(board)
    assert (
        "## Parameters that changed nothing" in md
        and "- **simpo**: beta=0.05 and beta=0.1 gave identical" in md
    )
    assert "Parameters that changed nothing" in render_html(board)


def test_equal_losses_too_point_at_an_unused_parameter():
    records = [
        trial("simpo", 0.05, RUN, job=0, losses=[2.4, 2.3]),
        trial("simpo", 0.1, RUN, job=1, losses=[2.4, 2.3]),
    ]
    assert (
        "training losses included (likely cause: the parameter is unused)"
        in leaderboard.build(records).no_effect.loc[0, "note"]
    )


def test_runs_within_noise_are_indistinguishable_and_different_runs_are_not_flagged():
    close = [(50, 0.11, 0.03, 0.32, 8.1), (100, 0.128, 0.03, 0.58, 7.1)]  # within one SE, length within 5%
    found = leaderboard.build([trial("simpo", 0.05, RUN, job=0), trial("simpo", 0.1, close, job=1)]).no_effect
    assert found.loc[0, "kind"] == "indistinguishable" and "cannot tell apart" in found.loc[0, "note"]
    differ = [(50, 0.10, 0.03, 0.30, 8.0), (100, 0.13, 0.03, 0.95, 7.0)]  # KL 3.5 SE apart at step 100
    assert leaderboard.build(
        [trial("simpo", 0.05, RUN, job=0), trial("simpo", 0.1, differ, job=1)]
    ).no_effect.empty
    longer = [(50, 0.10, 0.03, 0.30, 8.0), (100, 0.13, 0.03, 0.60, 7.6)]  # length 8.6% apart
    assert leaderboard.build(
        [trial("simpo", 0.05, RUN, job=0), trial("simpo", 0.1, longer, job=1)]
    ).no_effect.empty
    one = [(100, 0.128, 0.03, 0.58, 7.1)]  # within noise at a single checkpoint: too little to say
    assert leaderboard.build(
        [trial("simpo", 0.05, RUN[1:], job=0), trial("simpo", 0.1, one, job=1)]
    ).no_effect.empty


def test_only_trials_differing_in_one_swept_value_are_compared():
    other_seed = [trial("simpo", 0.05, RUN, seed=0, job=0), trial("simpo", 0.05, RUN, seed=1, job=1)]
    assert leaderboard.build(other_seed).no_effect.empty  # seeds may agree; that is not a swept value
    two_knobs = [trial("simpo", 0.05, RUN, job=0), trial("simpo", 0.1, RUN, job=1)]
    two_knobs[1].hyperparameters = {**two_knobs[1].hyperparameters, "gamma": 1.0}
    assert leaderboard.build(two_knobs).no_effect.empty
    methods = [trial("simpo", 0.05, RUN, job=0), trial("cpo", 0.1, RUN, job=1)]
    assert leaderboard.build(methods).no_effect.empty
    three = [trial("simpo", b, RUN, seed=s, job=f"{b}-{s}") for b in (0.05, 0.1, 0.2) for s in (1, 2)]
    found = leaderboard.build(three).no_effect
    assert len(found) == 3 and set(found["seeds"]) == {"1, 2"}  # each pair of values, over both seeds
    assert caveats.note("beta", [0.05, 0.1, 0.2], "identical").startswith(
        "beta=0.05, beta=0.1 and beta=0.2 gave"
    )


# --- compute budgets ----------------------------------------------------------------------------------------


def budget_record(
    method="dpo", steps=250, batch=16, accum=1, mean_tokens=40.0, models=2, kind="pairwise", **hp
):
    return make_record(
        trial_id=f"sweep/{method}-{steps}",
        status="completed",
        method=method,
        data_kind=kind,
        hyperparameters={"batch_size": batch, "grad_accum": accum, "seed": 0, **hp},
        train={"steps": steps, "parameters": 1000},
        models_in_memory=models,
        data={"mean_tokens": mean_tokens, "train_examples": 1000},
    )


def test_a_trials_budget_is_computed_from_its_record():
    assert budgets.trial_budget(budget_record()) == {
        "steps": 250,
        "examples": 4000,
        "tokens": 160000,
        "flops_est": 6 * 1000 * 160000 + 2 * 1000 * 160000,
    }
    # a reference precomputed once reads each of the 1,000 training rows once, not every example seen
    precomputed = budgets.trial_budget(budget_record(**{"trl.precompute_ref_log_probs": True}))
    assert precomputed["flops_est"] == 6 * 1000 * 160000 + 2 * 1000 * 1000 * 40
    # online: prompt + the completion cap per sampled completion, sampling as an extra forward
    online = budgets.trial_budget(
        budget_record("grpo", 10, 16, 1, 10.0, 1, "prompts", **{"trl.max_completion_length": 24})
    )
    assert online == {
        "steps": 10,
        "examples": 160,
        "tokens": 160 * 34,
        "flops_est": budgets._round3(6 * 1000 * 5440 + 2 * 1000 * 5440),
    }
    ppo = budgets.trial_budget(
        budget_record("ppo", 60, 64, 1, 10.0, 3, "prompts", response_length=24, ppo_epochs=4)
    )
    assert ppo["flops_est"] == budgets._round3(6 * 1000 * 3840 * 34 * 4 + 2 * 1000 * 3840 * 34 * 3)
    assert budgets.trial_budget(make_record(train={})) == {
        "steps": None,
        "examples": None,
        "tokens": None,
        "flops_est": None,
    }


def test_budgets_are_columns_and_a_difference_is_one_note(tmp_path):
    records = [trial("cpo", 0.1, RUN, job=0), trial("dpo", 0.1, RUN, job=1), trial("kto", 0.1, RUN, job=2)]
    for r, steps in zip(records, (250, 375, 500), strict=True):
        r.train = TrainSummary(steps=steps, parameters=1000)
        r.hyperparameters = {**r.hyperparameters, "batch_size": 16, "grad_accum": 1}
        r.data = DataSummary(mean_tokens=40.0, train_examples=1000)
    board = leaderboard.build(records)
    assert list(board.cost["steps"]) == [250, 375, 500] and list(board.cost["examples"]) == [4000, 6000, 8000]
    assert board.budget_note == (
        "budgets differ: cpo 250 steps × 16 examples, dpo 375 steps × 16 examples, kto 500 "
        "steps × 16 examples; equalise with method.max_steps=375 method.batch_size=16 on the "
        "command line, which applies to every method."
    )
    leaderboard.write_reports(board, tmp_path)
    csv = pd.read_csv(tmp_path / "leaderboard.csv")
    assert {"steps", "examples", "tokens", "flops_est"} <= set(csv.columns)
    assert dict(zip(csv["method"], csv["tokens"], strict=True)) == {
        "cpo": 160000,
        "dpo": 240000,
        "kto": 320000,
    }
    assert (
        "steps" not in board.shown(board.completed).columns
    )  # per trial in the CSV, per method in the cost table
    md = (tmp_path / "leaderboard.md").read_text()
    assert "**Note:** budgets differ: cpo 250 steps" in md and "6·N·tokens·passes" in md
    assert "budgets differ" in (tmp_path / "leaderboard.html").read_text()
    for r, steps in zip(records, (480, 500, 500), strict=True):
        r.train.steps = steps
    assert leaderboard.build(records).budget_note is None  # within 10%
    # an online method's examples are rollouts, 64 a step: one max_steps cannot equalise; FLOPs are named
    records[2].hyperparameters = {**records[2].hyperparameters, "batch_size": 64}
    records[2].train.steps = 25
    note = leaderboard.build(records).budget_note
    assert note.startswith("budgets differ: kto 25 steps × 64 examples, cpo 480 steps × 16 examples")
    assert (
        "equalise with" not in note
        and "their FLOPs estimates run from" in note
        and "compare `flops_est`" in note
    )


def test_the_length_report_counts_mean_tokens():
    class Words:  # a whitespace tokenizer
        eos_token = "</s>"

        def __call__(self, texts, add_special_tokens=True):
            return {"input_ids": [t.split() for t in texts]}

    pairs = Dataset.from_list(
        [
            {"prompt": "a b", "chosen": " c", "rejected": " d e"},
            {"prompt": "a b c d", "chosen": " e", "rejected": " f"},
        ]
    )
    report, keep = count_lengths(pairs, Words(), None)  # no limit: every row kept, tokens still counted
    assert keep == [0, 1] and report.mean_tokens == ((3 + 4) + (5 + 5)) / 2
    report, keep = count_lengths(
        pairs, Words(), 4
    )  # the second prompt fills the limit: dropped; sequences capped
    assert keep == [0] and report.mean_tokens == 3 + 4 and report.truncated == 0
    prompts = Dataset.from_list([{"prompt": "a b c"}, {"prompt": "a"}])
    assert count_lengths(prompts, Words(), None)[0].mean_tokens == 2


# --- loss conventions ---------------------------------------------------------------------------------------


def test_loss_notes_are_a_validated_string_stated_by_every_builtin_method():
    with pytest.raises(PluginError, match="loss_notes must be a string"):
        MethodSpec(name="x", train=lambda ctx: None, loss_notes=["summed"])
    notes = {name: spec.loss_notes for name, spec in PM.methods.items()}
    assert all(notes[m] for m in ("dpo", "ipo", "cpo", "simpo", "orpo", "kto", "grpo", "rloo", "ppo"))
    assert "summed over the completion's tokens" in notes["dpo"] and "loss_type=sigmoid" in notes["dpo"]
    assert "averaged per completion token" in notes["ipo"] and "loss_type=ipo" in notes["ipo"]
    assert "per-token mean over the batch's completion tokens" in notes["cpo"]
    assert "cpo_alpha=0" in notes["simpo"] and "no NLL term" in notes["simpo"]
    assert "prompt AND the chosen completion" in notes["orpo"] and "lambda" in notes["orpo"]
    assert "z0" in notes["kto"]


def test_loss_notes_are_shown_with_the_method_settings():
    records = [
        replace(trial("orpo", 0.1, RUN, job=0), loss_notes="NLL over prompt and completion"),
        trial("dpo", 0.1, RUN, job=1),
    ]
    board = leaderboard.build(records)
    assert dict(zip(board.settings["method"], board.settings["loss"], strict=True)) == {
        "dpo": "",
        "orpo": "NLL over prompt and completion",
    }
    assert "| NLL over prompt and completion |" in to_markdown(board).replace("  ", " ")
    assert "loss: NLL over prompt and completion" in render_html(board)


# --- plots robust to a diverged trial -----------------------------------------------------------------------


def sweep_trials():
    """Completed trials of three methods; kto seed 2 diverged (gold reward -4.7 at KL 70)."""
    rows = []
    for m, method in enumerate(("dpo", "kto", "simpo")):
        for beta in (0.05, 0.1):
            for seed in (1, 2, 3):
                diverged = method == "kto" and seed == 2 and beta == 0.05
                rows.append(
                    {
                        "trial_id": f"{method}-{beta}-{seed}",
                        "method": method,
                        "beta": beta,
                        "seed": seed,
                        "status": "completed",
                        "gold_reward": -4.7 if diverged else 0.1 + 0.05 * m + seed / 100,
                        "kl": 70.0 if diverged else 1.0 + m + beta,
                    }
                )
    return pd.DataFrame(rows)


def test_a_diverged_trial_does_not_set_the_sensitivity_axis_and_the_legend_clears_the_title():
    fig = plots.sensitivity_plot(sweep_trials(), ["beta", "seed"], "gold_reward")
    ax = fig.axes[0]
    low, high = ax.get_ylim()
    assert low > 0 and high < 0.4  # the healthy trials fill the axis, not -4.7
    notes = [t.get_text() for t in ax.texts if t.get_gid() == "off_scale"]
    assert notes == ["off-scale: kto beta=0.05 seed=2 (gold reward -4.7)"]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legend, title = fig.legends[0].get_window_extent(renderer), fig._suptitle.get_window_extent(renderer)
    assert not legend.overlaps(title)
    assert not any(legend.overlaps(a.title.get_window_extent(renderer)) for a in fig.axes)


def test_a_diverged_trial_does_not_set_the_training_axes():
    trials = sweep_trials()
    checkpoints = pd.concat(
        [
            trials.assign(step=s, gold_reward=trials["gold_reward"] * s / 100, kl=trials["kl"] * s / 100)
            for s in (50, 100)
        ],
        ignore_index=True,
    )
    fig = plots.training_curves(checkpoints, "gold_reward", label_keys=["beta", "seed"])
    reward, kl = fig.axes[:2]
    assert reward.get_ylim()[0] > -1.0 and kl.get_ylim()[1] < 10.0
    assert [t.get_text() for t in kl.texts if t.get_gid() == "off_scale"] == [
        "off-scale: kto beta=0.05 seed=2 (KL 70)"
    ]


def test_robust_limits_leave_ordinary_data_alone():
    assert plot_scale.robust_limits([0.1, 0.2, 0.3, 0.25, 0.15]) is None  # no outlier
    assert plot_scale.robust_limits([0.1, 0.2, 0.3]) is None  # too few points to tell
    assert plot_scale.robust_limits([0.0, 0.0, 5.0, 5.0, 6.0, 1.0]) is None  # spread out, not a few outliers
    low, high, outside = plot_scale.robust_limits([0.1, 0.2, 0.15, 0.12, np.nan, -5.0])
    assert list(outside) == [False, False, False, False, False, True] and -0.1 < low < 0.1 < 0.2 < high < 0.3
