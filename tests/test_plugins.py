"""Plugin discovery: built-ins through entry points, modules named in config, and clear plugin errors."""

from __future__ import annotations

import sys
import textwrap

import pytest
from omegaconf import OmegaConf

from harness.config.store import method_config
from harness.errors import PluginError, UnknownNameError
from harness.plugin.manager import get_plugin_manager, reset_plugin_manager
from tests.conftest import REPO

BUILTIN_METHODS = {"dpo", "ipo", "kto", "orpo", "simpo", "cpo", "grpo", "rloo", "ppo"}


@pytest.fixture(autouse=True)
def fresh_manager():
    reset_plugin_manager()
    yield
    reset_plugin_manager()


@pytest.fixture
def module_dir(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(name: str, source: str) -> str:
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        sys.modules.pop(name, None)
        return name

    return write


@pytest.mark.unit
def test_builtin_methods_and_evaluators_come_from_entry_points():
    pm = get_plugin_manager()
    assert set(pm.methods) >= BUILTIN_METHODS
    assert {"gold_reward", "kl"} <= set(pm.evaluators)
    # Built-ins are registered through the same entry-point group as third-party plugins.
    assert pm._sources["dpo"].startswith("entry point from harness")
    for name in BUILTIN_METHODS:
        spec = pm.method(name)
        assert spec.data_kind in ("pairwise", "unpaired", "prompts")
        assert method_config(spec)["name"] == name and spec.search_space
        assert set(spec.search_space) <= set(method_config(spec))  # every suggested dimension is a knob


@pytest.mark.unit
def test_method_registry_declares_what_the_seed_says():
    pm = get_plugin_manager()
    assert pm.method("kto").data_kind == "unpaired"
    full = OmegaConf.create({"model": {"lora": None}, "method": {"reward": "gold", "beta": 0.04}})
    methods = ("dpo", "kto", "orpo", "simpo", "grpo", "ppo")
    assert {n: pm.method(n).count_models(full) for n in methods} == {
        "dpo": 2,
        "kto": 2,
        "orpo": 1,
        "simpo": 1,
        "grpo": 2,
        "ppo": 3,
    }  # the gold reward is no model
    # With LoRA the reference is the adapter-disabled policy; a reward model is one more; no KL term, no reference.
    lora_rm = OmegaConf.create({"model": {"lora": {"r": 8}}, "method": {"reward": "/rm", "beta": 0.04}})
    assert {n: pm.method(n).count_models(lora_rm) for n in methods} == {
        "dpo": 1,
        "kto": 1,
        "orpo": 1,
        "simpo": 1,
        "grpo": 2,
        "ppo": 3,
    }
    no_kl = OmegaConf.create({"model": {"lora": None}, "method": {"reward": "/rm", "beta": 0.0}})
    assert pm.method("grpo").count_models(no_kl) == 2 and pm.method("ppo").count_models(no_kl) == 4
    assert not pm.method("orpo").needs_reference and pm.method("dpo").needs_reference


@pytest.mark.unit
def test_unknown_method_names_the_closest_choices():
    pm = get_plugin_manager()
    with pytest.raises(UnknownNameError) as err:
        pm.method("dpp")
    message = str(err.value)
    assert "Unknown method 'dpp'" in message and "dpo" in message.split("Did you mean:")[1].split("?")[0]
    assert "simpo" in message
    assert "\n" not in message


@pytest.mark.unit
def test_module_named_in_config_registers_a_method(module_dir):
    name = module_dir(
        "my_method_plugin",
        """
        from harness import MethodSpec, hookimpl

        @hookimpl
        def harness_methods_register():
            return [MethodSpec(name="mine", train=lambda ctx: ctx.policy, needs_reference=False)]
    """,
    )
    pm = get_plugin_manager([name])
    assert pm.method("mine").needs_reference is False
    assert pm._sources[name] == "named in config"


@pytest.mark.unit
def test_plugin_that_fails_to_import_is_named(module_dir):
    name = module_dir("broken_plugin", "import does_not_exist_anywhere\n")
    with pytest.raises(PluginError, match="Error importing plugin 'broken_plugin'.*does_not_exist_anywhere"):
        get_plugin_manager([name])


@pytest.mark.unit
def test_unknown_module_name_says_how_to_fix():
    with pytest.raises(PluginError, match="Error importing plugin 'no_such_pkg.plugin'.*PYTHONPATH"):
        get_plugin_manager(["no_such_pkg.plugin"])


@pytest.mark.unit
def test_misspelled_hook_is_rejected_naming_the_plugin(module_dir):
    name = module_dir(
        "typo_plugin",
        """
        from harness import hookimpl

        @hookimpl
        def harness_method_register():
            return []
    """,
    )
    with pytest.raises(PluginError, match="typo_plugin.*unknown hook"):
        get_plugin_manager([name])


@pytest.mark.unit
def test_hook_with_wrong_arguments_is_rejected(module_dir):
    name = module_dir(
        "badargs_plugin",
        """
        from harness import hookimpl

        @hookimpl
        def harness_data_load(cfg, dataset_name):
            return None
    """,
    )
    with pytest.raises(PluginError, match="badargs_plugin.*does not satisfy the hookspecs"):
        get_plugin_manager([name])


@pytest.mark.unit
def test_two_plugins_registering_one_name_is_an_error(module_dir):
    name = module_dir(
        "dup_plugin",
        """
        from harness import MethodSpec, hookimpl

        @hookimpl
        def harness_methods_register():
            return [MethodSpec(name="dpo", train=lambda ctx: None)]
    """,
    )
    with pytest.raises(
        PluginError, match="Two plugins register the method 'dpo': plugin 'dpo' .* and plugin 'dup_plugin'"
    ):
        _ = get_plugin_manager([name]).methods


# --- the contract: declarations checked when a plugin registers, values before any compute --------------------


@pytest.mark.unit
@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ('MethodSpec(name="m", train=None)', "MethodSpec 'm': train must be a function"),
        (
            'MethodSpec(name="m", train=lambda c: c, search_space={"lam": "interval(0, 1)"})',
            "MethodSpec 'm': search_space key 'lam' is neither a hyperparameter",
        ),
        ('MethodSpec(name="m", train=lambda c: c, data_kind="pairs")', "data_kind 'pairs' is invalid"),
        ('MethodSpec(name="m", train=lambda c: c, config_class="trl.DPOConfig")', "'package.module:Class'"),
        ('MethodSpec(name="m", train=lambda c: c, defaults={"lam": 1.0})', "defaults['lam'] is not a common"),
        (
            'MethodSpec(name="m", train=lambda c: c, defaults={"learning_rate": -1.0})',
            "it must lie in (0, inf)",
        ),
        (
            'MethodSpec(name="m", train=lambda c: c, hyperparameters=[Hyperparameter("gamma", -1.0, bounds="[0, inf)")])',
            "Hyperparameter 'gamma': the default -1.0 is invalid: it must lie in [0, inf)",
        ),
        (
            'MethodSpec(name="m", train=lambda c: c, hyperparameters=[Hyperparameter("learning_rate", 1.0)])',
            "method.learning_rate is one of the harness's own keys",
        ),
        ('MethodSpec(name="my method", train=lambda c: c)', "name 'my method' is invalid"),
        (
            'MethodSpec(name="m", train=lambda c: c, hyperparameters=[Hyperparameter("lam", 1.0, field="x")])',
            "declares no trainer or config_class",
        ),
    ],
)
def test_a_method_that_breaks_the_contract_is_refused_naming_the_plugin(module_dir, spec, expected):
    name = module_dir(
        "contract_plugin",
        f"""
        from harness.plugin import Hyperparameter, MethodSpec, hookimpl

        @hookimpl
        def harness_methods_register():
            return [{spec}]
    """,
    )
    with pytest.raises(PluginError) as err:
        _ = get_plugin_manager([name]).methods
    message = str(err.value)
    assert message.startswith("Plugin 'contract_plugin' (named in config) registers an invalid method: ")
    assert expected in message and "\n" not in message


@pytest.mark.unit
def test_an_evaluator_that_breaks_the_contract_is_refused_naming_the_plugin(module_dir):
    name = module_dir(
        "bad_evaluator",
        """
        from harness.plugin import EvaluatorSpec, Metric, hookimpl

        @hookimpl
        def harness_evaluators_register():
            return [EvaluatorSpec(name="e", evaluate=lambda ctx: {}, metrics=[Metric("x", direction="up")])]
    """,
    )
    with pytest.raises(
        PluginError, match="Plugin 'bad_evaluator' .* invalid evaluator: Metric 'x': direction 'up'"
    ):
        _ = get_plugin_manager([name]).evaluators


def _readme_method_example() -> str:
    """The first Python block of the manual's "Writing a plugin" page (the rdpo method)."""
    page = (REPO / "docs" / "how-to" / "plugins.md").read_text()
    return page.split("```python\n", 1)[1].split("```", 1)[0]


@pytest.mark.unit
def test_the_readme_method_example_registers_and_validates(module_dir):
    """The README's example plugin is real: it registers, its knobs reach DPOConfig, its values are checked."""
    from harness.config.compose import compose_job
    from harness.config.validation import validate_trial_config
    from harness.errors import ConfigError

    name = module_dir("readme_rdpo", _readme_method_example())
    pm = get_plugin_manager([name])
    cfg = compose_job([f"plugins=[{name}]", "method=rdpo", "method.eps=0.2"], {})
    assert cfg.method.eps == 0.2 and cfg.method.trl.loss_type == "robust" and cfg.method.learning_rate == 1e-4
    validate_trial_config(cfg, pm)
    for bad, expected in (
        (["method.eps=0.5"], "method.eps=0.5 is invalid for method rdpo"),
        (["method.trl.label_smoothing=0.3"], "sets the same DPOConfig field as method.eps"),
    ):
        with pytest.raises(ConfigError, match=expected):
            validate_trial_config(compose_job([f"plugins=[{name}]", "method=rdpo", *bad], {}), pm)


@pytest.mark.unit
def test_a_trainer_path_that_does_not_import_is_refused_before_compute_naming_the_plugin(module_dir):
    from harness.config.compose import compose_job
    from harness.config.validation import validate_trial_config

    name = module_dir(
        "bad_trainer_plugin",
        """
        from harness.plugin import Hyperparameter, MethodSpec, hookimpl

        @hookimpl
        def harness_methods_register():
            return [MethodSpec(name="badtrainer", train=lambda ctx: ctx.policy, trainer="trl:NoSuchTrainer"),
                    MethodSpec(name="badfield", train=lambda ctx: ctx.policy, trainer="trl:DPOTrainer",
                               hyperparameters=[Hyperparameter("lam", 1.0, field="dpop_lambda")])]
    """,
    )
    pm = get_plugin_manager([name])
    for method, expected in (
        ("badtrainer", "trainer 'trl:NoSuchTrainer' cannot be imported"),
        ("badfield", "sets DPOConfig.dpop_lambda, which does not exist"),
    ):
        cfg = compose_job([f"plugins=[{name}]", f"method={method}"], {})
        with pytest.raises(
            PluginError, match=f"MethodSpec '{method}' of plugin 'bad_trainer_plugin'.*{expected}"
        ):
            validate_trial_config(cfg, pm)


@pytest.mark.unit
def test_no_hook_implementation_has_a_parameter_pluggy_would_never_pass():
    # pluggy passes an implementation only its parameters without defaults: a defaulted one silently stays at its
    # default (the pruner's planned_steps did, so its warm-up never applied).
    import harness.sweep.pruning

    pm = get_plugin_manager()
    if not pm.is_registered(harness.sweep.pruning):  # registered by the Optuna sweeper's trials only
        pm.register(harness.sweep.pruning)
    defaulted = [
        f"{impl.plugin_name}.{name}: {impl.kwargnames}"
        for name, caller in vars(pm.hook).items()
        if not name.startswith("_")
        for impl in caller.get_hookimpls()
        if impl.kwargnames
    ]
    assert defaulted == []
