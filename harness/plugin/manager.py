"""The plugin manager: finds plugins, checks them against the hookspecs, and indexes what they register.

Plugins come from two places, handled identically: the ``harness.plugins`` entry-point group (where the
built-in methods and evaluators are registered too) and module names listed in config
(``plugins=[my_pkg.my_method]``). A plugin that fails to import, that implements a hook with a wrong name or
signature or as a pluggy wrapper (:mod:`harness.plugin.checks`), that targets another plugin API or uses what
the API removed (:mod:`harness.plugin.versions`), or whose declarations break the contract
(:mod:`harness.plugin.specs`), stops the run with one line naming the plugin and where it came from; two
plugins registering one name (or two evaluators declaring one metric) are both named.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import inspect
from collections.abc import Iterable
from functools import cached_property
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pluggy

from harness.errors import PluginError, UnknownNameError
from harness.plugin import hookspecs, versions
from harness.plugin.checks import check_hookimpls, check_metric_names
from harness.plugin.specs import EvaluatorSpec, MethodSpec

if TYPE_CHECKING:
    from omegaconf import DictConfig

ENTRY_POINT_GROUP = "harness.plugins"


class HarnessPluginManager(pluggy.PluginManager):
    """A pluggy manager for the ``harness`` project, with registries of methods and evaluators."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT)
        self.add_hookspecs(hookspecs)
        self._sources: dict[str, str] = {}  # plugin name -> where it came from, for error messages

    def register_plugin(self, plugin: ModuleType | Any, name: str, source: str) -> None:
        """Register one plugin object after checking it: the plugin API version it declares, what it uses that
        the API removed, and its hook implementations; each problem is a one-line PluginError naming the
        plugin."""
        if self.has_plugin(name) or self.is_registered(plugin):
            return
        owner = f"Plugin '{name}' ({source})"
        versions.check_declared_version(plugin, owner)
        if isinstance(plugin, ModuleType):
            versions.check_removed_arguments(plugin, owner)
        check_hookimpls(self, plugin, owner)
        try:
            self.register(plugin, name=name)
        except pluggy.PluginValidationError as exc:  # what check_hookimpls does not foresee, on one line
            raise PluginError(f"{owner} does not satisfy the hookspecs: {_one_line(exc)}") from exc
        self._sources[name] = source

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> None:
        """Import and register every plugin advertised in the entry-point ``group``."""
        for ep in sorted(importlib.metadata.entry_points(group=group), key=lambda e: e.name):
            if self.has_plugin(ep.name):
                continue
            dist = ep.dist.name if ep.dist else "unknown distribution"
            try:
                plugin = ep.load()
            except Exception as exc:  # any import failure is the plugin's fault, name it
                raise PluginError(
                    f"Error importing plugin '{ep.name}' (entry point {ep.value} from {dist}): "
                    f"{type(exc).__name__}: {_one_line(exc)}"
                ) from exc
            self.register_plugin(plugin, ep.name, f"entry point from {dist}")

    def load_modules(self, names: Iterable[str]) -> None:
        """Import and register plugin modules named by their dotted import path."""
        for name in names:
            if self.has_plugin(name):
                continue
            try:
                module = importlib.import_module(name)
            except Exception as exc:
                raise PluginError(
                    f"Error importing plugin '{name}' (named in config `plugins`): "
                    f"{type(exc).__name__}: {_one_line(exc)}. Check the module path and "
                    "that its package is installed or on PYTHONPATH."
                ) from exc
            self.register_plugin(module, name, "named in config")

    def check(self) -> None:
        """Fail on hook implementations that match no hookspec (a typo in a hook name)."""
        try:
            self.check_pending()
        except pluggy.PluginValidationError as exc:
            name = self.get_name(exc.plugin) or repr(exc.plugin)
            raise PluginError(f"Plugin '{name}' implements an unknown hook: {_one_line(exc)}") from exc

    # -- registries ---------------------------------------------------------------------------------

    def describe(self, plugin_name: str) -> str:
        """``plugin 'name' (where it came from)``, for messages."""
        return f"plugin '{plugin_name}' ({self._sources.get(plugin_name, 'registered directly')})"

    def _owner(self, plugin_name: str) -> str:
        text = self.describe(plugin_name)
        return text[0].upper() + text[1:]

    def _collect(self, hook: pluggy.HookCaller, kind: str, spec_class: type) -> dict[str, Any]:
        """Call one registration hook plugin by plugin, so that every problem names the plugin responsible."""
        found: dict[str, Any] = {}
        owners: dict[str, str] = {}
        for impl in hook.get_hookimpls():  # registration order
            owner = self._owner(impl.plugin_name)
            try:
                specs = list(impl.function() or [])
            except PluginError as exc:
                raise PluginError(f"{owner} registers an invalid {kind}: {_one_line(exc)}") from None
            except TypeError as exc:
                migration = versions.removed_declaration_argument(exc)
                if migration is None:
                    raise PluginError(
                        f"{owner} failed to register its {kind}s: TypeError: {_one_line(exc)}"
                    ) from exc
                raise PluginError(f"{owner} registers an invalid {kind}: {migration}.") from None
            except Exception as exc:
                raise PluginError(
                    f"{owner} failed to register its {kind}s: {type(exc).__name__}: {_one_line(exc)}"
                ) from exc
            for spec in specs:
                if not isinstance(spec, spec_class):
                    raise PluginError(
                        f"{owner} returned {spec!r} from {hook.name}; return {spec_class.__name__} objects."
                    )
                if spec.name in found:
                    raise PluginError(
                        f"Two plugins register the {kind} '{spec.name}': {owners[spec.name]} and "
                        f"{self.describe(impl.plugin_name)}; uninstall or rename one."
                    )
                owners[spec.name] = self.describe(impl.plugin_name)
                stamp = {"plugin": impl.plugin_name} if isinstance(spec, EvaluatorSpec) else {}
                found[spec.name] = dataclasses.replace(spec, origin=owners[spec.name], **stamp)
        return dict(sorted(found.items()))

    @cached_property
    def methods(self) -> dict[str, MethodSpec]:
        """All registered methods by name (each stamped with the plugin that registered it). The module of
        each method's ``train`` is checked for calls with arguments the API removed
        (:mod:`harness.plugin.versions`)."""
        found = self._collect(self.hook.harness_methods_register, "method", MethodSpec)
        modules = {}
        for spec in found.values():
            module = inspect.getmodule(spec.train)
            if module is not None:
                modules.setdefault(module.__name__, (module, spec.origin))
        for module, origin in modules.values():
            versions.check_removed_arguments(module, origin[0].upper() + origin[1:])
        return found

    @cached_property
    def evaluators(self) -> dict[str, EvaluatorSpec]:
        """All registered evaluators by name (each stamped with the plugin that registered it); two evaluators
        declaring one metric name or column are refused (:func:`harness.plugin.checks.check_metric_names`)."""
        found = self._collect(self.hook.harness_evaluators_register, "evaluator", EvaluatorSpec)
        check_metric_names(found)
        return found

    def method(self, name: str) -> MethodSpec:
        """The method registered as ``name``; an UnknownNameError with suggestions otherwise."""
        try:
            return self.methods[name]
        except KeyError:
            raise UnknownNameError(
                "method", name, self.methods, hint="Install its plugin or list its module in `plugins=[...]`."
            ) from None

    def evaluator(self, name: str) -> EvaluatorSpec:
        """The evaluator registered as ``name``; an UnknownNameError with suggestions otherwise."""
        try:
            return self.evaluators[name]
        except KeyError:
            raise UnknownNameError("evaluator", name, self.evaluators) from None

    def invalidate(self) -> None:
        """Forget cached registries (after registering more plugins)."""
        self.__dict__.pop("methods", None)
        self.__dict__.pop("evaluators", None)


def _one_line(exc: BaseException) -> str:
    """An exception's message on one line (pluggy's validation errors span three)."""
    return "; ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__


_MANAGER: HarnessPluginManager | None = None


def get_plugin_manager(modules: Iterable[str] = ()) -> HarnessPluginManager:
    """Return the process-wide plugin manager with entry-point plugins and ``modules`` registered.

    Built once per process (a multirun's trials share it); later calls only add modules not seen yet.
    """
    global _MANAGER
    if _MANAGER is None:
        pm = HarnessPluginManager()
        pm.load_entry_points()
        _MANAGER = pm
    modules = [m for m in modules if not _MANAGER.has_plugin(m)]
    if modules:
        _MANAGER.load_modules(modules)
        _MANAGER.invalidate()
    _MANAGER.check()
    return _MANAGER


def reset_plugin_manager() -> None:
    """Drop the process-wide manager (tests use this to start from a clean registry)."""
    global _MANAGER
    _MANAGER = None


def plugin_manager_for(cfg: DictConfig) -> HarnessPluginManager:
    """The process-wide plugin manager with the trial config's ``plugins=[...]`` modules registered."""
    return get_plugin_manager(list(cfg.get("plugins") or []))


def gold_reward(cfg: DictConfig) -> hookspecs.RewardFunction | None:
    """The data source's programmatic reward for the trial config ``cfg`` (``reward(prompts, completions) ->
    scores``), or None when the data defines none (see the ``harness_gold_reward`` hook)."""
    return plugin_manager_for(cfg).hook.harness_gold_reward(cfg=cfg)
