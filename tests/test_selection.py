"""Selection prompts: checkpoints are chosen on prompts (and a sampling seed)
that the reported scores never use."""

from __future__ import annotations

import math

import pytest
from omegaconf import OmegaConf, open_dict

from harness import leaderboard
from harness.config.validation import validate_selection
from harness.data.selection import split_held_out, take
from harness.errors import ConfigError
from harness.evaluation.refcache import RefCache
from harness.leaderboard.analysis.selection import selection_sentence
from harness.leaderboard.markdown import to_markdown
from harness.plugin.manager import get_plugin_manager
from harness.records import RECORD_NAME, write_record
from harness.sweep import study as st
from harness.trial import TrialRun
from tests.helpers import checkpoint as make_checkpoint
from tests.helpers import compose, make_record

BUILTIN = {m.name: m.to_record(e.name) for e in get_plugin_manager().evaluators.values() for m in e.metrics}
SELECTION = {"num_prompts": 64, "seed": 1235, "disjoint": True}


def checkpoint(step, test_gold, sel_gold, test_kl=1.0, sel_kl=1.0, final=False):
    return make_checkpoint(
        step,
        {"gold_reward": test_gold, "kl": test_kl},
        final=final,
        selection={"metrics": {"gold_reward": sel_gold, "kl": sel_kl}, "eval_seconds": 0.1},
    )


def record(method, checkpoints, selection=SELECTION):
    return make_record(
        status="completed",
        method=method,
        error=None,
        trial_id=method,
        hyperparameters={"beta": 0.1, "seed": 0},
        overrides=[f"method={method}"],
        reference={"metrics": {"gold_reward": -0.2, "kl": 0.0}},
        checkpoints=checkpoints,
        eval_prompts=128,
        metric_declarations=BUILTIN,
        config={"eval": {"seed": 1234}},
        **({"selection": selection} if selection is not None else {}),
    )


# --- choosing on selection, reporting on test ---------------------------------------------------------------


@pytest.mark.unit
def test_the_leaderboard_chooses_on_selection_and_shows_the_test_value(tmp_path):
    # Selection prefers step 10; the test prompts would prefer step 20 (the optimistic choice).
    cps = [checkpoint(10, 0.30, 0.50), checkpoint(20, 0.60, 0.40), checkpoint(30, 0.10, 0.20, final=True)]
    write_record(tmp_path / "0" / RECORD_NAME, record("dpo", cps))
    board = leaderboard.load_leaderboard([tmp_path])
    row = board.trials.iloc[0]
    assert int(row["step"]) == 10 and row["gold_reward"] == 0.30  # step 10, with its TEST value
    assert row["selection_objective"] == 0.50 and row["objective"] == 0.30
    assert not any(c.startswith("sel_") for c in board.trials.columns)  # per-trial columns are the test ones
    assert "selection_objective" not in board.shown(board.completed).columns
    assert {"sel_gold_reward", "sel_kl"} <= set(
        board.checkpoints.columns
    )  # every checkpoint's, in checkpoints.csv
    assert board.checkpoints.loc[board.checkpoints.step == 20, "sel_gold_reward"].item() == 0.40
    text = to_markdown(board)
    assert (
        "Checkpoints are chosen on 64 selection prompts (sampling seed 1235); every score shown "
        "comes from 128 disjoint test prompts (seed 1234)."
    ) in text


@pytest.mark.unit
def test_the_kl_budget_is_checked_on_the_selection_kl():
    # Step 20 is best on selection, within budget there (9.0),
    # over it on the test prompts (11.0): still chosen.
    cps = [checkpoint(10, 0.3, 0.2, 1.0, 1.0), checkpoint(20, 0.5, 0.6, 11.0, 9.0, final=True)]
    board = leaderboard.build([record("dpo", cps)])
    row = board.trials.iloc[0]
    assert int(row["step"]) == 20 and row["gold_reward"] == 0.5 and bool(row["within_budget"])
    # And the other way round: over the budget on selection, inside on test: not chosen.
    cps = [checkpoint(10, 0.3, 0.2, 1.0, 1.0), checkpoint(20, 0.5, 0.6, 9.0, 11.0, final=True)]
    assert int(leaderboard.build([record("dpo", cps)]).trials.iloc[0]["step"]) == 10


@pytest.mark.unit
def test_records_without_selection_metrics_are_chosen_on_their_reported_ones():
    old = [
        {"step": 10, "final": False, "metrics": {"gold_reward": 0.3, "kl": 1.0}},
        {"step": 20, "final": True, "metrics": {"gold_reward": 0.6, "kl": 2.0}},
    ]
    board = leaderboard.build([record("dpo", old, selection=None)])
    row = board.trials.iloc[0]
    assert int(row["step"]) == 20 and row["selection_objective"] == 0.6
    assert "predate selection prompts" in selection_sentence(board.records)
    off = record("dpo", old, selection={"num_prompts": 0, "seed": None, "disjoint": False})
    assert "eval.selection.num_prompts=0" in selection_sentence([off]) and "optimistic" in selection_sentence(
        [off]
    )
    shared = record("dpo", old, selection={"num_prompts": 5, "seed": 7, "disjoint": False})
    assert "not disjoint" in selection_sentence([shared]) and "optimistic" in selection_sentence([shared])


@pytest.mark.unit
def test_optuna_gets_the_selection_values(tmp_path):
    cps = [checkpoint(10, 0.30, 0.50, 4.0, 3.0), checkpoint(20, 0.60, 0.40, 5.0, 6.0, final=True)]
    one = st.StudySettings("s", str(tmp_path / "j"), ["gold_reward"], ["maximize"], kl_budget=10.0)
    assert st.objective_values(cps, one, BUILTIN) == (
        [0.50],
        10,
    )  # chosen on selection, told its selection value
    two = st.StudySettings("s", "x", ["auto", "kl"], ["maximize", "minimize"], kl_budget=10.0)
    assert st.objective_values(cps, two, BUILTIN) == ([0.50, 3.0], 10)
    assert st.min_kl(cps) == 3.0
    old = [make_checkpoint(10, {"gold_reward": 0.3, "kl": 1.0}, final=True)]
    assert st.objective_values(old, one, BUILTIN) == ([0.3], 10)  # no selection metrics: the reported ones


# --- which evaluators run on the selection prompts ----------------------------------------------------------

ALL = [
    "gold_reward",
    "reward_model",
    "kl",
    "win_rate",
    "preference_accuracy",
    "text_stats",
    "lm_eval",
    "judge",
]


def chosen_by(monkeypatch, data="toyworld", objective="auto", exclude=("lm_eval",), study=None, rm=None):
    """The names of the evaluators the selection prompts run for this config (``study``: the Optuna study's
    settings file named in the environment, as the sweeper does)."""
    from harness.trial.selection import STUDY_ENV, selection_evaluators

    if study is None:
        monkeypatch.delenv(STUDY_ENV, raising=False)
    else:
        monkeypatch.setenv(STUDY_ENV, str(study))
    cfg = OmegaConf.create(
        {
            "data": {"source": data},
            "plugins": [],
            "leaderboard": {"objective": objective},
            "eval": {
                "evaluators": ALL,
                "reward_model": {"name_or_path": rm},
                "selection": {"exclude": list(exclude)},
            },
        }
    )
    pm = get_plugin_manager([])
    return [e.name for e in selection_evaluators(cfg, [pm.evaluator(n) for n in ALL])]


@pytest.mark.unit
def test_only_the_evaluators_that_choose_the_checkpoint_run_on_the_selection_prompts(monkeypatch, tmp_path):
    # auto: the gold reward where the data defines one, else the reward model's score, the judge,
    # ...; kl always.
    assert chosen_by(monkeypatch) == ["gold_reward", "kl"]
    assert chosen_by(monkeypatch, data="files", rm="/some/rm") == ["reward_model", "kl"]
    assert chosen_by(monkeypatch, data="files") == ["kl", "judge"]
    assert chosen_by(monkeypatch, objective="pref_acc") == [
        "kl",
        "preference_accuracy",
    ]  # a column names it too
    assert chosen_by(monkeypatch, objective="lm_eval/toy_grammar/acc", exclude=[]) == ["kl", "lm_eval"]
    assert chosen_by(monkeypatch, objective="lm_eval/toy_grammar/acc") == ["kl"]  # excluded all the same
    assert chosen_by(monkeypatch, exclude=["kl"]) == ["gold_reward"]
    # An Optuna trial also measures the study's objectives there (the sweeper's settings file).
    study = tmp_path / "study.json"
    st.StudySettings("s", "j", ["gold_reward", "distinct_2"], ["maximize", "maximize"]).save(tmp_path)
    assert chosen_by(monkeypatch, study=study) == ["gold_reward", "kl", "text_stats"]
    study.write_text("not json")
    assert chosen_by(monkeypatch, study=study) == ["gold_reward", "kl"]


@pytest.mark.unit
def test_the_study_environment_is_the_sweepers():
    from harness.sweep.reporter import ENV_STUDY
    from harness.trial.selection import STUDY_ENV

    assert STUDY_ENV == ENV_STUDY


# --- the split of held-out data -----------------------------------------------------------------------------


@pytest.mark.unit
def test_take_reports_first_and_selects_from_the_end():
    assert take(300, 128, 64) == (128, 64)
    assert take(150, 128, 64) == (128, 22)  # too few left: what is left
    assert take(100, 128, 64) == (100, 0)  # none left
    assert take(300, None, 64) == (236, 64)  # all but the selection prompts
    assert take(40, None, 64) == (20, 20)  # at least half reported


@pytest.mark.unit
def test_split_of_other_data_is_disjoint_and_warns_when_too_few_are_left():
    prompts = [f"p{i}" for i in range(300)]
    pair_prompts = [p for p in prompts for _ in range(2)]  # two pairs per prompt, in the prompts' order
    split = split_held_out(prompts, 128, 64, pair_prompts=pair_prompts, num_pairs=256)
    assert split.prompts == prompts[:128] and split.selection_prompts == prompts[-64:]
    assert split.disjoint and split.warning is None
    assert split.pair_rows == list(range(256)) and split.selection_pair_rows == list(range(472, 600))
    assert split.pairs_disjoint  # the pairs follow their prompts

    short = split_held_out(prompts[:150], 128, 64, pair_prompts=pair_prompts[:300], num_pairs=256)
    assert short.selection_prompts == prompts[128:150] and short.disjoint
    assert (
        "\n" not in short.warning
        and "only 22 of 150" in short.warning
        and "chosen on those 22" in short.warning
    )
    assert short.pair_rows == list(range(256)) and short.selection_pair_rows == list(range(256, 300))

    none = split_held_out(prompts[:100], 128, 64, pair_prompts=pair_prompts[:200], num_pairs=256)
    assert none.prompts == prompts[:100] and none.selection_prompts == none.prompts and not none.disjoint
    assert none.selection_pair_rows == none.pair_rows == list(range(200)) and none.pairs_disjoint is False
    assert "chosen on the reported prompts" in none.warning and "\n" not in none.warning

    # Few rows, many pairs wanted: the pairs of the selection prompts still go to selection only.
    few = split_held_out(prompts[:16], 4, 4, pair_prompts=prompts[:16], num_pairs=256)
    assert (
        few.selection_pair_rows == [12, 13, 14, 15]
        and few.pair_rows == list(range(12))
        and few.warning is None
    )

    messages = [[{"role": "user", "content": str(i)}] for i in range(10)]
    chat = split_held_out(messages, 4, 3)
    assert chat.selection_prompts == messages[-3:] and chat.disjoint and chat.pairs_disjoint is None


@pytest.mark.unit
def test_a_data_source_may_give_its_own_selection_prompts_and_pairs():
    split = split_held_out(
        ["a", "b", "c"],
        2,
        2,
        pair_prompts=["a", "b", "c", "d"],
        num_pairs=4,
        given_prompts=["x", "y", "z"],
        given_pair_rows=3,
    )
    assert split.prompts == ["a", "b"] and split.selection_prompts == ["x", "y"] and split.disjoint
    assert split.pairs_given and split.selection_pair_rows == [0, 1, 2] and split.pairs_disjoint
    assert split.pair_rows == [0, 1, 2, 3]
    assert split.warning is None
    few = split_held_out(["a"], None, 5, given_prompts=["x"])
    assert (
        few.prompts == ["a"]
        and few.selection_prompts == ["x"]
        and "provides 1 selection prompts" in few.warning
    )


@pytest.mark.unit
def test_plan_of_other_data_prints_one_warning(capsys):
    from datasets import Dataset

    from harness.data import DataFormat, PreferenceData, ValidationReport
    from harness.trial.selection import plan_held_out

    rows = [{"prompt": f"p{i}", "chosen": " a", "rejected": " b"} for i in range(12)]
    fmt = DataFormat(kind="pairwise", style="standard", implicit_prompt=False)
    data = PreferenceData(
        train=Dataset.from_list(rows),
        eval=Dataset.from_list(rows),
        eval_prompts=[r["prompt"] for r in rows],
        format=fmt,
        report=ValidationReport(rows_in=12, rows_out=12, ties_dropped=0, format=fmt),
    )
    cfg = OmegaConf.create(
        {
            "eval": {
                "num_prompts": 8,
                "preference_pairs": 8,
                "seed": 5,
                "selection": {"num_prompts": 6, "seed": None, "exclude": ["lm_eval"]},
            }
        }
    )
    plan = plan_held_out(data, cfg)
    assert plan.prompts == [f"p{i}" for i in range(8)] and plan.selection_prompts == [
        "p8",
        "p9",
        "p10",
        "p11",
    ]
    assert [p["prompt"] for p in plan.selection_pairs] == ["p8", "p9", "p10", "p11"]
    assert [p["prompt"] for p in plan.pairs] == [f"p{i}" for i in range(8)]
    assert plan.record.seed == 6 and plan.record.disjoint and plan.record.num_prompts == 4
    err = capsys.readouterr().err
    assert err.count("harness: warning:") == 1 and err.count("\n") == 1 and "only 4 of 12" in err
    cfg.eval.selection.num_prompts = 0
    off = plan_held_out(data, cfg)
    assert off.selection_prompts is None
    assert off.record.to_dict() == {"num_prompts": 0, "seed": None, "disjoint": False}


@pytest.mark.unit
@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("num_prompts", -1, "eval.selection.num_prompts=-1"),
        ("num_prompts", 1.5, "eval.selection.num_prompts=1.5"),
        ("seed", "x", "eval.selection.seed='x'"),
        ("exclude", "lm_eval", "eval.selection.exclude"),
        ("exclude", ["lm_evl"], "Did you mean: lm_eval"),
    ],
)
def test_bad_selection_settings_are_config_errors(key, value, message):
    selection = {"num_prompts": 64, "seed": None, "exclude": ["lm_eval"], key: value}
    cfg = OmegaConf.create({"eval": {"selection": selection}})
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")) as info:
        validate_selection(cfg, get_plugin_manager([]))
    assert "\n" not in str(info.value)


# --- a real trial -------------------------------------------------------------------------------------------


def test_a_trial_is_evaluated_on_disjoint_selection_prompts_at_every_checkpoint(tiny_world, tmp_path):
    cfg = compose(
        tiny_world,
        ["method=dpo", "train.num_checkpoints=2", "eval.evaluators=[gold_reward,kl,preference_accuracy]"],
    )
    with open_dict(cfg):
        cfg.eval.cache_dir = str(tmp_path / "refeval")
    record = TrialRun(cfg, tmp_path / "trial").run()
    assert record["status"] == "completed", record["error"]
    selection = record["selection"]
    assert selection["num_prompts"] == 8 and selection["seed"] == cfg.eval.seed + 1
    assert selection["disjoint"] and selection["pairs_disjoint"] and selection["source"] == "data source"
    assert selection["warning"] is None
    assert selection["evaluators"] == [
        "gold_reward",
        "kl",
    ]  # what chooses the checkpoint, not preference accuracy
    assert len(record["checkpoints"]) == 2
    for entry in [*record["checkpoints"], record["reference"]]:
        sel = entry["selection"]
        assert set(sel["eval_breakdown_s"]) == {"gold_reward", "kl"} and sel["eval_seconds"] > 0
        assert {"gold_reward", "kl"} <= set(sel["metrics"]) and "preference_accuracy" not in sel["metrics"]
        assert "preference_accuracy" in entry["metrics"]  # reported as before
        assert math.isfinite(sel["metrics"]["gold_reward"])
    assert record["reference"]["selection"]["metrics"]["kl"] == 0.0
    assert record["timings"]["selection_eval_s"] > 0
    root = tmp_path / "refeval"
    test_key, sel_key = record["reference"]["cache_key"], record["reference"]["selection"]["cache_key"]
    assert test_key != sel_key
    reported = RefCache(test_key, root / test_key).samples().prompts
    chosen_on = RefCache(sel_key, root / sel_key).samples().prompts
    assert len(set(reported)) == 8 and len(set(chosen_on)) == 8 and not set(reported) & set(chosen_on)
    # The leaderboard of that record chooses on its selection metrics.
    board = leaderboard.build([record])
    chosen = board.trials.iloc[0]
    by_step = {c["step"]: c for c in record["checkpoints"]}
    assert (
        chosen["selection_objective"] == by_step[int(chosen["step"])]["selection"]["metrics"]["gold_reward"]
    )
    assert chosen["gold_reward"] == by_step[int(chosen["step"])]["metrics"]["gold_reward"]
