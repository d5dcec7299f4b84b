"""What the plugin manager checks when a plugin registers,
so that every mistake is one line naming the plugin.

- :func:`check_hookimpls`: each hook implementation of a plugin names a hook that exists (a misspelling gets
  the closest hook), takes only parameters the hook passes and none with a default (pluggy would never pass
  it), and is not a pluggy wrapper (refused: see :mod:`harness.plugin.hookspecs`, "No wrappers"). pluggy's own
  checks say the same in three lines, after registration; these run before it, in one.
- :func:`check_metric_names`: metric names and leaderboard columns are unique across evaluators, so that one
  evaluator's metric can never replace another's in a checkpoint's metrics or a leaderboard column.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

import pluggy

from harness.errors import PluginError

if TYPE_CHECKING:
    from harness.plugin.metrics import Metric
    from harness.plugin.specs import EvaluatorSpec


def hookimpls_of(pm: pluggy.PluginManager, plugin: object) -> Iterator[tuple[str, str, Any, dict[str, Any]]]:
    """``(attribute, hook name, function, hookimpl options)`` of each function of ``plugin`` marked as a hook
    implementation (as pluggy finds them when it registers the plugin)."""
    for attribute in dir(plugin):
        opts = pm.parse_hookimpl_opts(plugin, attribute)
        if opts is None:
            continue
        function = getattr(plugin, attribute)
        yield attribute, opts.get("specname") or attribute, function, dict(opts)


def check_hookimpls(pm: pluggy.PluginManager, plugin: object, owner: str) -> None:
    """Raise a one-line PluginError naming ``owner`` for the first hook implementation of ``plugin`` that
    names no hook, takes a parameter the hook does not pass (or one with a default), or is a pluggy
    wrapper."""
    hooks = {
        name
        for name, caller in vars(pm.hook).items()
        if not name.startswith("_") and getattr(caller, "spec", None) is not None
    }
    for attribute, hook_name, function, opts in hookimpls_of(pm, plugin):
        if hook_name not in hooks:
            if opts.get("optionalhook"):
                continue
            close = difflib.get_close_matches(hook_name, sorted(hooks), n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise PluginError(
                f"{owner} implements an unknown hook {hook_name} ({attribute}); {hint}rename it to one of "
                "the hooks in harness.plugin.hookspecs, or drop its @hookimpl."
            )
        if opts.get("wrapper") or opts.get("hookwrapper"):
            raise PluginError(
                f"{owner} implements {hook_name} as a pluggy wrapper (hookimpl(wrapper=True)), which harness "
                "refuses: each plugin's implementation is called on its own, so that one plugin's failure "
                "never costs another's; implement it as a plain @hookimpl function."
            )
        impl = pluggy.HookImpl(plugin, owner, function, opts)  # type: ignore[arg-type]
        plain, defaulted = list(impl.argnames), list(impl.kwargnames)
        passed = list(getattr(pm.hook, hook_name).spec.argnames)
        unknown = [name for name in plain if name not in passed]
        if unknown:
            raise PluginError(
                f"{owner} does not satisfy the hookspecs: {hook_name} takes "
                f"{', '.join(unknown)}, which the hook never passes; it may take any of "
                f"({', '.join(passed)}): remove or rename the parameter."
            )
        if defaulted:
            raise PluginError(
                f"{owner} does not satisfy the hookspecs: {hook_name}'s parameter {defaulted[0]} has a "
                "default, so pluggy never passes it (it would keep its default); remove the default."
            )


def _identifiers(metric: Metric) -> set[str]:
    return {metric.name, metric.label}


def _clash(a: Metric, b: Metric) -> str | None:
    """The identifier (name or column) that metrics ``a`` and ``b`` share,
    ``*`` patterns matched either way."""
    for x in sorted(_identifiers(a)):
        for y in sorted(_identifiers(b)):
            if x == y or fnmatchcase(x, y) or fnmatchcase(y, x):
                return x if "*" not in x else y
    return None


def check_metric_names(evaluators: Mapping[str, EvaluatorSpec]) -> None:
    """Raise a one-line PluginError naming both evaluators and their plugins when two evaluators declare the
    same metric name or leaderboard column (or one's ``*`` pattern matches the other's name)."""
    specs = list(evaluators.values())
    for i, first in enumerate(specs):
        for second in specs[i + 1 :]:
            for a in first.metrics:
                for b in second.metrics:
                    shared = _clash(a, b)
                    if shared is not None:
                        raise PluginError(
                            f"Two evaluators declare the metric {shared!r}: {first.name} of {first.origin} "
                            f"and {second.name} of {second.origin}; rename one (Metric(name=..., "
                            "column=...)) or uninstall one, so that neither replaces the other's values."
                        )
