"""The lm_eval evaluator and the toy world's lm-eval tasks.

The harness's in-memory scores must equal what lm-eval's own command line reports for the same saved
checkpoint, and what ``simple_evaluate`` reports in memory; task data must be what the generator produces;
task names are checked before any compute; the task index, the task objects and their requests are built once
per process.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from harness_plugins.evaluators import lm_eval as eval_lmeval
from harness_plugins.evaluators.lm_eval import tasks as lmeval_tasks

from harness.toyworld.lmeval_tasks import TASKS_DIR, generate
from tests.conftest import run_cli
from tests.helpers import compose

LIMIT = 120  # documents per task in the fast tests


@pytest.fixture
def count_index_builds(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """Start from empty task-manager and task caches and record every task-index build."""
    monkeypatch.setattr(lmeval_tasks, "_MANAGERS", {})
    monkeypatch.setattr(lmeval_tasks, "_PREPARED", {})
    builds: list[tuple] = []
    build = lmeval_tasks._build_task_manager

    def counting(include_path, include_defaults):
        builds.append((tuple(include_path), include_defaults))
        return build(include_path, include_defaults)

    monkeypatch.setattr(lmeval_tasks, "_build_task_manager", counting)
    return builds


@pytest.mark.unit
def test_shipped_task_data_equals_the_generator():
    assert generate.stale_files() == [], (
        "run python -m harness.toyworld.lmeval_tasks.generate and commit data/"
    )
    rows = generate.generate()["toy_grammar.test.jsonl"]
    # The data really test grammar: the true continuation is grammatical after the prefix, the others are not.
    from harness.toyworld.grammar import check

    for row in rows[:50]:
        errors = [check(f"{row['context']} {choice}", start="sentence").errors for choice in row["choices"]]
        assert errors[row["label"]] == 0 and all(e > 0 for i, e in enumerate(errors) if i != row["label"])


@pytest.mark.slow
def test_scores_equal_lm_eval_command_line_on_a_saved_checkpoint(tiny_world, tmp_path, count_index_builds):
    from harness.trial import run_trial

    cfg = compose(
        tiny_world,
        [
            "eval.evaluators=[lm_eval]",
            f"++eval.lm_eval.limit={LIMIT}",
            "method.max_steps=1",
            "train.checkpoint_every=1",
        ],
    )
    record = run_trial(cfg, tmp_path / "trial")
    assert record["status"] == "completed", record["error"]

    key = "lm_eval/toy_grammar/acc"
    reference = record["reference"]["metrics"]
    assert key in reference and "lm_eval/toy_grammar/acc_se" in reference  # step 0 evaluated normally
    # The tiny world's base model already prefers grammatical continuations (chance is 0.25).
    assert reference[key] > 0.25 + 3 * reference["lm_eval/toy_grammar/acc_se"]
    checkpoints = [c for c in record["checkpoints"] if c["metrics"]]
    assert checkpoints and all(key in c["metrics"] for c in checkpoints)
    # One task index for the validation and every evaluation (reference + checkpoints) of the trial.
    assert count_index_builds == [((str(TASKS_DIR),), False)]

    final = checkpoints[-1]
    out = tmp_path / "lm_eval_cli"
    result = run_cli(
        [
            "run",
            "--model",
            "hf",
            "--model_args",
            f"pretrained={final['path']},dtype=float32",
            "--tasks",
            "toy_grammar",
            "--include_path",
            str(TASKS_DIR),
            "--limit",
            str(LIMIT),
            "--batch_size",
            "32",
            "--device",
            "cpu",
            "--output_path",
            str(out),
        ],
        cwd=tmp_path,
        module="lm_eval",
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    [results_file] = list(out.rglob("results_*.json"))
    cli = json.loads(results_file.read_text())["results"]["toy_grammar"]
    assert final["metrics"][key] == pytest.approx(cli["acc,none"], abs=1e-6)
    assert final["metrics"]["lm_eval/toy_grammar/acc_se"] == pytest.approx(cli["acc_stderr,none"], abs=1e-6)


def test_unknown_task_is_one_line_before_any_compute(
    tiny_world, tmp_path, monkeypatch, capsys, count_index_builds
):
    from harness.cli.app import main

    # Index only the shipped tasks even where lm-eval's own would be searched (11 s; the slow test does it).
    build = lmeval_tasks._build_task_manager
    monkeypatch.setattr(lmeval_tasks, "_build_task_manager", lambda paths, defaults: build(paths, False))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main([*tiny_world, "eval.evaluators=[gold_reward,lm_eval]", "++eval.lm_eval.tasks=[toy_grammer]"])
    assert exit_info.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "Unknown lm-eval task 'toy_grammer'" in lines[0] and "Did you mean: toy_grammar" in lines[0]
    assert not (tmp_path / "outputs").exists()


TASK_ON_THE_HUB = """task: hub_task
dataset_path: nobody/not-cached-anywhere
dataset_name: main
output_type: multiple_choice
test_split: test
doc_to_text: "{{q}}"
doc_to_choice: ["a", "b"]
doc_to_target: 0
"""


def test_a_task_whose_dataset_is_not_cached_is_one_line_with_how_to_cache_it(
    tiny_world, tmp_path, monkeypatch, capsys
):
    from harness.cli.app import main

    build = lmeval_tasks._build_task_manager  # the shipped tasks and the user's folder only (see above)
    monkeypatch.setattr(lmeval_tasks, "_build_task_manager", lambda paths, defaults: build(paths, False))
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "hub_task.yaml").write_text(TASK_ON_THE_HUB)
    (tasks / "hub_group.yaml").write_text("group: hub_group\ntask: [hub_task, toy_grammar]\n")
    monkeypatch.chdir(tmp_path)
    for task in ("hub_task", "hub_group"):  # a task, and a group that contains it
        with pytest.raises(SystemExit) as exit_info:
            main(
                [
                    *tiny_world,
                    "eval.evaluators=[lm_eval]",
                    f"++eval.lm_eval.tasks=[{task}]",
                    f"++eval.lm_eval.include_path=[{tasks}]",
                ]
            )
        assert exit_info.value.code == 2
        lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(lines) == 1, lines
        assert (
            "lm-eval task 'hub_task' reads the dataset nobody/not-cached-anywhere/main, "
            "which is not in the local Hugging Face cache"
        ) in lines[0]
        assert "datasets.load_dataset('nobody/not-cached-anywhere', 'main')" in lines[0]
        assert not (tmp_path / "outputs").exists()


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            ["++eval.lm_eval.taks=[toy_grammar]"],
            "Unknown option 'eval.lm_eval.taks'. Did you mean: eval.lm_eval.tasks?",
        ),
        (["++eval.lm_eval.limit=-3"], "eval.lm_eval.limit=-3 is invalid"),
        (["++eval.lm_eval.include_path=[/no/such/folder]"], "/no/such/folder is not a folder"),
    ],
)
def test_bad_lm_eval_options_are_config_errors(tiny_world, overrides, expected):
    from harness.errors import ConfigError

    cfg = compose(tiny_world, ["eval.evaluators=[lm_eval]", *overrides])
    with pytest.raises(ConfigError) as error:
        eval_lmeval.harness_config_validate(cfg)
    assert expected in str(error.value) and "\n" not in str(error.value)


def test_options_are_not_checked_when_the_evaluator_is_not_used(tiny_world, count_index_builds):
    cfg = compose(tiny_world, ["eval.evaluators=[kl]", "++eval.lm_eval.tasks=[no_such_task]"])
    eval_lmeval.harness_config_validate(cfg)
    assert count_index_builds == []


def test_lora_policy_is_scored_with_its_adapter_active(tiny_world, tmp_path):
    import torch

    from harness.evaluation.context import EvalContext
    from harness.evaluation.reference import Reference
    from tests.helpers import train_context

    ctx = train_context(
        tiny_world, tmp_path, ["model=lora", "eval.evaluators=[lm_eval]", "++eval.lm_eval.limit=40"]
    )
    policy = ctx.policy
    if not hasattr(policy, "disable_adapter"):  # the harness may hand peft's config to the trainer instead
        from peft import get_peft_model

        policy = get_peft_model(policy, ctx.peft_config)
    eval_ctx = EvalContext(
        cfg=ctx.cfg,
        step=1,
        policy=policy,
        reference=Reference(),
        tokenizer=ctx.tokenizer,
        prompts=[],
        gold_reward=None,
    )
    base = eval_lmeval.evaluate(eval_ctx)["lm_eval/toy_grammar/acc"]
    torch.manual_seed(0)
    with torch.no_grad():  # an adapter that wrecks the model: its scores must show it
        for name, param in policy.named_parameters():
            if "lora_" in name:
                param.normal_(0, 3.0)
    adapted = eval_lmeval.evaluate(eval_ctx)["lm_eval/toy_grammar/acc"]
    with policy.disable_adapter():
        disabled = eval_lmeval.evaluate(eval_ctx)["lm_eval/toy_grammar/acc"]
    assert disabled == base
    assert adapted < base


def test_task_objects_are_loaded_once_and_score_as_simple_evaluate(
    tiny_world, monkeypatch, count_index_builds
):
    import lm_eval
    import lm_eval.evaluator
    import torch
    from lm_eval.models.huggingface import HFLM
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.config.resources import resolve_model_path
    from harness.plugin.manager import get_plugin_manager

    path = resolve_model_path(get_plugin_manager([]), compose(tiny_world, []))
    model, tokenizer = AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)
    loads = []
    load = lmeval_tasks._load_tasks
    monkeypatch.setattr(
        lmeval_tasks, "_load_tasks", lambda manager, s: loads.append(s.tasks) or load(manager, s)
    )
    for name in ("add_env_info", "get_git_commit_hash"):  # simple_evaluate's run report: pip list, git
        monkeypatch.setattr(lm_eval.evaluator, name, lambda *args: None)
    settings = eval_lmeval.Settings(
        tasks=("toy_grammar", "toy_sentiment"),
        include_path=(str(TASKS_DIR),),
        limit=30,
        batch_size=16,
        num_fewshot=1,
        bootstrap_iters=100,
    )
    torch.manual_seed(0)
    for _ in range(
        3
    ):  # three checkpoints of a trial: one load, the same requests, each checkpoint's own scores
        with torch.no_grad():
            for weight in model.parameters():
                weight.add_(torch.randn_like(weight) * 0.1)
        ours = eval_lmeval.metrics_from_results(eval_lmeval.run_lm_eval(model, tokenizer, settings))
        with eval_lmeval.quiet_lm_eval(False):
            theirs = lm_eval.simple_evaluate(
                model=HFLM(pretrained=model, tokenizer=tokenizer, batch_size=16),
                tasks=list(settings.tasks),
                num_fewshot=1,
                limit=30,
                task_manager=eval_lmeval.manager_for(settings),
                log_samples=False,
                bootstrap_iters=100,
            )
        assert ours == eval_lmeval.metrics_from_results(theirs)
        assert {"lm_eval/toy_grammar/acc", "lm_eval/toy_sentiment/acc_norm"} <= set(ours)
    assert loads == [settings.tasks] and count_index_builds == [((str(TASKS_DIR),), False)]


@pytest.mark.slow
def test_an_uncached_lm_eval_task_is_refused_before_compute(tmp_path):
    result = run_cli(
        ["eval.evaluators=[lm_eval]", "++eval.lm_eval.tasks=[hellaswag]"], cwd=tmp_path, timeout=300
    )
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "lm-eval task 'hellaswag' reads the dataset Rowan/hellaswag" in lines[0], lines


@pytest.mark.slow
def test_unknown_lm_eval_task_suggests_lm_eval_names(tmp_path):
    result = run_cli(
        ["eval.evaluators=[lm_eval]", "++eval.lm_eval.tasks=[hellaswg]"], cwd=tmp_path, timeout=300
    )
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Unknown lm-eval task 'hellaswg'" in lines[0] and "hellaswag" in lines[0], (
        lines
    )


@pytest.mark.slow
def test_default_toy_world_base_model_knows_the_grammar(cache_dir: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.toyworld import build_toy_world

    world = build_toy_world(cache_dir=str(cache_dir / "toyworld"), progress=False)
    model = AutoModelForCausalLM.from_pretrained(world.model_dir)
    tokenizer = AutoTokenizer.from_pretrained(world.model_dir)
    settings = eval_lmeval.Settings(
        tasks=("toy_grammar",),
        include_path=(str(TASKS_DIR),),
        limit=None,
        batch_size=64,
        num_fewshot=None,
        bootstrap_iters=100000,
    )
    scores = eval_lmeval.metrics_from_results(eval_lmeval.run_lm_eval(model, tokenizer, settings))
    acc, se = scores["lm_eval/toy_grammar/acc"], scores["lm_eval/toy_grammar/acc_se"]
    assert acc > 0.25 + 5 * max(se, 0.01), scores  # chance is 0.25
