"""Evaluating real models, end to end on the ``real_world`` fixture (a Qwen2-architecture model with a trained
BPE tokenizer and a ChatML template, a one-output reward model, UltraFeedback-style data; tests/realworld.py):
with no gold reward the leaderboard ranks by the reward model and shows its baseline; the same sweep ranks by
an LLM judge, served over an OpenAI-compatible HTTP endpoint on 127.0.0.1 or loaded in the process; a judge
with a pure position bias scores one half; every checkpoint keeps readable samples; bad input stops before
compute."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from harness import leaderboard
from tests.conftest import run_cli
from tests.judge_server import JudgeServer

# Two tiny steps at a learning rate high enough that the policy's samples differ from the reference's.
SHORT = [
    "method.max_steps=2",
    "method.batch_size=4",
    "method.grad_accum=1",
    "method.learning_rate=0.05",
    "train.num_checkpoints=2",
    "eval.num_prompts=6",
    "eval.selection.num_prompts=4",
    "eval.max_new_tokens=8",
    "eval.readable_samples=3",
    "train.num_threads=0",
]


def _setup(real_world) -> list[str]:
    return [
        "model=hf",
        f"model.name_or_path={real_world.qwen2}",
        "data=files",
        f"data.path={real_world.ultrafeedback}",
        "data.split=train_prefs",
        "data.eval_split=test_prefs",
        f"eval.reward_model.name_or_path={real_world.reward_model}",
        "eval.evaluators=[reward_model,kl,preference_accuracy]",
        *SHORT,
    ]


@pytest.fixture
def judge_server():
    server = JudgeServer(rule="longer")
    yield server
    server.close()


def test_a_sweep_ranks_by_the_reward_model_and_by_a_served_judge(real_world, tmp_path, judge_server):
    """``python -m harness -m method=dpo,simpo`` on the fixture with a reward model and the HTTP judge: the
    report opens with rm_score and its baseline ± SE; rebuilt with the judge as objective, it ranks by
    judge_wr."""
    judge = [
        "eval.extra=[judge]",
        "eval.judge.backend=openai",
        f"eval.judge.base_url={judge_server.base_url}",
        "eval.judge.model=judge-model",
    ]
    result = run_cli(
        ["-m", "method=dpo,simpo", "sweep_name=real", *_setup(real_world), *judge],
        cwd=tmp_path,
        env={"HARNESS_CACHE_DIR": str(tmp_path / "cache")},
        timeout=400,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert judge_server.posts, "the judge was never asked"
    out = tmp_path / "leaderboards" / "real"
    md = (out / "leaderboard.md").read_text()
    first = [line for line in md.splitlines() if line.strip()][1:3]
    assert first[0].startswith("**Objective: `rm_score`**"), first
    assert first[1].startswith("**Reference (untrained) model: ") and "±" in first[1], first
    table = pd.read_csv(out / "leaderboard.csv")
    assert set(table["method"]) == {"dpo", "simpo"} and list(table["rank"]) == [1, 2]
    assert table["rm_score"].is_monotonic_decreasing and table["base_rm_score"].notna().all()
    assert {"rm_se", "judge_wr", "judge_wr_se", "judge_unparsed"} <= set(table.columns)
    assert "Objective: rm_score (higher is better, auto); reference model" in result.stdout

    by_judge = leaderboard.write_leaderboard(
        [tmp_path / "multirun" / "real"], tmp_path / "by-judge", objective="judge_win_rate"
    )
    assert by_judge.objective_name == "judge_wr" and not by_judge.objective_auto
    assert by_judge.trials["judge_wr"].is_monotonic_decreasing
    assert by_judge.baseline() == (0.5, 0.0)  # the reference against itself
    judged_md = (tmp_path / "by-judge" / "leaderboard.md").read_text()
    assert "**Objective: `judge_wr`**" in judged_md and "**Reference (untrained) model: 0.5 ± 0" in judged_md

    # Readable samples: in every checkpoint of the records, in samples.csv and in the HTML's Samples section.
    records = [
        json.loads(p.read_text()) for p in sorted((tmp_path / "multirun" / "real").glob("*/trial.json"))
    ]
    for record in records:
        for checkpoint in record["checkpoints"]:
            assert len(checkpoint["samples"]) == 3
            sample = checkpoint["samples"][0]
            assert (
                "How do I" in sample["prompt"]
                and "<|im_start|>" not in sample["prompt"]
                and sample["reference"]
                and "policy" in sample
            )
            assert {"reward_model_score", "judge"} <= set(sample["scores"])
    samples = pd.read_csv(out / "samples.csv")
    assert len(samples) == 3 * sum(len(r["checkpoints"]) for r in records)
    assert pd.read_csv(out / "checkpoints.csv")["samples"].eq("samples.csv").all()
    page = (out / "leaderboard.html").read_text()
    assert 'id="samples"' in page and records[0]["checkpoints"][-1]["samples"][0]["prompt"] in page


def _trial(real_world, trial_dir: Path, method: str, extra: list[str]) -> dict:
    from harness.config.compose import compose_job
    from harness.trial.runner import TrialRun

    cfg = compose_job([f"method={method}", *_setup(real_world), *extra], {})
    record = TrialRun(cfg, trial_dir).run()
    assert record["status"] == "completed", (record.get("error") or {}).get("traceback", "")[-3000:]
    return record


def test_the_same_methods_rank_by_a_local_judge_model(real_world, tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    # The tiny random model puts next to no probability on the labels: the default min_label_prob (0.5) would
    # make every verdict unusable (tests/test_judge.py checks that); 0 reads its labels, as this test needs.
    judge = [
        "eval.extra=[judge]",
        "eval.judge.backend=local",
        f"eval.judge.model={real_world.qwen2}",
        "eval.judge.min_label_prob=0",
    ]
    for job, method in enumerate(("dpo", "simpo")):
        _trial(real_world, tmp_path / "sweep" / str(job), method, judge)
    board = leaderboard.write_leaderboard([tmp_path / "sweep"], tmp_path / "out", objective="judge_wr")
    assert board.objective_name == "judge_wr" and len(board.completed) == 2
    assert board.trials["judge_wr"].between(0, 1).all() and board.trials["judge_wr"].is_monotonic_decreasing
    assert (tmp_path / "cache" / "judge").is_dir()  # verdicts cached by (prompt, completions, judge)


def test_a_judge_that_always_prefers_the_first_answer_scores_one_half(real_world, tmp_path, monkeypatch):
    server = JudgeServer(rule="first")
    try:
        monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
        record = _trial(
            real_world,
            tmp_path / "trial",
            "dpo",
            ["eval.extra=[judge]", f"eval.judge.base_url={server.base_url}", "eval.judge.model=judge-model"],
        )
    finally:
        server.close()
    assert server.posts
    for checkpoint in record["checkpoints"]:
        assert (
            checkpoint["metrics"]["judge_win_rate"] == 0.5
        )  # each pair won in one order and lost in the other
        assert checkpoint["metrics"]["judge_unparsed"] == 0


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            ["leaderboard.objective=judge_wr"],
            "leaderboard.objective=judge_wr is a metric of evaluator judge, which this "
            "trial does not run; add it with eval.extra=[judge]",
        ),
        (
            ["leaderboard.objective=rm_scor"],
            "Unknown metric for leaderboard.objective 'rm_scor'. Did you mean: rm_score",
        ),
        (
            ["eval.extra=[judge]", "eval.judge.model=m", "eval.judge.base_url=http://127.0.0.1:{port}/v1"],
            "eval.judge.base_url=http://127.0.0.1:{port}/v1",
        ),
    ],
)
def test_bad_input_is_one_line_before_compute(real_world, tmp_path, monkeypatch, capsys, extra, expected):
    from harness.cli.app import main
    from tests.judge_server import closed_port

    port = closed_port()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main(["method=dpo", *_setup(real_world), *[e.format(port=port) for e in extra]])
    assert exited.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and expected.format(port=port) in lines[0], lines
    assert not (tmp_path / "outputs").exists()
