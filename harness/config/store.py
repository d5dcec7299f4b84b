"""The config nodes the harness and its plugins put in Hydra's ConfigStore,
which ``conf/config.yaml`` composes.

The core settings' nodes are built from their declarations (:mod:`harness.config.declared`): ``core_settings``
(the top-level keys, ``train``, ``tracking``, ``leaderboard``), ``eval/default`` (which ``eval/fast`` and
``eval/full`` extend), ``model/base`` (which every model config extends) and ``hydra/sweeper/optuna`` (the
Optuna sweeper's).

A method's config is the base method config (``conf/method/base.yaml``: the common training knobs, with their
comments), its :class:`~harness.plugin.settings.Hyperparameter` defaults, then its ``MethodSpec.defaults``. It
is stored as ``method/<name>``, extending ``base``, so every method is selected, overridden and swept the same
way. Those defaults are for real models. A model config that names a ``profile`` (the toy world's:
``profile: toy``) gets that profile's values, all selected by that one key: each method's
(``MethodSpec.profiles``, stored as ``method_profile/<profile>_<method>``) and the evaluation's
(``eval_profile/<profile>.yaml``, in ``conf/`` or a plugin's config folder). The node
``profile/<model config>`` names both for the profile its model config declares (or the model config it
extends), and the primary config selects it by the model chosen (``optional profile: ${model}``): the defaults
list can interpolate the choice of a group, never a value such as ``model.profile``.

A plugin that wants a commented YAML file for its method ships ``method/<name>.yaml`` in a config folder it
names through ``harness_config_searchpath``; that file is then the method's config, and it must agree with the
spec (checked here, at start-up). Evaluator options are stored as one node, ``evaluator_options``, that the
primary config lists before ``eval``, so eval presets can override them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import OmegaConf

from harness.errors import PluginError
from harness.plugin.settings import COMMON_KNOBS

if TYPE_CHECKING:
    from hydra.core.config_search_path import ConfigSearchPath
    from hydra.core.config_store import ConfigStore
    from omegaconf import DictConfig

    from harness.plugin.manager import HarnessPluginManager
    from harness.plugin.specs import MethodSpec

CONFIG_MODULE = "harness_conf"  # the installed conf/ tree
CONFIG_NAME = "config"
EVALUATOR_OPTIONS = "evaluator_options"
BASE_METHOD_CONFIG = "base"  # conf/method/base.yaml, which every method config extends
BASE_MODEL_CONFIG = "base"  # model/base (the declared model.* settings), which every model config extends
CORE_SETTINGS = "core_settings"  # the top-level keys, train, tracking and leaderboard (declared)
METHOD_PROFILE = "method_profile"  # a method's values for a profile: method_profile/<profile>_<method>
EVAL_PROFILE = "eval_profile"  # the evaluation's values for a profile: eval_profile/<profile>.yaml
PROFILE = "profile"  # profile/<model config>: the method and eval values of that model config's profile


def base_method_config() -> dict[str, Any]:
    """The common knobs every method has, with their defaults (``conf/method/base.yaml``)."""
    text = files(CONFIG_MODULE).joinpath("method", f"{BASE_METHOD_CONFIG}.yaml").read_text(encoding="utf-8")
    return OmegaConf.to_container(OmegaConf.create(text))  # type: ignore[return-value]


def method_node(spec: MethodSpec) -> dict[str, Any]:
    """What ``method=<name>`` adds to the base config: name, hyperparameter defaults,
    then the spec's defaults."""
    node: dict[str, Any] = {"name": spec.name, **{h.name: h.default for h in spec.hyperparameters}}
    node.update({k: (dict(v) if isinstance(v, Mapping) else v) for k, v in spec.defaults.items()})
    return node


def method_config(spec: MethodSpec, profile: str | None = None) -> dict[str, Any]:
    """The method's full default config (base config merged with :func:`method_node`, then the values of its
    ``profile`` when it declares one), as plain values."""
    chosen = spec.profiles.get(profile or "")
    merged = OmegaConf.merge(base_method_config(), method_node(spec), dict(chosen.defaults) if chosen else {})
    return OmegaConf.to_container(merged)  # type: ignore[return-value]


def method_defaults(name: str, cfg: DictConfig | None = None) -> dict[str, Any]:
    """The default config of ``method=<name>`` as plain values: base knobs, hyperparameters, the method's
    defaults, and the values of the model's profile (``cfg.model.profile``: the toy world's tuning on the toy
    world). ``cfg`` (a trial config) also names extra plugin modules to load (its ``plugins``)."""
    from harness.plugin.manager import get_plugin_manager, plugin_manager_for

    pm = plugin_manager_for(cfg) if cfg is not None else get_plugin_manager()
    profile = (cfg.get("model") or {}).get("profile") if cfg is not None else None
    return method_config(pm.method(name), profile)


def model_profiles(pm: HarnessPluginManager) -> dict[str, str]:
    """The profile of each model config (``model/<choice>.yaml``: its ``profile`` key, or that of the model
    config it extends), for the configs that name one: the method and eval values its ``profile/<choice>``
    node selects."""
    found: dict[str, Any] = {}
    for path in (f"pkg://{CONFIG_MODULE}", *search_path(pm)):
        for choice, text in _group_files(path, "model").items():
            found.setdefault(choice, OmegaConf.create(text))
    profiles: dict[str, str] = {}

    def profile_of(choice: str, seen: tuple[str, ...] = ()) -> str | None:
        node = found.get(choice)
        if node is None or choice in seen:
            return None
        if node.get("profile"):
            return str(node.profile)
        parents = [d for d in (node.get("defaults") or []) if isinstance(d, str) and d != "_self_"]
        return next((p for p in (profile_of(d, (*seen, choice)) for d in parents) if p), None)

    for choice in found:
        if (profile := profile_of(choice)) is not None:
            profiles[choice] = profile
    return profiles


def search_path(pm: HarnessPluginManager) -> list[str]:
    """Config folders the plugins add to Hydra's search path (``pkg://module`` or a directory)."""
    return [str(p) for paths in pm.hook.harness_config_searchpath() for p in paths or ()]


def _shipped_file(path: str, relative: str) -> Any | None:
    """The file ``relative`` inside a search-path entry, or None when it is not there."""
    if path.startswith("pkg://"):
        try:
            candidate = files(path[len("pkg://") :]).joinpath(*relative.split("/"))
        except ModuleNotFoundError:
            return None
    else:
        candidate = Path(path.removeprefix("file://")) / relative
    return candidate if candidate.is_file() else None


def _group_files(path: str, group: str) -> dict[str, str]:
    """``{option name: YAML text}`` of the config group folder ``group`` inside a search-path entry."""
    if path.startswith("pkg://"):
        try:
            folder: Any = files(path[len("pkg://") :]).joinpath(group)
        except ModuleNotFoundError:
            return {}
    else:
        folder = Path(path.removeprefix("file://")) / group
    if not folder.is_dir():
        return {}
    return {
        entry.name[:-5]: entry.read_text(encoding="utf-8")
        for entry in folder.iterdir()
        if entry.name.endswith(".yaml")
    }


def shipped_method_yaml(pm: HarnessPluginManager, name: str) -> tuple[str, Any] | None:
    """``(where, file)`` of a YAML file that defines ``method=<name>``,
    if the harness or a plugin ships one."""
    for path in (f"pkg://{CONFIG_MODULE}", *search_path(pm)):
        found = _shipped_file(path, f"method/{name}.yaml")
        if found is not None:
            return path, found
    return None


def _flat(mapping: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in mapping.items():
        if isinstance(value, Mapping) and value and key == "trl":
            yield from _flat(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def check_method_yaml(spec: MethodSpec, where: str, text: str) -> None:
    """A shipped method YAML must extend ``base`` and agree with the spec: the same keys,
    the same defaults."""
    loaded = OmegaConf.to_container(OmegaConf.create(text))
    assert isinstance(loaded, dict)
    owner = (
        f"method/{spec.name}.yaml (from {where}, for MethodSpec {spec.name!r} of {spec.origin or 'a plugin'})"
    )
    if "base" not in (loaded.pop("defaults", None) or []):
        raise PluginError(
            f"{owner} must start with `defaults: [base, _self_]` to extend the common training knobs."
        )
    declared = dict(_flat(method_node(spec)))
    given = dict(_flat(loaded))
    missing = [key for key in declared if key not in given]
    if missing:
        raise PluginError(
            f"{owner} leaves out {', '.join(missing)}; list every key the spec declares, with its "
            "default (the file is the method's config)."
        )
    for key, value in given.items():
        top = key.split(".", 1)[0]
        if top not in declared and top not in COMMON_KNOBS and top != "trl":
            raise PluginError(
                f"{owner} sets {key}, which the spec does not declare; declare it as a Hyperparameter."
            )
        if key in declared and declared[key] != value:
            raise PluginError(
                f"{owner} sets {key}={value!r} but the spec's default is {declared[key]!r}; keep one "
                "value (the spec is the source; the YAML only documents it)."
            )


def register_configs(pm: HarnessPluginManager) -> None:
    """Store the core settings' nodes, every method's config node, the profiles' nodes and the evaluators'
    options in Hydra's ConfigStore (idempotent)."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    _store_core_settings(store)
    for name, spec in pm.methods.items():
        shipped = shipped_method_yaml(pm, name)
        if shipped is not None:
            check_method_yaml(spec, shipped[0], shipped[1].read_text(encoding="utf-8"))
            continue
        store.store(
            group="method",
            name=name,
            node={"defaults": [BASE_METHOD_CONFIG, "_self_"], **method_node(spec)},
            provider=spec.origin or name,
        )
    _store_profiles(store, pm)
    options = {name: spec.option_defaults() for name, spec in pm.evaluators.items() if spec.options}
    store.store(name=EVALUATOR_OPTIONS, node={"eval": options}, provider="harness")
    _register_search_path(search_path(pm))


def _store_core_settings(store: ConfigStore) -> None:
    """The nodes built from the core settings' declarations
    (their defaults; Hydra composes and overrides them)."""
    from harness.config import settings_eval, settings_model, settings_race, settings_run, settings_sweeper

    run = {
        **settings_run.TOP_LEVEL.defaults(),
        **{
            g.key: g.defaults() for g in (settings_run.TRAIN, settings_run.TRACKING, settings_run.LEADERBOARD)
        },
    }
    store.store(name=CORE_SETTINGS, node=run, provider="harness")
    store.store(group="eval", name="default", node=settings_eval.EVAL.defaults(), provider="harness")
    store.store(
        group="model", name=BASE_MODEL_CONFIG, node=settings_model.MODEL.defaults(), provider="harness"
    )
    store.store(
        group="hydra/sweeper", name="optuna", node=settings_sweeper.sweeper_node(), provider="harness"
    )
    store.store(group="hydra/sweeper", name="race", node=settings_race.race_node(), provider="harness")


def _store_profiles(store: ConfigStore, pm: HarnessPluginManager) -> None:
    """``method_profile/<profile>_<method>`` for each method's profiles, and ``profile/<model config>`` naming
    the method and eval values of the profile each model config declares."""
    for name, spec in pm.methods.items():
        for profile, values in spec.profiles.items():
            store.store(
                group=METHOD_PROFILE,
                name=f"{profile}_{name}",
                package="method",
                node=dict(values.defaults),
                provider=spec.origin or name,
            )
    for choice, profile in model_profiles(pm).items():  # model=toy: the toy world's tuning and evaluation
        store.store(
            group=PROFILE,
            name=choice,
            package="_global_",
            node={
                "defaults": [
                    {f"optional /{EVAL_PROFILE}": profile},
                    {f"optional /{METHOD_PROFILE}": f"{profile}_${{method}}"},
                ]
            },
            provider="harness",
        )


_SEARCH_PATH: list[str] = []  # the folders the registered SearchPathPlugin adds (filled once per process)


def _register_search_path(paths: list[str]) -> None:
    """Add the plugins' config folders to Hydra's search path
    (a SearchPathPlugin, as Hydra's own plugins do)."""
    new = [p for p in paths if p not in _SEARCH_PATH]
    if not new:
        return
    first = not _SEARCH_PATH
    _SEARCH_PATH.extend(new)
    if not first:
        return
    from hydra.core.plugins import Plugins
    from hydra.plugins.search_path_plugin import SearchPathPlugin

    class PluginConfigFolders(SearchPathPlugin):
        def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
            for path in _SEARCH_PATH:
                search_path.append(
                    provider="harness-plugin", path=path if "://" in path else f"file://{path}"
                )

    Plugins.instance().register(PluginConfigFolders)
