"""Objectives by name: ``auto`` is the best metric available (gold reward, else a reward model's score, else a
judge's win rate, else preference accuracy), and every report opens with the objective, the reason it was
chosen and the reference model's value with its standard error."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from harness import leaderboard
from harness.config.metrics import auto_objective
from harness.plugin import EvaluatorSpec, Metric
from harness.plugin.manager import get_plugin_manager
from harness.records import RECORD_NAME, write_record
from tests.helpers import make_record

pytestmark = pytest.mark.unit

BUILTIN = {m.name: m.to_record(e.name) for e in get_plugin_manager().evaluators.values() for m in e.metrics}
JUDGE = Metric(
    "judge_win_rate",
    "judge's win rate against the reference",
    "maximize",
    headline=True,
    se="judge_win_rate_se",
    objective_priority=20,
)
DECLARED = {
    **BUILTIN,
    "judge_win_rate": JUDGE.to_record("judge"),
    "judge_win_rate_se": Metric("judge_win_rate_se", "standard error").to_record("judge"),
}


def _spec(name: str, metric: str, priority: int, active: bool) -> EvaluatorSpec:
    return EvaluatorSpec(
        name=name,
        evaluate=lambda ctx: {},
        active=lambda cfg: active,
        metrics=[Metric(metric, "m", "maximize", objective_priority=priority)],
    )


@pytest.mark.parametrize(
    ("gold", "rm", "judge", "expected"),
    [
        (True, True, True, "gold_reward"),
        (False, True, True, "reward_model_score"),
        (False, False, True, "judge_win_rate"),
        (False, False, False, "preference_accuracy"),
    ],
)
def test_auto_is_gold_else_reward_model_else_judge_else_preference_accuracy(gold, rm, judge, expected):
    specs = [
        _spec("pref", "preference_accuracy", 30, True),
        _spec("judge", "judge_win_rate", 20, judge),
        _spec("rm", "reward_model_score", 10, rm),
        _spec("gold", "gold_reward", 0, gold),
    ]
    assert auto_objective(specs, OmegaConf.create({})).name == expected


def test_the_built_in_evaluators_declare_that_order_and_when_they_yield_metrics():
    pm = get_plugin_manager()
    priority = {m.name: m.objective_priority for e in pm.evaluators.values() for m in e.metrics}
    assert priority["gold_reward"] < priority["reward_model_score"] < priority["preference_accuracy"]
    if "judge_win_rate" in priority:
        assert priority["reward_model_score"] < priority["judge_win_rate"] < priority["preference_accuracy"]
    no_rm = OmegaConf.create({"eval": {"reward_model": {"name_or_path": None}}})
    with_rm = OmegaConf.create({"eval": {"reward_model": {"name_or_path": "/models/rm"}}})
    rm = pm.evaluator("reward_model")
    assert rm.active(no_rm) is False and rm.active(with_rm) is True


def _record(method: str, score: float, metrics: dict, reference: dict, job: int) -> dict:
    return make_record(
        trial_id=f"{method}-{job}",
        status="completed",
        method=method,
        error=None,
        hyperparameters={"seed": 0},
        overrides=[f"method={method}"],
        config={"model": {"name_or_path": "/models/qwen"}, "data": {"source": "files"}},
        reference={"metrics": reference},
        eval_prompts=64,
        checkpoints=[{"step": 10, "final": True, "metrics": {**metrics, "kl": 1.0 + job}}],
        timings={"train_s": 1.0},
        metric_declarations=DECLARED,
    )


def _head(board: leaderboard.Leaderboard, tmp_path) -> tuple[str, str]:
    leaderboard.write_reports(board, tmp_path)
    md = (tmp_path / "leaderboard.md").read_text()
    return md.split("\n\n|")[0], (tmp_path / "leaderboard.html").read_text()


def test_a_real_model_leaderboard_opens_with_the_reward_model_objective_and_its_baseline(tmp_path):
    reference = {"reward_model_score": 0.187, "reward_model_score_se": 0.021, "preference_accuracy": 0.5}
    records = [
        _record(
            m,
            s,
            {"reward_model_score": s, "reward_model_score_se": 0.03, "preference_accuracy": 0.6},
            reference,
            i,
        )
        for i, (m, s) in enumerate([("dpo", 0.40), ("simpo", 0.55)])
    ]
    board = leaderboard.build(records)
    assert board.objective_name == "rm_score" and list(board.trials["method"]) == ["simpo", "dpo"]
    assert board.baseline() == (0.187, 0.021)
    head, page = _head(board, tmp_path)
    lines = [line for line in head.splitlines() if line][1:3]  # after the title
    assert lines[0].startswith("**Objective: `rm_score`**") and "auto" in lines[0]
    assert lines[1].startswith("**Reference (untrained) model: 0.187 ± 0.021 (standard error)**")
    assert "base_gold" not in head and "`base_rm_score`" in head
    assert "Objective: <b>rm_score</b>" in page and "0.187 ± 0.021" in page
    shown = board.shown(board.trials).columns
    assert {"rm_score", "rm_se", "base_rm_score"} <= set(shown)
    assert leaderboard.console_table(board).startswith(
        "Objective: rm_score (higher is better, auto); reference model 0.187 ± 0.021 (SE)."
    )


def test_a_named_objective_says_so_and_the_judge_ranks_when_named(tmp_path):
    reference = {
        "reward_model_score": 0.1,
        "reward_model_score_se": 0.01,
        "judge_win_rate": 0.5,
        "judge_win_rate_se": 0.0,
    }
    records = [
        _record(
            m, 0.0, {"reward_model_score": r, "judge_win_rate": j, "judge_win_rate_se": 0.05}, reference, i
        )
        for i, (m, r, j) in enumerate([("dpo", 0.9, 0.55), ("orpo", 0.2, 0.70)])
    ]
    assert leaderboard.build(records).objective_name == "rm_score"  # auto: the reward model comes first
    board = leaderboard.build(records, objective="judge_win_rate")
    assert list(board.trials["method"]) == ["orpo", "dpo"] and not board.objective_auto
    head, _ = _head(board, tmp_path)
    assert "**Objective: `judge_win_rate`**" in head and "as named" in head
    assert "**Reference (untrained) model: 0.5 ± 0 (standard error)**" in head


def test_with_nothing_to_rank_by_the_report_says_how_to_get_an_objective(tmp_path):
    records = [
        _record(m, 0.0, {"distinct_2": 0.5}, {"distinct_2": 0.4}, i) for i, m in enumerate(["dpo", "ipo"])
    ]
    board = leaderboard.build(records)
    assert board.objective_name is None
    head, page = _head(board, tmp_path)
    assert "**No objective**" in head and "eval.reward_model.name_or_path=<dir>" in head
    assert "eval.extra=[judge]" in head and "leaderboard.objective=&lt;metric&gt;" in page
    for path in tmp_path.iterdir():
        if path.suffix in (".md", ".html"):
            assert "None" not in path.read_text().split("## Reproduce")[0].split('<h2 id="reproduce"')[0]


@pytest.mark.filterwarnings("ignore:cannot open Optuna study")
def test_a_study_that_resolved_auto_is_reported_as_auto(tmp_path):
    from harness.sweep.study import StudySettings

    reference = {"preference_accuracy": 0.5, "preference_accuracy_se": 0.03}
    for i, (m, acc) in enumerate([("dpo", 0.7), ("ipo", 0.6)]):
        write_record(
            tmp_path / "sweep" / str(i) / RECORD_NAME,
            _record(m, 0.0, {"preference_accuracy": acc, "preference_accuracy_se": 0.02}, reference, i),
        )
    StudySettings(
        "s",
        str(tmp_path / "sweep" / "study.journal"),
        ["preference_accuracy"],
        ["maximize"],
        auto_objective=True,
    ).save(tmp_path / "sweep")
    board = leaderboard.load_leaderboard([tmp_path / "sweep"])
    assert board.objective_name == "pref_acc" and board.objective_auto
    assert leaderboard.console_table(board).startswith(
        "Objective: pref_acc (higher is better, auto); reference model 0.5 ± 0.03 (SE)."
    )


def test_naming_a_metric_of_an_evaluator_the_trial_does_not_run_says_how_to_add_it():
    from harness.config.metrics import resolve_metric
    from harness.errors import ConfigError

    running = [_spec("pref", "preference_accuracy", 30, True)]
    judge = _spec("judge", "judge_win_rate", 20, True)
    with pytest.raises(ConfigError) as error:
        resolve_metric("judge_win_rate", running, "leaderboard.objective", registered=[*running, judge])
    assert str(error.value) == (
        "leaderboard.objective=judge_win_rate is a metric of evaluator judge, which this trial "
        "does not run; add it with eval.extra=[judge] (and its options, eval.judge.*), or "
        "choose one of: preference_accuracy."
    )
    with pytest.raises(ConfigError, match="Unknown metric for leaderboard.objective 'judge_wr'"):
        resolve_metric("judge_wr", running, "leaderboard.objective", registered=[*running, judge])


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ([], "gold_reward"),  # the toy world's data has a gold reward
        (
            ["data=files", "data.path=/data/prefs.jsonl", "eval.reward_model.name_or_path=/models/rm"],
            "reward_model_score",
        ),
        (["data=files", "data.path=/data/prefs.jsonl", "eval.extra=[judge]"], "judge_win_rate"),
        (["data=files", "data.path=/data/prefs.jsonl"], "preference_accuracy"),
    ],
)
def test_an_optuna_sweep_resolves_auto_from_the_composed_config_before_any_trial(overrides, expected):
    """What the sweeper names its study's objective (harness.sweep.sweeper:
    auto resolved before the first trial)."""
    from harness.config.compose import compose_job
    from harness.config.validation import evaluator_names

    cfg = compose_job(["model=hf", "model.name_or_path=/models/any-llm", *overrides], {})  # composed only
    pm = get_plugin_manager()
    assert auto_objective([pm.evaluator(n) for n in evaluator_names(cfg)], cfg).name == expected
