"""``python -m harness.export SWEEP --verdict``: the verdict's recommended method leaves as a model that plain
transformers loads, with a model card (Hugging Face front matter and the evidence) and verdict.json; bad input
is one line and exit status 2, before any weights are written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tests.conftest import run_cli
from tests.helpers import FAST, make_record


def front_matter(text: str) -> dict:
    """The YAML between the card's opening ``---`` lines."""
    assert text.startswith("---\n"), text[:80]
    return yaml.safe_load(text.split("---\n", 2)[1])


def error_line(capsys, argv: list[str]) -> str:
    from harness.export import main

    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("harness.export: error: "), err
    return err


@pytest.fixture(scope="module")
def lora_sweep(tiny_world, tmp_path_factory) -> Path:
    """A LoRA sweep on the tiny toy world: dpo and simpo, two seeds each, weights saved."""
    root = tmp_path_factory.mktemp("verdict-sweep")
    args = ["-m", "method=dpo,simpo", "seed=0,1", "model=lora", *tiny_world, *FAST, "sweep_name=race"]
    result = run_cli([*args, "leaderboard.print=false"], cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    return root / "multirun" / "race"


def test_the_verdict_exports_a_merged_model_with_its_card_and_verdict(lora_sweep, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.export import main
    from harness.leaderboard.analysis.verdict import decide
    from harness.leaderboard.board import load_leaderboard

    verdict = decide(load_leaderboard([lora_sweep]))
    out = tmp_path / "winner"
    assert main([str(lora_sweep), "--verdict", "--out", str(out)]) == 0
    model = AutoModelForCausalLM.from_pretrained(out)
    assert not any("lora" in name for name, _ in model.named_parameters())  # merged by default
    assert AutoTokenizer.from_pretrained(out)("the cat")["input_ids"]  # with its tokenizer
    card = (out / "README.md").read_text()
    meta = front_matter(card)
    method = verdict.recommended.method
    assert meta["base_model"] == "toyworld" and meta["datasets"] == ["toyworld"]
    assert meta["tags"] == ["harness", method, "preference-alignment"]
    assert meta["library_name"] == "transformers" and meta["pipeline_tag"] == "text-generation"
    metric = meta["model-index"][0]["results"][0]["metrics"][0]
    assert metric["type"] == "gold_reward" and metric["value"] == pytest.approx(verdict.recommended.test_mean)
    body = card.split("---\n", 2)[2]
    opening = "\n".join(body.strip().splitlines()[:4])
    assert f"# {method}:" in opening and f"({verdict.state})" in opening
    assert f"Verdict: {verdict.state}." in opening
    saved = json.loads((out / "verdict.json").read_text())
    assert saved["state"] == verdict.state and saved["recommended"]["method"] == method
    # the trial exported is the recommended setting's seed with the best selection value, never a test value
    board = load_leaderboard([lora_sweep])
    seeds = board.trials[board.trials["trial_id"].isin(verdict.recommended.trials)]
    best = seeds.loc[seeds["selection_objective"].idxmax(), "trial_id"]
    assert f"This is trial `{best}`" in card and "python -m harness method=" in card
    assert "python -m harness -m method=dpo,simpo seed=0,1" in card  # the sweep's command, from multirun.yaml
    assert "| transformers |" in card  # library versions from the record


def test_one_seed_per_method_still_exports_and_the_card_says_it_cannot_rank_methods(lora_sweep, tmp_path):
    from harness.export import main

    first_seeds = [
        str(path.parent)
        for path in sorted(lora_sweep.glob("*/trial.json"))
        if json.loads(path.read_text())["hyperparameters"]["seed"] == 0
    ]
    assert len(first_seeds) == 2
    out = tmp_path / "one-seed"
    assert main([*first_seeds, "--verdict", "--adapter", "--out", str(out)]) == 0
    card = (out / "README.md").read_text()
    opening = card.split("---\n", 2)[2].strip().splitlines()
    assert "(one seed)" in opening[0] and "This ranks trials, not methods" in opening[2]
    assert front_matter(card)["library_name"] == "peft" and (out / "adapter_config.json").is_file()
    assert json.loads((out / "verdict.json").read_text())["state"] == "one seed"


def test_require_decided_refuses_a_verdict_that_is_not_decided(lora_sweep, tmp_path, capsys):
    from harness.export import main
    from harness.leaderboard.analysis.verdict import decide
    from harness.leaderboard.board import load_leaderboard

    state = decide(load_leaderboard([lora_sweep])).state
    argv = [str(lora_sweep), "--verdict", "--require-decided", "--out", str(tmp_path / "x")]
    if state == "decided":
        assert main(argv) == 0
    else:
        err = error_line(capsys, argv)
        assert f"the verdict is '{state}', not decided" in err and "without --require-decided" in err
        assert not (tmp_path / "x").exists()


def test_a_recommended_trial_without_saved_weights_says_to_save_them(lora_sweep, tmp_path, capsys):
    unsaved = tmp_path / "unsaved"
    shutil.copytree(lora_sweep, unsaved, ignore=shutil.ignore_patterns("checkpoints"))
    for record_file in unsaved.glob("*/trial.json"):
        record = json.loads(record_file.read_text())
        for entry in record["checkpoints"]:
            entry["path"] = None
        record_file.write_text(json.dumps(record))
    err = error_line(capsys, [str(unsaved), "--verdict", "--out", str(tmp_path / "x")])
    assert "has no saved checkpoint to export" in err and "train.save_checkpoints=true" in err
    assert not (tmp_path / "x").exists()


def _failed_sweep(root: Path) -> Path:
    """Four trials that failed: two with an error, two whose loss became NaN (diverged)."""
    from harness.records import write_record

    reasons = ["CUDA out of memory", "boom", "training loss became nan at step 3", "loss is inf at step 2"]
    for job, reason in enumerate(reasons):
        method = "dpo" if job % 2 == 0 else "simpo"
        write_record(
            root / str(job) / "trial.json",
            make_record(
                trial_id=f"bad/{job}",
                method=method,
                status="failed",
                error={"message": reason},
                hyperparameters={"seed": job // 2},
            ),
        )
    return root


@pytest.mark.unit
def test_bad_input_is_one_line_before_anything_is_written(tmp_path, capsys):
    failed = _failed_sweep(tmp_path / "bad")
    (tmp_path / "empty").mkdir()
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    out = str(tmp_path / "x")
    cases = [
        ([str(failed), "--verdict", "--out", out], "no completed trial that did not diverge"),
        ([str(tmp_path / "empty"), "--verdict", "--out", out], "holds no trial record"),
        ([str(failed), "--verdict", "--out", str(tmp_path / "taken")], "already exists and is not empty"),
        (
            [str(failed), "--verdict", "--margin", "1.5", "--out", out],
            "--margin=1.5 is not a share in (0, 1)",
        ),
        ([str(failed), "--require-decided", "--out", out], "apply with --verdict"),
        ([str(failed), str(failed), "--out", out], "2 paths given"),
        ([str(tmp_path / "nothing"), "--verdict", "--out", out], "no such file or directory"),
    ]
    for argv, expected in cases:
        assert expected in error_line(capsys, argv)
    first = error_line(capsys, cases[0][0])
    assert "nothing to recommend" in first and "python -m harness.leaderboard" in first
    assert not (tmp_path / "x").exists()


@pytest.mark.unit
def test_require_decided_names_the_command_that_would_settle_it():
    from harness.errors import UserError
    from harness.export.winner import refuse_undecided
    from harness.leaderboard.analysis.verdict import MethodVerdict, Verdict

    rec = MethodVerdict("dpo", "(one setting)", [], 1, 0, 0.5, "selection prompts", 0.4, 0.3, 0.5)
    verdict = Verdict("one seed", "gold_reward", recommended=rec, commands=["python -m harness -m seed=1,2"])
    with pytest.raises(
        UserError, match=r"'one seed', not decided \(dpo leads.*python -m harness -m seed=1,2"
    ):
        refuse_undecided(verdict)


@pytest.mark.slow
def test_a_qwen2_lora_sweeps_verdict_exports_a_model_transformers_loads(real_world, tmp_path):
    """A 2-method x 2-seed LoRA sweep on the real-architecture fixture (Qwen2, UltraFeedback-format data,
    ranked by the reward model): the verdict's winner loads with AutoModelForCausalLM, merged, and its card
    names the verdict, the Qwen2 base model and the data."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.export import main
    from tests.test_real_evaluation import _setup

    args = ["-m", "method=dpo,simpo", "seed=0,1", "model.lora.r=8", "sweep_name=real", *_setup(real_world)]
    env = {"HARNESS_CACHE_DIR": str(tmp_path / "cache")}
    result = run_cli([*args, "leaderboard.print=false"], cwd=tmp_path, env=env, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "winner"
    assert main([str(tmp_path / "multirun" / "real"), "--verdict", "--out", str(out)]) == 0
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.config.model_type == "qwen2" and not any("lora" in n for n, _ in model.named_parameters())
    assert AutoTokenizer.from_pretrained(out).chat_template
    card = (out / "README.md").read_text()
    meta = front_matter(card)
    verdict = json.loads((out / "verdict.json").read_text())
    assert meta["base_model"] == str(real_world.qwen2) and meta["datasets"] == [str(real_world.ultrafeedback)]
    assert meta["model-index"][0]["results"][0]["metrics"][0]["type"] == "rm_score"
    assert f"Verdict: {verdict['state']}." in card and verdict["recommended"]["method"] in meta["tags"]
