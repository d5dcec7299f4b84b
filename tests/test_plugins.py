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
    # With LoRA the reference is the adapter-disabled policy; a reward model is one more;
    # no KL term, no reference.
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


# --- the contract: declarations checked when a plugin registers, values before any compute ------------------


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
            'MethodSpec(name="m", train=lambda c: c, '
            'hyperparameters=[Hyperparameter("gamma", -1.0, bounds="[0, inf)")])',
            "Hyperparameter 'gamma': the default -1.0 is invalid: it must lie in [0, inf)",
        ),
        (
            'MethodSpec(name="m", train=lambda c: c, hyperparameters=[Hyperparameter("learning_rate", 1.0)])',
            "method.learning_rate is one of the harness's own keys",
        ),
        ('MethodSpec(name="my method", train=lambda c: c)', "name 'my method' is invalid"),
        (
            'MethodSpec(name="m", train=lambda c: c, '
            'hyperparameters=[Hyperparameter("lam", 1.0, field="x")])',
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
    """The first Python block of the manual's "Writing a plugin" page (the robust_dpo method)."""
    page = (REPO / "docs" / "how-to" / "plugins.md").read_text()
    return page.split("```python\n", 1)[1].split("```", 1)[0]


@pytest.mark.unit
def test_the_readme_method_example_registers_and_validates(module_dir):
    """The README's example plugin is real: it registers, its knobs reach DPOConfig,
    its values are checked."""
    from harness.config.compose import compose_job
    from harness.config.validation import validate_trial_config
    from harness.errors import ConfigError

    name = module_dir("readme_rdpo", _readme_method_example())
    pm = get_plugin_manager([name])
    cfg = compose_job([f"plugins=[{name}]", "method=robust_dpo", "method.eps=0.2"], {})
    assert cfg.method.eps == 0.2 and cfg.method.trl.loss_type == "robust" and cfg.method.learning_rate == 1e-4
    validate_trial_config(cfg, pm)
    for bad, expected in (
        (["method.eps=0.5"], "method.eps=0.5 is invalid for method robust_dpo"),
        (["method.trl.label_smoothing=0.3"], "sets the same DPOConfig field as method.eps"),
    ):
        with pytest.raises(ConfigError, match=expected):
            validate_trial_config(compose_job([f"plugins=[{name}]", "method=robust_dpo", *bad], {}), pm)


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
    # pluggy passes an implementation only its parameters without defaults: a defaulted one silently stays at
    # its default (the pruner's planned_steps did, so its warm-up never applied).
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


# --- issue 28: plugins that fail alone and say who they are -------------------------------------------------


def _registration_error(module_dir, name: str, source: str, registry: str = "") -> str:
    """The PluginError registering the plugin module ``source`` raises (reading ``registry`` too, when given):
    checked to be one line that names the plugin."""
    module = module_dir(name, source)
    reset_plugin_manager()
    with pytest.raises(PluginError) as err:
        pm = get_plugin_manager([module])
        if registry:
            getattr(pm, registry)
    message = str(err.value)
    assert "\n" not in message and f"'{name}'" in message, message
    return message


@pytest.mark.unit
def test_a_metric_name_another_evaluator_declares_is_refused_at_registration_naming_both_plugins(module_dir):
    message = _registration_error(
        module_dir,
        "clash_plugin",
        """
        from harness.plugin import EvaluatorSpec, Metric, hookimpl

        @hookimpl
        def harness_evaluators_register():
            return [EvaluatorSpec(name="mine", evaluate=lambda ctx: {}, metrics=[Metric("length")])]
        """,
        "evaluators",
    )
    assert message.startswith("Two evaluators declare the metric 'length': ")
    assert "text_stats of plugin 'text_stats'" in message and "mine of plugin 'clash_plugin'" in message
    column = _registration_error(  # a leaderboard column is a name too
        module_dir,
        "column_clash",
        """
        from harness.plugin import EvaluatorSpec, Metric, hookimpl

        @hookimpl
        def harness_evaluators_register():
            metrics = [Metric("s", column="rm_score")]
            return [EvaluatorSpec(name="other", evaluate=lambda ctx: {}, metrics=metrics)]
        """,
        "evaluators",
    )
    assert "metric 'rm_score'" in column and "reward_model of plugin 'reward_model'" in column


@pytest.mark.unit
@pytest.mark.parametrize("marker", ["hookimpl(wrapper=True)", "hookimpl(hookwrapper=True)"])
def test_a_pluggy_wrapper_is_refused_at_registration(module_dir, marker):
    message = _registration_error(
        module_dir,
        "wrapper_plugin",
        f"""
        from harness.plugin import hookimpl

        @{marker}
        def harness_trial_end(record):
            yield
        """,
    )
    assert "implements harness_trial_end as a pluggy wrapper" in message
    assert "implement it as a plain @hookimpl function" in message


@pytest.mark.unit
@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "def harness_method_register():\n    return []",
            "unknown hook harness_method_register (harness_method_register); "
            "did you mean harness_methods_register?",
        ),
        (
            "def harness_data_load(cfg, dataset_name):\n    return None",
            "does not satisfy the hookspecs: harness_data_load takes dataset_name, which "
            "the hook never passes; it may take any of (cfg)",
        ),
        (
            "def harness_checkpoint_evaluated(step, metrics, selection=None):\n    return None",
            "harness_checkpoint_evaluated's parameter selection has a default, so pluggy never passes it",
        ),
    ],
)
def test_a_wrong_hook_is_one_line_naming_the_plugin_and_the_fix(module_dir, source, expected):
    message = _registration_error(
        module_dir, "wrong_hook", f"from harness import hookimpl\n\n@hookimpl\n{source}\n"
    )
    assert message.startswith("Plugin 'wrong_hook' (named in config) ") and expected in message


@pytest.mark.unit
@pytest.mark.parametrize(
    ("declaration", "registry"),
    [
        (
            'EvaluatorSpec(name="e", evaluate=lambda ctx: {}, options=[Option("threshold", None)])',
            "evaluators",
        ),
        (
            'MethodSpec(name="m", train=lambda ctx: ctx.policy, '
            'hyperparameters=[Hyperparameter("lam", None)])',
            "methods",
        ),
    ],
)
def test_a_none_default_without_nullable_is_refused_at_registration(module_dir, declaration, registry):
    hook = "harness_evaluators_register" if registry == "evaluators" else "harness_methods_register"
    message = _registration_error(
        module_dir,
        "none_default",
        f"""
        from harness.plugin import EvaluatorSpec, Hyperparameter, MethodSpec, Option, hookimpl

        @hookimpl
        def {hook}():
            return [{declaration}]
        """,
        registry,
    )
    assert "the default None gives no type and does not say null is allowed" in message
    assert "declare nullable=True" in message


@pytest.mark.unit
def test_none_defaults_that_say_what_they_mean_are_accepted():
    from harness.plugin import Option
    from harness.plugin.settings import COMMON_KNOBS

    assert Option("x", None, nullable=True).problem(None) is None  # null is a value
    required = Option("y", None, types=(int,))  # the config must set it (the common knobs' base.yaml does)
    assert required.problem(None) == "it must not be null" and required.problem(3) is None
    assert COMMON_KNOBS["learning_rate"].problem(None) == "it must not be null"
    pm = get_plugin_manager()  # every built-in declaration passes the rule
    assert (
        pm.evaluator("lm_eval")
        .options[[o.name for o in pm.evaluator("lm_eval").options].index("num_fewshot")]
        .nullable
    )


# --- issue 28: a versioned plugin API -----------------------------------------------------------------------


@pytest.mark.unit
def test_the_api_version_is_public_and_a_plugin_may_declare_the_one_it_targets(module_dir):
    import harness
    from harness.plugin import API_VERSION

    assert isinstance(API_VERSION, int) and harness.API_VERSION == API_VERSION
    name = module_dir(
        "current_plugin",
        f"""
        from harness.plugin import MethodSpec, hookimpl

        HARNESS_API_VERSION = {API_VERSION}

        @hookimpl
        def harness_methods_register():
            return [MethodSpec(name="current", train=lambda ctx: ctx.policy, needs_reference=False)]
        """,
    )
    assert get_plugin_manager([name]).method("current").origin == f"plugin '{name}' (named in config)"


@pytest.mark.unit
@pytest.mark.parametrize(
    ("declared", "expected"),
    [
        ("99", "targets plugin API 99, newer than this harness's 3; upgrade harness"),
        (
            "1",
            "targets plugin API 1, which this harness no longer supports (it provides 3); port it (API 2: ",
        ),
        (
            "'3'",
            "declares HARNESS_API_VERSION = '3'; declare the plugin API version it targets as an integer",
        ),
    ],
)
def test_a_plugin_targeting_another_api_version_is_refused_in_one_line(module_dir, declared, expected):
    message = _registration_error(
        module_dir, "versioned_plugin", f"HARNESS_API_VERSION = {declared}\n", registry=""
    )
    assert message.startswith("Plugin 'versioned_plugin' (named in config) ") and expected in message


RENAMES_METHOD = """
from harness.plugin import MethodSpec, hookimpl


def train(ctx):
    from trl import DPOConfig, DPOTrainer

    return ctx.run_trainer({call})


@hookimpl
def harness_methods_register():
    return [MethodSpec(name="olddpo", train=train, trainer="trl:DPOTrainer")]
"""


@pytest.mark.unit
@pytest.mark.parametrize(
    "call",
    [
        'ctx.trl_trainer(DPOTrainer, DPOConfig, renames={"beta": "beta"})',
        'ctx.trl_trainer(DPOTrainer, DPOConfig, {"beta": "beta"})',  # the old positional form
    ],
)
def test_a_removed_argument_gets_the_migration_line_at_registration_not_a_typeerror_mid_trial(
    module_dir, call
):
    message = _registration_error(module_dir, "old_rdpo", RENAMES_METHOD.format(call=call))
    assert message.startswith("Plugin 'old_rdpo' (named in config) calls trl_trainer(..., renames=...) at ")
    assert "old_rdpo.py:8, which plugin API 2 removed (installed: 3)" in message
    assert "declare each knob as Hyperparameter(name, default, field='<trainer-config field>')" in message


@pytest.mark.unit
def test_a_removed_argument_in_the_module_of_a_methods_train_is_found_too(module_dir):
    module_dir("old_rdpo_train", RENAMES_METHOD.format(call='ctx.trl_trainer(renames={"beta": "beta"})'))
    message = _registration_error(
        module_dir,
        "old_rdpo_entry",
        """
        from harness.plugin import MethodSpec, hookimpl
        from old_rdpo_train import train

        @hookimpl
        def harness_methods_register():
            return [MethodSpec(name="olddpo2", train=train)]
        """,
        "methods",
    )
    assert message.startswith("Plugin 'old_rdpo_entry' (named in config) calls trl_trainer(..., renames=...)")
    assert "old_rdpo_train.py" in message


@pytest.mark.unit
def test_a_removed_declaration_argument_and_a_removed_name_get_the_migration_line(module_dir, monkeypatch):
    from harness.plugin import versions

    message = _registration_error(
        module_dir,
        "old_spec",
        """
        from harness.plugin import MethodSpec, hookimpl

        @hookimpl
        def harness_methods_register():
            return [MethodSpec(name="o", train=lambda ctx: ctx.policy, renames={"beta": "beta"})]
        """,
        "methods",
    )
    assert "calls MethodSpec(..., renames=...) at " in message and "which plugin API 2 removed" in message
    from harness.plugin import MethodSpec

    with pytest.raises(TypeError) as raised:  # where the source cannot be read, the TypeError is translated
        MethodSpec(name="o", train=lambda ctx: ctx.policy, renames={})  # type: ignore[call-arg]
    migration = versions.removed_declaration_argument(raised.value)
    assert migration and migration.startswith(
        "MethodSpec(renames=...) was removed in plugin API 2 (installed: 3)"
    )
    assert versions.removed_declaration_argument(TypeError("unsupported operand")) is None
    monkeypatch.setitem(versions.REMOVED_NAMES, "OldContext", versions.Removal(3, "use TrainContext instead"))
    message = _registration_error(module_dir, "old_name", "from harness.plugin import OldContext\n")
    assert message.startswith(
        "Error importing plugin 'old_name' (named in config `plugins`): RemovedNameError: "
    )
    assert (
        "harness.plugin.OldContext was removed in plugin API 3 (installed: 3); use TrainContext instead"
        in message
    )
    with pytest.raises(ImportError, match="was removed in plugin API 3"):
        from harness import OldContext  # noqa: F401
