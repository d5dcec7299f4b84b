"""The core settings are declared once (default, type, check, help) and every value is checked against them.

The declarations (:mod:`harness.config.declared`) are the defaults Hydra composes, so they must hold today's
values (the ``tests/fixtures/composed`` outputs); a bad value stops the run with one line naming the key, the
value and the fix, before any compute; the Optuna sweeper's settings come from the same declarations; one key,
``model.profile``, selects every profile value.
"""

from __future__ import annotations

import dataclasses
import os
import textwrap
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from harness.config import settings_eval, settings_model, settings_run, settings_sweeper
from harness.config.declared import SettingsGroup, core_settings, declared
from harness.errors import ConfigError, UnknownNameError
from harness.plugin.settings import Option
from tests.conftest import REPO, run_cli

FIXTURES = Path(__file__).parent / "fixtures" / "composed"


def _at(node, key: str):
    for part in filter(None, key.split(".")):
        node = node[part]
    return node


# --- the declarations ---------------------------------------------------------------------------------------


@pytest.mark.unit
def test_core_settings_are_groups_of_options_with_one_line_of_help_each():
    groups = core_settings()
    assert [g.key for g in groups] == [
        "",
        "train",
        "eval",
        "tracking",
        "leaderboard",
        "model",
        "hydra.sweeper",
    ]
    nested = {g.key: [s.key for s in g.groups] for g in groups}
    assert nested["eval"] == ["eval.selection"] and nested["model"] == ["model.bnb_4bit", "model.lora"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        groups[0].help = "x"  # type: ignore[misc]
    keys = [key for group in groups for key, _ in group.walk()]
    assert len(keys) == len(set(keys)) and len(keys) > 70
    for group in [*groups, *(s for g in groups for s in g.groups)]:
        assert isinstance(group, SettingsGroup) and group.help and "\n" not in group.help, group.key
    for key, option in (kv for group in groups for kv in group.walk()):
        assert isinstance(option, Option) and option.help and "\n" not in option.help, key
        assert option.default is not None or option.nullable or option.types, key  # None: declared nullable
        assert declared(key) is option
    assert declared("eval.selection.seed").nullable and declared("hydra.sweeper.prune_warmup").default == 0.33
    with pytest.raises(KeyError):
        declared("eval.selection.sed")


@pytest.mark.unit
def test_the_declared_defaults_are_the_values_composed_before_they_were_declared():
    """model=hf (no profile): the real-model defaults; the sweeper's as Hydra passed them
    (prune_warmup 0.33)."""
    job = OmegaConf.to_container(OmegaConf.load(FIXTURES / "hf.yaml"))
    for group in core_settings()[:-1]:
        for key, option in group.walk():
            if key != "model.name_or_path":
                expected = _at(job, key)
                assert option.default == expected and type(option.default) is type(expected), key
    sweeper = OmegaConf.to_container(OmegaConf.load(FIXTURES / "optuna.yaml"))["hydra"]["sweeper"]
    assert {
        k: v for k, v in sweeper.items() if k not in ("sampler", "pruner", "_target_", "_recursive_")
    } == (settings_sweeper.sweeper_defaults())
    node = settings_sweeper.sweeper_node()
    assert node["_target_"] == sweeper["_target_"] and node["_recursive_"] is False
    assert node["defaults"][:2] == [{"sampler": "tpe"}, {"pruner": "median"}]


@pytest.mark.unit
def test_the_leaderboards_matched_kl_for_old_records_is_the_declared_default():
    from harness.config.sweep_checks import DEFAULT_MATCHED_KL

    assert tuple(map(float, declared("leaderboard.matched_kl").default)) == DEFAULT_MATCHED_KL


@pytest.mark.unit
def test_the_sweepers_sampler_and_pruner_names_are_the_shipped_configs():
    conf = REPO / "conf" / "hydra" / "sweeper"
    assert set(settings_sweeper.SAMPLERS) == {p.stem for p in (conf / "sampler").glob("*.yaml")}
    assert set(settings_sweeper.PRUNERS) == {p.stem for p in (conf / "pruner").glob("*.yaml")}


@pytest.mark.unit
def test_the_study_settings_defaults_are_the_declared_ones():
    from harness.sweep.study import StudySettings

    settings = StudySettings("s", "x", ["auto"], ["maximize"])
    assert settings.prune_warmup == 0.33 and settings.heartbeat_s == 30.0 and settings.kl_budget == 10.0
    assert settings.stale_after_s == 600.0 and settings.max_retries == 1 and settings.prune_value == "peak"


# --- values checked against them ----------------------------------------------------------------------------


def _config(**changes):
    """A trial config's core nodes at their declared defaults, with ``changes`` (dotted key -> value)."""
    cfg = OmegaConf.create(
        {
            **settings_run.TOP_LEVEL.defaults(),
            "sweep_name": "s",
            **{
                g.key: g.defaults()
                for g in (settings_run.TRAIN, settings_run.TRACKING, settings_run.LEADERBOARD)
            },
            "eval": settings_eval.EVAL.defaults(),
        }
    )
    for key, value in changes.items():
        OmegaConf.update(cfg, key, value, merge=False)
    return cfg


def _first_error(cfg) -> str:
    from harness.config.validation import validate_reporting, validate_train

    with pytest.raises(ConfigError) as caught:
        validate_train(cfg)
        validate_reporting(cfg)
        settings_eval.EVAL.check(cfg.eval)
    return str(caught.value)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("eval.batch_size", True, "eval.batch_size=True is invalid; it must be a positive integer."),
        ("eval.batch_size", 0, "eval.batch_size=0 is invalid; it must be a positive integer."),
        ("train.logging_steps", 0, "train.logging_steps=0 is invalid; log every N >= 1 optimizer steps."),
        ("leaderboard.kl_budget", -5, "leaderboard.kl_budget=-5 is invalid; use a KL budget in nats > 0"),
        ("train.num_threads", -3, "train.num_threads=-3 is invalid; use a number of threads >= 1, or 0"),
        ("eval.seed", "abc", "eval.seed='abc' is invalid; use an integer"),
        ("eval.temperature", True, "eval.temperature=True is invalid; it must be > 0 (1.0 is unbiased)."),
        ("eval.num_prompts", 0, "eval.num_prompts=0 is invalid; use a positive integer or null (all)."),
        (
            "eval.logprob_batch_size",
            1.5,
            "eval.logprob_batch_size=1.5 is invalid; use a positive integer or null",
        ),
        ("eval.evaluators", "kl", "eval.evaluators='kl' is invalid; use a list of evaluator names"),
        ("eval.checkpoints", "some", "eval.checkpoints='some' is invalid; use all or final."),
        (
            "train.checkpoint_every",
            True,
            "train.checkpoint_every=True is invalid; use 0 (train.num_checkpoints",
        ),
        (
            "train.gradient_checkpointing",
            "yes",
            "train.gradient_checkpointing='yes' is invalid; it must be true",
        ),
        ("seed", 1.5, "seed=1.5 is invalid; it must be an integer."),
        ("rerun", "some", "rerun='some' is invalid; use rerun=missing (skip completed trials) or rerun=all."),
        ("verbose", "yes", "verbose='yes' is invalid; it must be true or false."),
        ("plugins", "my.module", "plugins='my.module' is invalid; give a list of modules to import"),
        ("tracking.report_to", 3, "tracking.report_to=3 is invalid; give a tracker or a list of trackers"),
        ("tracking.dir", 3, "tracking.dir=3 is invalid; it must be a string."),
        ("leaderboard.print", "no", "leaderboard.print='no' is invalid; it must be true or false."),
        ("leaderboard.matched_kl", [0, 2], "leaderboard.matched_kl=[0, 2] is invalid: 0 is not a KL value"),
        (
            "leaderboard.matched_kl",
            "1,2",
            "leaderboard.matched_kl='1,2' is invalid; give a list of KL values",
        ),
    ],
)
def test_a_bad_core_value_is_one_line_naming_the_key_the_value_and_the_fix(key, value, message):
    line = _first_error(_config(**{key: value}))
    assert line.startswith(message) and "\n" not in line, line


@pytest.mark.unit
def test_the_declared_defaults_and_documented_alternatives_pass():
    from harness.config.validation import validate_reporting, validate_train

    for changes in (
        {},
        {
            "eval.num_prompts": None,
            "eval.logprob_batch_size": 32,
            "eval.temperature": 1,
            "eval.cache_dir": "/c",
        },
        {"leaderboard.kl_budget": None, "leaderboard.matched_kl": [], "leaderboard.objective": "kl"},
        {"tracking.report_to": "none", "tracking.dir": "/t", "train.save_checkpoints": "all", "rerun": "all"},
        {
            "train.save_checkpoints": False,
            "train.num_threads": 2,
            "eval.selection.seed": 7,
            "plugins": ["a.b"],
        },
    ):
        cfg = _config(**changes)
        validate_train(cfg)
        validate_reporting(cfg)
        settings_eval.EVAL.check(cfg.eval)


@pytest.mark.unit
def test_model_values_are_checked_against_their_declarations():
    import torch

    from harness.config.model_settings import check_model_settings

    def error(**changes) -> str:
        cfg = OmegaConf.create(settings_model.MODEL.defaults())
        for key, value in changes.items():
            OmegaConf.update(cfg, key, value, merge=False)
        with pytest.raises(ConfigError) as caught:
            check_model_settings(cfg, torch.device("cpu"))
        return str(caught.value)

    assert error(**{"lora.r": -1}).startswith("model.lora.r=-1 is invalid; use 0 (no LoRA")
    assert (
        error(**{"lora.dropout": 1.0}) == "model.lora.dropout=1.0 is invalid; it must be a number in [0, 1)."
    )
    assert (
        error(**{"bnb_4bit.quant_type": "x"}) == "model.bnb_4bit.quant_type='x' is invalid; use nf4 or fp4."
    )
    assert error(quantization="3bit").startswith("model.quantization='3bit' is invalid; use null")
    assert (
        error(trust_remote_code="yes")
        == "model.trust_remote_code='yes' is invalid; it must be true or false."
    )
    assert error(lora=5) == "model.lora=5 is invalid; set model.lora.r (0 = full fine-tuning)."
    cfg = OmegaConf.create(settings_model.MODEL.defaults())
    cfg.quantization, cfg.device_map = "none", {"": 0}  # "none" is off; a mapping of modules to devices
    check_model_settings(cfg, torch.device("cpu"))


@pytest.mark.unit
def test_the_sweepers_settings_are_checked_when_the_sweep_starts_then_typed():
    from harness.sweep.sweeper import OptunaSweep

    sweep = OptunaSweep(sampler=None, pruner=None, n_trials=3)  # a key not given takes its declared default
    assert (
        sweep.prune_warmup == 0.33
        and sweep.heartbeat_s == 30
        and sweep.kl_budget == "${leaderboard.kl_budget}"
    )
    sweep.kl_budget = 10.0  # what Hydra passes: the interpolation resolved
    sweep.settle()
    assert sweep.n_trials == 3 and isinstance(sweep.heartbeat_s, float) and sweep.n_jobs == 1
    assert OptunaSweep(sampler=None, pruner=None, n_jobs=0, kl_budget=None).settle() is None
    for bad, message in (
        ({"n_trials": 0}, "hydra.sweeper.n_trials=0 is invalid; plan at least one trial."),
        (
            {"prune_warmup": 1.5},
            "hydra.sweeper.prune_warmup=1.5 is invalid; give the share of a trial's steps",
        ),
        ({"prune_value": "median"}, "hydra.sweeper.prune_value='median' is invalid; use one of peak, best"),
        ({"budget_steps": 0}, "hydra.sweeper.budget_steps=0 is invalid; give optimizer steps >= 1, or null"),
        ({"kl_budget": -1}, "hydra.sweeper.kl_budget=-1 is invalid; use a number of nats > 0, or null."),
        ({"objectives": "kl"}, "hydra.sweeper.objectives='kl' is invalid; give a list of metric names"),
        ({"heartbeat_s": "x"}, "hydra.sweeper.heartbeat_s='x' is invalid; it must be a number."),
    ):
        with pytest.raises(ConfigError) as caught:
            OptunaSweep(sampler=None, pruner=None, **{"kl_budget": 10.0, **bad}).settle()
        assert str(caught.value).startswith(message), caught.value
    with pytest.raises(
        UnknownNameError, match="Unknown option 'hydra.sweeper.n_trails'. Did you mean: hydra"
    ):
        OptunaSweep(sampler=None, pruner=None, n_trails=3).settle()


# --- one key selects every profile --------------------------------------------------------------------------


def test_a_model_config_of_ones_own_with_profile_toy_gets_the_methods_and_the_evaluations_toy_values(
    tmp_path,
):
    """A plugin's config folder holds ``model/mine.yaml`` (extending base, ``profile: toy``): ``model=mine``
    composes the same method and eval values as ``model=toy`` (the toy tuning and the toy evaluation)."""
    (tmp_path / "mine_conf" / "model").mkdir(parents=True)
    (tmp_path / "mine_conf" / "model" / "mine.yaml").write_text(
        "defaults:\n  - base\n  - _self_\n\nname_or_path: toyworld\nprofile: toy\n"
    )
    (tmp_path / "mine_plugin.py").write_text(
        textwrap.dedent(
            f"""
            from harness.plugin import hookimpl

            @hookimpl
            def harness_config_searchpath():
                return [{str(tmp_path / "mine_conf")!r}]
            """
        )
    )
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))}
    composed = {}
    for model in ("mine", "toy"):
        result = run_cli(
            [f"model={model}", "method=simpo", "plugins=[mine_plugin]", "--cfg", "job"], cwd=tmp_path, env=env
        )
        assert result.returncode == 0, result.stderr[-2000:]
        composed[model] = OmegaConf.create(result.stdout)
    real = OmegaConf.load(FIXTURES / "hf_simpo.yaml")  # model=hf method=simpo: the real-model defaults
    assert composed["mine"].method == composed["toy"].method != real.method
    assert composed["mine"].eval == composed["toy"].eval != real.eval
    assert composed["mine"].eval.max_new_tokens == 24 and list(composed["mine"].eval.lm_eval.tasks) == [
        "toy_grammar"
    ]
