"""Bad config stops before any compute with one line naming the problem and the choices (exit status 2)."""

from __future__ import annotations

import pytest

from tests.conftest import REPO, run_cli
from tests.helpers import cli_error_line


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["method=dpp"],
            "Unknown method 'dpp'. Did you mean: ppo, dpo? Available: cpo, dpo, grpo, ipo, kto, orpo, ppo, "
            "reward, rloo, sft, simpo.",
        ),
        (["method.bta=0.1"], "Unknown option 'method.bta'. Did you mean: method.beta?"),
        (["method.beta=-0.1"], "method.beta=-0.1 is invalid for method dpo (KL strength; "),
        (["method.beta=-0.1"], "it must lie in (0, inf)."),
        (["method.learning_rate=0"], "method.learning_rate=0 is invalid"),
        (
            ["method.learning_rate=inf"],
            "method.learning_rate=inf is invalid for method dpo: it must be a finite number.",
        ),
        (
            ["method.batch_size=2.5"],
            "method.batch_size=2.5 is invalid for method dpo: it must be an integer.",
        ),
        (
            ["method.trl.max_lenght=64"],
            "Unknown DPOConfig option (method.trl) 'max_lenght'. Did you mean: max_length?",
        ),
        (
            ["method.trl.learning_rate=1e-5"],
            "method.trl.learning_rate sets the same DPOConfig field as "
            "method.learning_rate; set method.learning_rate only.",
        ),
        (
            ["method=simpo", "method.trl.simpo_gamma=1.0"],
            "method.trl.simpo_gamma sets the same CPOConfig field as method.gamma; set method.gamma only.",
        ),
        (["method.trl.output_dir=x"], "method.trl.output_dir is managed by the harness"),
        (["method=ipo", "method.trl.loss_type=sigmoid"], "method ipo trains with loss_type ipo"),
        (
            ["method=simpo", "method.gamma=-1"],
            "method.gamma=-1 is invalid for method simpo (target reward margin",
        ),
        (["method=ppo", "method.kl_penalty=l2"], "method.kl_penalty='l2' is invalid for method ppo"),
        (["method=ppo", "method.grad_accum=2"], "method.grad_accum=2 is not used by PPO"),
        (["method=base"], "Unknown method 'base'."),
        (
            ["leaderboard.objective=gold_rewrd"],
            "Unknown metric for leaderboard.objective 'gold_rewrd'. Did you mean: gold_reward?",
        ),
        (["leaderboard.objective=length"], "leaderboard.objective=length names a descriptive metric"),
        (["eval.extra=[kll]"], "Unknown evaluator 'kll'. Did you mean: kl?"),
        (["eval.reward_model.name_or_path=5"], "eval.reward_model.name_or_path=5 is invalid"),
        (["method.beta=0.1,0.2"], "A sweep (a,b or range/choice) needs multirun: add -m"),
        (
            ["method=dpo", "method=simpo"],
            "method is given twice (method=dpo and method=simpo): Hydra would silently keep the last one",
        ),
        (
            ["-m", "method=dpo,dpo"],
            "method=dpo,dpo lists dpo more than once: the same trial would train again",
        ),
        (["-m", "method=dpo", "seed=1,2,1"], "seed=1,2,1 lists 1 more than once"),
        (["eval.evaluators=[gold_reward,kll]"], "Unknown evaluator 'kll'. Did you mean: kl?"),
        (["model=hf", "model.name_or_path=/does/not/exist"], "is not a model directory"),
        (["model=hf", "model.name_or_path=some-org/not-cached-model"], "is not in the Hugging Face cache"),
        (["data=files", "data.path=/no/such/file.jsonl"], "/no/such/file.jsonl"),
        (["plugins=[no_such_pkg.plugin]"], "Error importing plugin 'no_such_pkg.plugin'"),
        (["train.device=tpu"], "train.device='tpu' is not valid; use auto, cpu, cuda or mps."),
        # core settings, checked against their declarations (harness/config/settings_*.py)
        (["eval.batch_size=true"], "eval.batch_size=True is invalid; it must be a positive integer."),
        (["train.logging_steps=0"], "train.logging_steps=0 is invalid; log every N >= 1 optimizer steps."),
        (["leaderboard.kl_budget=-5"], "leaderboard.kl_budget=-5 is invalid; use a KL budget in nats > 0"),
        (["train.num_threads=-3"], "train.num_threads=-3 is invalid; use a number of threads >= 1, or 0"),
        (["eval.seed=abc"], "eval.seed='abc' is invalid; use an integer"),
        (["model.lora.r=-1"], "model.lora.r=-1 is invalid; use 0 (no LoRA, full fine-tuning)"),
        (["model=base"], "Unknown model 'base'. Available: hf, lora, toy."),
    ],
)
def test_bad_config_is_one_line_before_any_compute(tmp_path, monkeypatch, capsys, args, expected):
    """The command line's own code path, in this process (a fresh process per case would cost seconds of
    imports each; test_a_bad_config_in_a_fresh_process_prints_only_that_line checks a real process)."""
    line = cli_error_line(tmp_path, monkeypatch, capsys, args)
    assert expected in line, line


def test_a_bad_config_in_a_fresh_process_prints_only_that_line(tmp_path):
    result = run_cli(["method=dpp"], cwd=tmp_path, timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [
        "harness: error: Unknown method 'dpp'. Did you mean: ppo, dpo? Available: cpo, dpo, "
        "grpo, ipo, kto, orpo, ppo, reward, rloo, sft, simpo."
    ]
    assert not (tmp_path / "outputs").exists()


def test_every_job_of_a_multirun_is_validated_up_front(tmp_path):
    # The third job is the bad one; no job may start.
    result = run_cli(["-m", "method.beta=0.1,0.2,-1"], cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    assert "method.beta=-1 is invalid" in result.stderr
    assert not (tmp_path / "multirun").exists()


def test_config_can_be_inspected_without_running(tmp_path):
    result = run_cli(["method=simpo", "method.trl.max_length=48", "--cfg", "job"], cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "max_length: 48" in result.stdout and "gamma: 0.8" in result.stdout
