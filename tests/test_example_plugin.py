"""The example third-party plugin package ``examples/harness-dpop``: methods ``dpop`` and ``rdpo``, evaluator
``repetition``.

Unit tests import the package from its source folder: the DPOP and R-DPO losses against DPO's and
hand-computed values, the repetition metric on hand-made token lists, the declarations and the shipped YAML,
the imports. On the tiny toy world, :func:`harness.plugin.check_pairwise_loss` checks R-DPO's trainer against
a plain forward pass and a hand-written formula, and catches a wrong one. End-to-end tests install the package
into a fresh site directory (once per module, as a user would with pip) and run the command line on the tiny
toy world: methods side by side, R-DPO trained on the pairwise-loss extension point, an Optuna sweep on its
metric, and misspelt metric names stopped before any compute.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from omegaconf import OmegaConf

from tests.conftest import REPO, run_cli
from tests.helpers import FAST, train_context

EXAMPLE = REPO / "examples" / "harness-dpop"
PACKAGE = EXAMPLE / "harness_dpop"
YAML = PACKAGE / "conf" / "method" / "dpop.yaml"


@pytest.fixture
def dpop(monkeypatch: pytest.MonkeyPatch):
    """The example package, imported from its source folder."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    import harness_dpop
    import harness_dpop.loss
    import harness_dpop.method
    import harness_dpop.rdpo
    import harness_dpop.repetition

    return harness_dpop


# ---------------------------------------------------------------------------------------------------
# Unit tests: no model, no training.
# ---------------------------------------------------------------------------------------------------


def _logps(seed: int, n: int = 8) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [-torch.rand(n, generator=g, dtype=torch.float64) * 20 for _ in range(4)]


@pytest.mark.unit
def test_dpop_loss_is_dpo_loss_without_lambda_or_while_the_chosen_gains(dpop):
    from harness_plugins.methods.dpo import dpo_loss

    loss = dpop.loss.dpop_loss
    chosen, rejected, ref_chosen, ref_rejected = _logps(0)
    dpo = dpo_loss(chosen, rejected, ref_chosen, ref_rejected, beta=0.3)
    assert torch.allclose(loss(chosen, rejected, ref_chosen, ref_rejected, beta=0.3, lam=0.0), dpo)
    assert not torch.allclose(loss(chosen, rejected, ref_chosen, ref_rejected, beta=0.3, lam=5.0), dpo)
    # The policy's chosen log-prob at or above the reference's: no penalty, whatever λ.
    above = ref_chosen + torch.rand(8, dtype=torch.float64) * torch.tensor(
        [0, 1] * 4
    )  # two rows exactly equal
    for lam in (0.5, 5.0, 50.0):
        assert torch.allclose(
            loss(above, rejected, ref_chosen, ref_rejected, beta=0.3, lam=lam),
            dpo_loss(above, rejected, ref_chosen, ref_rejected, beta=0.3),
        )


@pytest.mark.unit
def test_dpop_loss_with_an_active_penalty_matches_a_hand_computed_value(dpop):
    # Row 1: Δw = -10 - (-8) = -2, Δl = -12 - (-9) = -3, penalty max(0, -8 - (-10)) = 2:
    #   β·(Δw - Δl - λ·penalty) = 0.5·(-2 + 3 - 2·2) = -1.5, loss = -log σ(-1.5) = log(1 + e^1.5).
    # Row 2: Δw = +1 (no penalty), Δl = -1: 0.5·2 = 1, loss = log(1 + e^-1).
    policy_chosen = torch.tensor([-10.0, -4.0], requires_grad=True)
    args = (
        policy_chosen,
        torch.tensor([-12.0, -6.0]),
        torch.tensor([-8.0, -5.0]),
        torch.tensor([-9.0, -5.0]),
    )
    loss = dpop.loss.dpop_loss(*args, beta=0.5, lam=2.0)
    expected = (math.log1p(math.exp(1.5)) + math.log1p(math.exp(-1.0))) / 2
    assert loss.shape == () and loss.item() == pytest.approx(expected, rel=1e-6)
    # The penalty pushes the chosen log-prob up harder than DPO does, only where it is active.
    loss.backward()
    dpop_grad = policy_chosen.grad.clone()
    policy_chosen.grad = None
    dpop.loss.dpop_loss(*args, beta=0.5, lam=0.0).backward()
    assert dpop_grad[0] < policy_chosen.grad[0] < 0
    assert dpop_grad[1] == pytest.approx(float(torch.sigmoid(torch.tensor(-1.0))) * -0.5 / 2)


@pytest.mark.unit
def test_repeated_fraction_on_hand_made_token_lists(dpop):
    frac = dpop.repetition.repeated_fraction
    assert frac([1, 2, 1, 2, 1], 2) == pytest.approx(2 / 4)  # bigrams 12 21 12 21: the last two repeat
    assert frac([1, 2, 1, 2, 1], 1) == pytest.approx(3 / 5)
    assert frac([1, 2, 1, 2, 1], 3) == pytest.approx(1 / 3)  # 121 212 121
    assert frac([5, 5, 5, 5], 2) == pytest.approx(2 / 3)
    assert frac([1, 2, 3, 4], 2) == 0.0
    assert frac([7], 2) == 0.0 and frac([], 1) == 0.0  # no n-gram: nothing repeats


@pytest.mark.unit
def test_repetition_evaluator_reads_its_option_and_drops_the_trailing_eos(dpop):
    eos = 0
    completions = [[1, 2, 1, 2, 1, eos], [3, 4, eos], [9, 9]]  # the last one hit the token limit (no EOS)

    def evaluate(n: int) -> dict[str, float]:
        ctx = SimpleNamespace(
            options=OmegaConf.create({"n": n}),
            tokenizer=SimpleNamespace(eos_token_id=eos),
            policy_samples=SimpleNamespace(completion_token_ids=lambda: completions),
        )
        return dpop.repetition.evaluate(ctx)

    per_completion = {1: [3 / 5, 0.0, 1 / 2], 2: [2 / 4, 0.0, 0.0], 3: [1 / 3, 0.0, 0.0]}
    for n, values in per_completion.items():
        result = evaluate(n)
        assert set(result) == {"rep_ngram", "rep_ngram_se"}
        assert result["rep_ngram"] == pytest.approx(sum(values) / 3)
        assert result["rep_ngram_se"] == pytest.approx(torch.tensor(values).std().item() / math.sqrt(3))


@pytest.mark.unit
def test_declarations_and_the_shipped_yaml_agree(dpop):
    from harness.config.store import check_method_yaml, method_node
    from harness.plugin import Hyperparameter, Metric, Option

    method = dpop.method.method_spec()
    assert method.name == "dpop" and method.needs_reference and method.data_kind == "pairwise"
    assert {h.name: (h.default, h.bounds, h.field) for h in method.hyperparameters} == {
        "beta": (0.1, "(0, inf)", None),
        "lam": (5.0, "[0, inf)", None),
    }
    assert all(isinstance(h, Hyperparameter) and h.help for h in method.hyperparameters)
    assert method.hyperparameter("lam").problem(-1.0) and method.hyperparameter("beta").problem(0.0)
    assert method.count_models(OmegaConf.create({"model": {"lora": None}})) == 2
    assert (
        method.count_models(OmegaConf.create({"model": {"lora": {"r": 8}}})) == 1
    )  # adapter-disabled reference

    evaluator = dpop.repetition.evaluator_spec()
    rep = evaluator.metric("rep_ngram")
    assert isinstance(rep, Metric) and (rep.direction, rep.headline, rep.se) == (
        "minimize",
        True,
        "rep_ngram_se",
    )
    assert evaluator.metric("rep_ngram_se") is not None and evaluator.metric("rep_ngram_se").direction is None
    (n,) = evaluator.options
    assert isinstance(n, Option) and (n.name, n.default, n.bounds) == ("n", 2, "[1, inf)")
    assert n.problem(0) and n.problem(1.5) and n.problem(3) is None

    # The YAML extends base and repeats exactly the spec's defaults: every key, every value.
    text = YAML.read_text(encoding="utf-8")
    check_method_yaml(method, "examples/harness-dpop", text)
    loaded = OmegaConf.to_container(OmegaConf.create(text))
    assert loaded.pop("defaults") == ["base", "_self_"]
    assert loaded == method_node(method)
    assert dpop.harness_config_searchpath() == ["pkg://harness_dpop.conf"]


@pytest.mark.unit
def test_training_steps_follow_the_common_knobs(dpop):
    steps = dpop.method.training_steps
    assert steps(64, 16, 1, 3, -1) == 12
    assert steps(64, 16, 2, 3, -1) == 6  # grad_accum: fewer optimizer steps per epoch
    assert steps(64, 16, 1, 0.5, -1) == 2 and steps(10, 16, 1, 1, -1) == 1
    assert steps(64, 16, 1, 3, 4) == 4  # max_steps wins


def _batch(*values: list[float]) -> Any:
    """A PairwiseBatch from lists: policy chosen/rejected,
    reference chosen/rejected log-probs, then lengths."""
    from harness.plugin import PairwiseBatch

    logps = [torch.tensor(v, dtype=torch.float64) for v in values[:4]]
    return PairwiseBatch(*logps, *(torch.tensor(v) for v in values[4:]))


@pytest.mark.unit
def test_rdpo_loss_matches_a_hand_computed_value_and_is_dpo_without_alpha(dpop):
    from harness_plugins.methods.dpo import dpo_loss

    # Pair 1: Δc = -10 - (-8) = -2, Δr = -12 - (-9) = -3, lengths 7 and 4:
    #   z = 0.5·(-2 + 3) + 0.1·(7 - 4) = 0.8, loss = -log σ(0.8) = log(1 + e^-0.8).
    # Pair 2: Δc = +1, Δr = -1, lengths 3 and 6: z = 0.5·2 + 0.1·(-3) = 0.7, loss = log(1 + e^-0.7).
    batch = _batch([-10.0, -4.0], [-12.0, -6.0], [-8.0, -5.0], [-9.0, -5.0], [7, 3], [4, 6])
    losses = dpop.rdpo.rdpo_loss(batch, {"beta": 0.5, "alpha": 0.1})
    assert losses.shape == (2,)
    assert losses.tolist() == pytest.approx(
        [math.log1p(math.exp(-0.8)), math.log1p(math.exp(-0.7))], rel=1e-12
    )
    # α = 0: DPO's sigmoid loss, whatever the lengths.
    args = [batch.policy_chosen_logps, batch.policy_rejected_logps]
    args += [batch.reference_chosen_logps, batch.reference_rejected_logps]
    dpo = dpo_loss(*args, beta=0.5)
    assert dpop.rdpo.rdpo_loss(batch, {"beta": 0.5, "alpha": 0.0}).mean() == pytest.approx(
        float(dpo), rel=1e-12
    )
    # The longer chosen completion (pair 1) pays part of its margin: the policy is pushed less than by DPO.
    policy_chosen = batch.policy_chosen_logps.clone().requires_grad_(True)
    pushed = {}
    for alpha in (0.0, 0.1):
        moved = dataclasses.replace(batch, policy_chosen_logps=policy_chosen)
        (grad,) = torch.autograd.grad(
            dpop.rdpo.rdpo_loss(moved, {"beta": 0.5, "alpha": alpha}).sum(), policy_chosen
        )
        pushed[alpha] = grad
    assert pushed[0.0][0] < pushed[0.1][0] < 0  # pair 1: |y_c| > |y_r|, a smaller push
    assert pushed[0.1][1] < pushed[0.0][1] < 0  # pair 2: |y_c| < |y_r|, a larger one


@pytest.mark.unit
def test_rdpo_is_declared_on_the_pairwise_loss_extension_point(dpop):
    from harness.plugin import Hyperparameter
    from harness.plugin.pairwise import TRL_DEFAULTS, pairwise_loss_of

    method = dpop.rdpo.method_spec()
    assert method.name == "rdpo" and method.data_kind == "pairwise" and method.needs_reference
    assert pairwise_loss_of(method) is dpop.rdpo.rdpo_loss
    assert method.trainer == "harness.trial.pairwise_loss:PairwiseLossTrainer"
    assert {h.name: (h.default, h.bounds, h.field) for h in method.hyperparameters} == {
        "beta": (0.1, "(0, inf)", "beta"),
        "alpha": (0.05, "[0, inf)", None),
    }
    assert all(isinstance(h, Hyperparameter) and h.help for h in method.hyperparameters)
    assert method.defaults == {"learning_rate": 5e-7, "trl": TRL_DEFAULTS}
    assert method.profiles["toy"].defaults["learning_rate"] == 3e-4 and "alpha" in method.search_space
    assert "alpha·(|y_chosen| − |y_rejected|)" in method.loss_notes
    assert [m.name for m in dpop.harness_methods_register()] == ["dpop", "rdpo"]
    source = ast.parse((PACKAGE / "rdpo.py").read_text(encoding="utf-8"))
    imported = {a.name for n in ast.walk(source) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(source) if isinstance(n, ast.ImportFrom)}
    assert not {m for m in imported if m and m.split(".")[0] in ("trl", "transformers")}  # no TRL internals


@pytest.mark.unit
def test_example_imports_only_the_public_plugin_api():
    """The example is what a third party writes: from the harness,
    only ``harness.plugin`` and its ``__all__``."""
    import harness.plugin

    sources = sorted(PACKAGE.rglob("*.py"))
    assert len(sources) >= 5
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                bad = [a.name for a in node.names if a.name.split(".")[0] == "harness"]
                assert not bad, f"{path.name}: import {bad}; use `from harness.plugin import ...`"
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "harness":
                assert node.module == "harness.plugin", f"{path.name}: from {node.module} import ..."
                unknown = {a.name for a in node.names} - set(harness.plugin.__all__)
                assert not unknown, f"{path.name}: {unknown} not in harness.plugin.__all__"


# ---------------------------------------------------------------------------------------------------
# The R-DPO loss checked with harness.plugin.check_pairwise_loss on the tiny world,
# as a plugin's own test would.
# ---------------------------------------------------------------------------------------------------


def _rdpo_by_hand(sign: float):
    """R-DPO written per pair with Python floats (independent of torch's logsigmoid); ``sign=-1`` flips the
    length term: a deliberately wrong formula."""

    def formula(batch: Any, settings: dict[str, float]) -> torch.Tensor:
        rows = zip(*(t.tolist() for t in dataclasses.astuple(batch)), strict=True)
        values = []
        for pc, pr, rc, rr, lc, lr in rows:
            z = settings["beta"] * ((pc - rc) - (pr - rr)) + sign * settings["alpha"] * (lc - lr)
            values.append(math.log1p(math.exp(-z)))
        return torch.tensor(values, dtype=torch.float64)

    return formula


def test_check_pairwise_loss_confirms_rdpo_and_catches_a_wrong_formula(dpop, tiny_world, tmp_path):
    from harness.plugin import check_pairwise_loss

    ctx = train_context(tiny_world, tmp_path, ["method=dpo"])  # the tiny world's model, tokenizer and pairs
    pairs = [ctx.train_data[i] for i in range(8)]
    method, settings = dpop.rdpo.method_spec(), {"beta": 0.3, "alpha": 0.2}
    check = lambda **kw: check_pairwise_loss(  # noqa: E731
        method, ctx.policy, ctx.tokenizer, pairs, settings, **kw
    )
    trained, plain = check()  # the trainer feeds the loss what a plain forward pass computes
    assert trained == pytest.approx(plain, rel=1e-4, abs=1e-5)
    by_hand = check(expected=_rdpo_by_hand(+1.0))
    assert by_hand[0] == trained and by_hand[1] == pytest.approx(trained, rel=1e-4, abs=1e-5)
    with pytest.raises(AssertionError, match=r"method rdpo: the trainer's loss [0-9.]+ differs from [0-9.]+"):
        check(expected=_rdpo_by_hand(-1.0))  # the length term's sign flipped: the lengths differ, so it shows


# ---------------------------------------------------------------------------------------------------
# End to end: the package installed into a fresh site directory, the command line on the tiny world.
# ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The example installed with pip into a fresh directory (from a copy: the build leaves files behind); the
    environment that puts it on the path."""
    root = tmp_path_factory.mktemp("dpop-example")
    source = root / "src"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = root / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    assert (target / "harness_dpop" / "conf" / "method" / "dpop.yaml").is_file()  # the package data shipped
    return {"PYTHONPATH": os.pathsep.join(p for p in (str(target), os.environ.get("PYTHONPATH")) if p)}


@pytest.fixture(scope="module")
def side_by_side(
    site: dict[str, str], tiny_world: list[str], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """``-m method=dpo,dpop eval.extra=[repetition] sweep_name=ex`` run once; the directory it ran in."""
    cwd = tmp_path_factory.mktemp("side-by-side")
    result = run_cli(
        ["-m", "method=dpo,dpop", "eval.extra=[repetition]", "sweep_name=ex", *tiny_world, *FAST],
        cwd=cwd,
        env=site,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return cwd


def test_installed_package_registers_through_the_entry_point(site, tiny_world, tmp_path):
    check = (
        "from harness.plugin.manager import get_plugin_manager as g; from harness.config.store import "
        "shipped_method_yaml as y; pm = g(); print(pm._sources['dpop'], pm.evaluator('repetition').name, "
        "y(pm, 'dpop')[0], sep='|')"
    )
    found = run_cli(["-c", check], cwd=tmp_path, env=site, module="")
    assert found.stdout.strip() == "entry point from harness-dpop|repetition|pkg://harness_dpop.conf", (
        found.stderr
    )
    # The method's config is the shipped YAML over base; the evaluator's option reaches the config.
    shown = run_cli(
        ["method=dpop", "eval.extra=[repetition]", "eval.repetition.n=3", *tiny_world, "--cfg", "job"],
        cwd=tmp_path,
        env=site,
    )
    assert shown.returncode == 0, shown.stderr[-3000:]
    cfg = OmegaConf.create(shown.stdout)
    assert cfg.eval.repetition.n == 3 and list(cfg.eval.extra) == ["repetition"]
    assert (cfg.method.name, cfg.method.beta, cfg.method.lam, cfg.method.learning_rate) == (
        "dpop",
        0.1,
        5.0,
        3e-4,
    )
    assert (
        cfg.model.profile == "toy"
    )  # the toy world's profile of the method (3e-4), not its real default (5e-7)
    assert cfg.method.batch_size == 16 and cfg.method.trl == {}  # from base.yaml


def test_dpo_and_dpop_side_by_side_report_the_repetition_metric(side_by_side):
    import pandas as pd

    records = [
        json.loads(p.read_text()) for p in sorted((side_by_side / "multirun" / "ex").glob("*/trial.json"))
    ]
    assert {r["method"]: r["status"] for r in records} == {"dpo": "completed", "dpop": "completed"}
    for r in records:
        assert "rep_ngram" in r["reference"]["metrics"] and "rep_ngram_se" in r["checkpoints"][-1]["metrics"]
    dpop_record = next(r for r in records if r["method"] == "dpop")
    assert dpop_record["models_in_memory"] == 2 and dpop_record["train"]["steps"] == 4
    assert dpop_record["hyperparameters"]["lam"] == 5.0

    board = side_by_side / "leaderboards" / "ex"
    for name in ("leaderboard.csv", "checkpoints.csv"):
        table = pd.read_csv(board / name)
        assert "rep_ngram" in table.columns, f"{name}: {list(table.columns)}"
        assert set(table["method"]) == {"dpo", "dpop"}
    markdown = (board / "leaderboard.md").read_text(encoding="utf-8")
    ranked = next(  # the ranked trials' header (the verdict's table above has no rank column)
        line
        for line in markdown.splitlines()
        if line.startswith("|") and "rank" in line.replace("|", " ").split()
    )
    assert "rep_ngram" in [cell.strip() for cell in ranked.split("|")], ranked  # a headline column
    assert "dpop" in markdown
    html = (board / "leaderboard.html").read_text(encoding="utf-8")
    assert "rep_ngram" in html and "dpop" in html


def test_rdpo_trains_from_the_installed_package_on_the_extension_point(site, tiny_world, tmp_path):
    """R-DPO, a loss function and a spec, trains through the command line like any method: TRL's DPOTrainer
    with the plugin's loss, TRL's metrics logged, its knob recorded."""
    result = run_cli(
        ["method=rdpo", "method.alpha=0.2", "train.logging_steps=1", *tiny_world, *FAST],
        cwd=tmp_path,
        env=site,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (path,) = tmp_path.rglob("trial.json")
    record = json.loads(path.read_text())
    assert (record["method"], record["status"]) == ("rdpo", "completed")
    assert record["hyperparameters"]["alpha"] == 0.2 and record["train"]["steps"] == 4
    logged = [entry for entry in record["train"]["log_history"] if "loss" in entry]
    assert logged and all(math.isfinite(entry["loss"]) for entry in logged)
    assert all("rewards/margins" in entry for entry in logged)  # TRL's DPOTrainer metrics, as for dpo
    assert record["models_in_memory"] == 2  # the policy and the frozen reference


@pytest.mark.slow
def test_optuna_sweep_minimizes_rep_ngram(site, tiny_world, side_by_side, tmp_path):
    """The study is told each trial's rep_ngram. With ``eval.repetition.n=1`` (repeated tokens, common in
    12-token samples; repeated bigrams are rare there) the values are informative, and the reference's value
    differs from the side-by-side run's (n=2): the option reaches the evaluator."""
    import optuna
    from optuna.storages.journal import JournalFileBackend

    result = run_cli(
        [
            "-m",
            "hydra/sweeper=optuna",
            "method=dpop",
            "hydra.sweeper.n_trials=2",
            "hydra.sweeper.objectives=[rep_ngram]",
            "hydra.sweeper.directions=[minimize]",
            "eval.extra=[repetition]",
            "eval.repetition.n=1",
            "sweep_name=opt",
            *tiny_world,
            *FAST,
        ],
        cwd=tmp_path,
        env=site,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = tmp_path / "multirun" / "opt"
    storage = optuna.storages.JournalStorage(JournalFileBackend(str(sweep / "optuna.journal")))
    study = optuna.load_study(study_name="opt", storage=storage)
    assert study.directions == [optuna.study.StudyDirection.MINIMIZE]
    trials = study.get_trials(deepcopy=False)
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 2
    for trial in trials:
        record = json.loads((sweep / str(trial.number) / "trial.json").read_text())
        assert record["config"]["eval"]["repetition"]["n"] == 1
        # the study is told the value on the selection prompts (it never sees a test score)
        assert trial.values == [pytest.approx(record["checkpoints"][-1]["selection"]["metrics"]["rep_ngram"])]
    reference = record["reference"]["metrics"]["rep_ngram"]
    ex = json.loads(next((side_by_side / "multirun" / "ex").glob("*/trial.json")).read_text())
    assert ex["config"]["eval"]["repetition"]["n"] == 2
    assert reference != ex["reference"]["metrics"]["rep_ngram"]
    markdown = (tmp_path / "leaderboards" / "opt" / "leaderboard.md").read_text(encoding="utf-8")
    assert "minimize rep_ngram" in markdown and "2 complete" in markdown


@pytest.mark.parametrize(
    "bad",
    [
        [
            "-m",
            "hydra/sweeper=optuna",
            "method=dpop",
            "hydra.sweeper.n_trials=2",
            "hydra.sweeper.objectives=[rep_ngrm]",
            "hydra.sweeper.directions=[minimize]",
            "eval.extra=[repetition]",
            "sweep_name=bad",
        ],
        [
            "-m",
            "method=dpo,dpop",
            "leaderboard.objective=rep_ngrm",
            "eval.extra=[repetition]",
            "sweep_name=bad",
        ],
    ],
    ids=["optuna-objective", "leaderboard-objective"],
)
def test_misspelt_metric_stops_before_any_compute(site, tiny_world, tmp_path, bad):
    result = run_cli([*bad, *tiny_world, *FAST], cwd=tmp_path, env=site)
    assert result.returncode == 2, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("harness: error:"), result.stderr[-3000:]
    assert "rep_ngrm" in lines[0] and "rep_ngram" in lines[0]  # the name given, and the one meant
    assert not list(tmp_path.rglob("trial.json")) and not list(tmp_path.rglob("optuna.journal"))
