"""Plugin discovery: built-ins through entry points, modules named in config, and clear plugin errors."""

from __future__ import annotations

import sys
import textwrap

import pytest
from omegaconf import OmegaConf

from harness.config.store import method_config
from harness.errors import PluginError, UnknownNameError
from harness.plugin.manager import get_plugin_manager, reset_plugin_manager

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


def test_method_registry_declares_what_the_seed_says():
    pm = get_plugin_manager()
    assert pm.method("kto").data_kind == "unpaired"
    full = OmegaConf.create({"model": {"lora": None}, "method": {"reward": "gold", "beta": 0.04}})
    methods = ("dpo", "kto", "orpo", "simpo", "grpo", "ppo")
    assert {n: pm.method(n).count_models(full) for n in methods} == {
        "dpo": 2, "kto": 2, "orpo": 1, "simpo": 1, "grpo": 2, "ppo": 3}  # the gold reward is no model
    # With LoRA the reference is the adapter-disabled policy; a reward model is one more; no KL term, no reference.
    lora_rm = OmegaConf.create({"model": {"lora": {"r": 8}}, "method": {"reward": "/rm", "beta": 0.04}})
    assert {n: pm.method(n).count_models(lora_rm) for n in methods} == {
        "dpo": 1, "kto": 1, "orpo": 1, "simpo": 1, "grpo": 2, "ppo": 3}
    no_kl = OmegaConf.create({"model": {"lora": None}, "method": {"reward": "/rm", "beta": 0.0}})
    assert pm.method("grpo").count_models(no_kl) == 2 and pm.method("ppo").count_models(no_kl) == 4
    assert not pm.method("orpo").needs_reference and pm.method("dpo").needs_reference


def test_unknown_method_names_the_closest_choices():
    pm = get_plugin_manager()
    with pytest.raises(UnknownNameError) as err:
        pm.method("dpp")
    message = str(err.value)
    assert "Unknown method 'dpp'" in message and "dpo" in message.split("Did you mean:")[1].split("?")[0]
    assert "simpo" in message
    assert "\n" not in message


def test_module_named_in_config_registers_a_method(module_dir):
    name = module_dir("my_method_plugin", """
        from harness import MethodSpec, hookimpl

        @hookimpl
        def harness_methods_register():
            return [MethodSpec(name="mine", train=lambda ctx: ctx.policy, needs_reference=False)]
    """)
    pm = get_plugin_manager([name])
    assert pm.method("mine").needs_reference is False
    assert pm._sources[name] == "named in config"


def test_plugin_that_fails_to_import_is_named(module_dir):
    name = module_dir("broken_plugin", "import does_not_exist_anywhere\n")
    with pytest.raises(PluginError, match="Error importing plugin 'broken_plugin'.*does_not_exist_anywhere"):
        get_plugin_manager([name])


def test_unknown_module_name_says_how_to_fix():
    with pytest.raises(PluginError, match="Error importing plugin 'no_such_pkg.plugin'.*PYTHONPATH"):
        get_plugin_manager(["no_such_pkg.plugin"])


def test_misspelled_hook_is_rejected_naming_the_plugin(module_dir):
    name = module_dir("typo_plugin", """
        from harness import hookimpl

        @hookimpl
        def harness_method_register():
            return []
    """)
    with pytest.raises(PluginError, match="typo_plugin.*unknown hook"):
        get_plugin_manager([name])


def test_hook_with_wrong_arguments_is_rejected(module_dir):
    name = module_dir("badargs_plugin", """
        from harness import hookimpl

        @hookimpl
        def harness_data_load(cfg, dataset_name):
            return None
    """)
    with pytest.raises(PluginError, match="badargs_plugin.*does not satisfy the hookspecs"):
        get_plugin_manager([name])


def test_two_plugins_registering_one_name_is_an_error(module_dir):
    name = module_dir("dup_plugin", """
        from harness import MethodSpec, hookimpl

        @hookimpl
        def harness_methods_register():
            return [MethodSpec(name="dpo", train=lambda ctx: None)]
    """)
    with pytest.raises(PluginError, match="Two plugins register the method 'dpo': plugin 'dpo' .* and plugin 'dup_plugin'"):
        _ = get_plugin_manager([name]).methods


def test_third_party_package_installed_from_a_directory_runs_as_a_method(tiny_world, tmp_path):
    """A separately installed package registers `sft_demo` through the entry-point group; no core change."""
    import shutil
    import subprocess

    from tests.conftest import REPO, run_cli
    from tests.helpers import FAST

    source = tmp_path / "src"
    shutil.copytree(REPO / "tests" / "fixtures" / "thirdparty_plugin", source)
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                    "--target", str(site), str(source)], check=True, capture_output=True, text=True)
    env = {"PYTHONPATH": str(site)}
    found = run_cli(["-c", "from harness.plugin.manager import get_plugin_manager as g; print(g()._sources['sft_demo'])"],
                    cwd=tmp_path, env=env, module="")
    assert found.stdout.strip() == "entry point from harness-sft-demo", found.stderr
    result = run_cli(["method=sft_demo", *tiny_world, *FAST], cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "[harness] sft_demo" in result.stdout and "completed" in result.stdout
    assert "gold_reward" in result.stdout and "kl" in result.stdout
