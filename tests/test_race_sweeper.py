"""The racing study end to end through the command line (``hydra/sweeper=race``): a race on the tiny toy world
runs to the end (progress lines, ``race.json``, the rounds' seeds in the records, the report opening with its
verdict), resumes from its study (the same command trains nothing; more seeds continue it), stops on bad input
with one line before any trial; on the real-architecture fixture (Qwen2, UltraFeedback-format data, a reward
model) it ends with a winner that ``harness.export --verdict`` writes and plain transformers loads."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest

from harness.sweep import study as st
from harness.sweep.trials import counted_trials
from tests.conftest import run_cli
from tests.helpers import cli_error_line
from tests.test_optuna_sweep import replaced

optuna.logging.set_verbosity(optuna.logging.WARNING)

#: Three candidates (two DPO learning rates, one ORPO setting): the search round drops one DPO setting.
FIELD = [
    "hydra/sweeper=race",
    "method=dpo,orpo",
    "hydra.sweeper.use_suggested=false",
    "dpo.learning_rate=0.0003,0.0009",
    "orpo.learning_rate=choice(0.002)",
]
QUICK = [
    "method.max_steps=4",
    "train.num_checkpoints=1",
    "method.batch_size=4",
    "eval.num_prompts=8",
    "eval.max_new_tokens=12",
    "eval.evaluators=[gold_reward,kl]",
    "train.save_checkpoints=false",
    "train.num_threads=0",
    "leaderboard.print=false",
]
ROUNDS = ["hydra.sweeper.seeds=[2,1]", "hydra.sweeper.first_test=3"]
DROPPED = "dpo learning_rate=0.0003"
SURVIVORS = {"dpo learning_rate=0.0009", "orpo learning_rate=0.002"}


def race_args(tiny_world, *extra: str) -> list[str]:
    return ["-m", *FIELD, *tiny_world, *replaced(QUICK, "sweep_name=race", *extra)]


def records(sweep_dir: Path) -> dict[int, dict]:
    return {int(p.parent.name): json.loads(p.read_text()) for p in sweep_dir.glob("*/trial.json")}


def candidate(record: dict) -> str:
    """A trial record's candidate name, as the race names it."""
    method = record["method"]
    return f"{method} learning_rate={record['hyperparameters']['learning_rate']:.3g}"


def seeds_by_candidate(sweep_dir: Path) -> dict[str, list[int]]:
    """Each candidate's training seeds, in the order its trials ran."""
    out: dict[str, list[int]] = {}
    for _, record in sorted(records(sweep_dir).items()):
        out.setdefault(candidate(record), []).append(int(record["hyperparameters"]["seed"]))
    return out


def study_trials(sweep_dir: Path) -> list:
    settings = st.StudySettings.load(sweep_dir / st.SETTINGS_NAME)
    study = optuna.load_study(study_name=settings.study_name, storage=st.open_storage(settings.storage))
    return counted_trials(study)


def race_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith(("Race: ", "  dropped "))]


def final_state(stdout: str) -> list[str]:
    """The race's last progress line and the dropped lines under it."""
    lines = race_lines(stdout)
    last = max(i for i, line in enumerate(lines) if line.startswith("Race: "))
    return lines[last:]


@pytest.fixture(scope="module")
def race(tiny_world, tmp_path_factory) -> tuple[Path, str]:
    """A race run to the end on the tiny toy world with seeds [2, 1] (in that order): the search round (3
    trials), one more round for the two survivors (2 trials); the first test is due at the third seed
    (hydra.sweeper.first_test=3), so the seeds run out first. Returns the working directory and the stdout."""
    root = tmp_path_factory.mktemp("race")
    result = run_cli(race_args(tiny_world, *ROUNDS), cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    return root, result.stdout


@pytest.mark.slow  # five toy trials, about 40 s here
def test_a_race_runs_to_the_end_and_its_report_opens_with_the_verdict(race):
    root, stdout = race
    sweep_dir = root / "multirun" / "race"
    assert "3 candidates, seeds [2, 1]" in stdout
    for name in [DROPPED, *SURVIVORS]:
        assert f"  candidate {name}" in stdout
    lines = race_lines(stdout)
    assert lines[0] == f"Race: alive 3: {DROPPED}, dpo learning_rate=0.0009, orpo learning_rate=0.002"
    assert f"  dropped {DROPPED}: search: behind dpo learning_rate=0.0009 of dpo on the selection" in stdout
    assert "seed 2)" in next(line for line in lines if line.startswith(f"  dropped {DROPPED}"))
    last = final_state(stdout)
    assert last[0].startswith("Race: alive 2: ") and last[0].endswith("; stopped: seeds exhausted")
    assert len(last) == 2 and last[1].startswith(f"  dropped {DROPPED}: search: ")

    state = json.loads((sweep_dir / "race.json").read_text())
    assert set(state) >= {"stopped", "leader", "alive", "dropped"}
    assert set(state["alive"]) == SURVIVORS and set(state["dropped"]) == {DROPPED}
    assert state["leader"] in SURVIVORS and state["stopped"] == "seeds exhausted"
    assert state["dropped"][DROPPED].startswith("search: behind dpo learning_rate=0.0009")
    assert f"leader {state['leader']}; stopped" in last[0]

    # The rounds use hydra.sweeper.seeds in order; the search round's loser has its one seed, every survivor
    # the same seeds (no partial round).
    seeds = seeds_by_candidate(sweep_dir)
    assert seeds[DROPPED] == [2]
    assert {name: seeds[name] for name in SURVIVORS} == {name: [2, 1] for name in SURVIVORS}
    assert all(r["status"] == "completed" for r in records(sweep_dir).values())
    assert len(study_trials(sweep_dir)) == 5

    board = root / "leaderboards" / "race"
    md = (board / "leaderboard.md").read_text()
    sections = [line for line in md.splitlines() if line.startswith("## ")]
    assert sections[0] == "## Verdict"
    verdict = json.loads((board / "verdict.json").read_text())
    assert verdict["state"] in ("decided", "tied", "undecided") and verdict["recommended"]["method"] in (
        "dpo",
        "orpo",
    )


@pytest.mark.slow  # the race's fixture, a rerun and two more trials, about 70 s here
def test_a_race_resumes_from_its_study_and_more_seeds_continue_it(race, tiny_world):
    root, first = race
    sweep_dir = root / "multirun" / "race"
    before = sorted(p.name for p in sweep_dir.iterdir() if p.is_dir())

    again = run_cli(race_args(tiny_world, *ROUNDS), cwd=root)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Optuna trial" not in again.stdout  # nothing trained
    assert sorted(p.name for p in sweep_dir.iterdir() if p.is_dir()) == before
    assert race_lines(again.stdout) == final_state(first)  # the same final state, said once

    more = run_cli(
        race_args(tiny_world, "hydra.sweeper.seeds=[2,1,3]", "hydra.sweeper.first_test=3"), cwd=root
    )
    assert more.returncode == 0, more.stderr[-3000:]
    assert more.stdout.count("Optuna trial ") == 2  # one more round, for the two survivors only
    seeds = seeds_by_candidate(sweep_dir)
    assert seeds[DROPPED] == [2]
    assert {name: seeds[name] for name in SURVIVORS} == {name: [2, 1, 3] for name in SURVIVORS}
    assert len(study_trials(sweep_dir)) == 7 and len(records(sweep_dir)) == 7
    state = json.loads((sweep_dir / "race.json").read_text())
    assert state["seeds"] == [2, 1, 3] and set(state["dropped"]) >= {DROPPED}


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            ["method.max_steps=8", "hydra.sweeper.budget_steps=10"],
            "harness: error: hydra.sweeper.budget_steps=10 cannot pay for the race's search round: "
            "3 candidates (2 methods) x 8 steps = 24; give hydra.sweeper.budget_steps>=24",
        ),
        (
            ["hydra.sweeper.margin=1.5"],
            "harness: error: hydra.sweeper.margin=1.5 is invalid; give a share in (0, 1) of the leader's",
        ),
        (
            ["hydra.sweeper.seeds=[1,1]"],
            "harness: error: hydra.sweeper.seeds=[1, 1] is invalid; give a list of distinct integer seeds",
        ),
        (
            ["hydra.sweeper.objectives=[auto,kl]"],
            "harness: error: A race compares candidates on one objective; give one: "
            "hydra.sweeper.objectives=[auto].",
        ),
    ],
)
def test_bad_race_input_stops_with_one_line_before_any_trial(
    tiny_world, tmp_path, monkeypatch, capsys, extra, expected
):
    args = ["-m", *FIELD, *tiny_world, *replaced(QUICK, "sweep_name=bad", *extra)]
    line = cli_error_line(tmp_path, monkeypatch, capsys, args)
    assert line.startswith(expected), line
    assert not (tmp_path / "multirun" / "bad").exists()  # no trial, no study, no sweep directory


@pytest.mark.slow  # four Qwen2 LoRA trials and an export, minutes on a CPU
def test_a_qwen2_race_ends_with_a_winner_that_exports_and_loads(real_world, tmp_path):
    """A race of DPO against ORPO (one setting each, LoRA, seeds [1, 2]) on the real-architecture fixture,
    ranked by the reward model, runs to the end; ``harness.export --verdict`` writes its winner, merged, which
    AutoModelForCausalLM loads as Qwen2, with a card naming the verdict and the recommended method."""
    from transformers import AutoModelForCausalLM

    from tests.test_export_verdict import front_matter
    from tests.test_real_evaluation import _setup

    args = [
        "-m",
        "hydra/sweeper=race",
        "method=dpo,orpo",
        "hydra.sweeper.use_suggested=false",
        "hydra.sweeper.seeds=[1,2]",
        "model.lora.r=8",
        "train.save_checkpoints=true",
        "leaderboard.print=false",
        "sweep_name=real-race",
        *_setup(real_world),
    ]
    env = {"HARNESS_CACHE_DIR": str(tmp_path / "cache")}
    result = run_cli(args, cwd=tmp_path, env=env, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    sweep_dir = tmp_path / "multirun" / "real-race"
    state = json.loads((sweep_dir / "race.json").read_text())
    assert state["stopped"] and state["leader"] in ("dpo", "orpo")
    assert "Race: alive 2: dpo, orpo" in result.stdout
    md = (tmp_path / "leaderboards" / "real-race" / "leaderboard.md").read_text()
    assert [line for line in md.splitlines() if line.startswith("## ")][0] == "## Verdict"

    out = tmp_path / "winner"
    exported = run_cli(
        [str(sweep_dir), "--verdict", "--out", str(out)], cwd=tmp_path, module="harness.export"
    )
    assert exported.returncode == 0, exported.stderr[-3000:]
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.config.model_type == "qwen2" and not any("lora" in n for n, _ in model.named_parameters())
    card = (out / "README.md").read_text()
    verdict = json.loads((out / "verdict.json").read_text())
    method = verdict["recommended"]["method"]
    assert method in ("dpo", "orpo") and method in front_matter(card)["tags"]
    assert f"Verdict: {verdict['state']}." in card and f"# {method}:" in card
    assert "hydra/sweeper=race" in card  # the command that reproduces the race
