"""The plugin API's version, what each version removed, and the migration messages a plugin gets
at registration.

:data:`API_VERSION` is the version of the plugin API this harness provides (``harness.plugin.API_VERSION``). A
plugin may declare the version it was written against as a module (or object) attribute
:data:`DECLARATION`::

    HARNESS_API_VERSION = 3

The plugin manager reads it when it registers the plugin: a plugin that targets a newer API than the one
installed is refused (upgrade the harness), one that targets a version older than :data:`OLDEST_SUPPORTED` is
refused with what changed since, and anything in between registers. Whether a plugin declares a version or
not, what a later version removed is found before any compute, each with a message that names the replacement:

- a removed name of :mod:`harness.plugin` (:data:`REMOVED_NAMES`) fails the plugin's import with the migration
  message instead of Python's ``cannot import name``;
- a removed argument of an API call (:data:`REMOVED_ARGUMENTS`: ``ctx.trl_trainer(..., renames=...)``) is
  found in the source of the plugin's modules when it registers (and of the module holding each method's
  ``train``), instead of a ``TypeError`` in the middle of a trial;
- a removed argument of a declaration (``MethodSpec(renames=...)``) is named with its replacement when the
  registration hook raises the ``TypeError``.

To remove a name or an argument from the API: bump :data:`API_VERSION`, add a line to :data:`HISTORY`, and add
the entry here, so that plugins written against the older version are told what to use instead.
"""

from __future__ import annotations

import ast
import inspect
import re
from dataclasses import dataclass
from types import ModuleType

from harness.errors import PluginError

#: The plugin API this harness provides.
API_VERSION = 3
#: The oldest API a plugin may target (a plugin declaring an older one is refused, with what changed since).
OLDEST_SUPPORTED = 2
#: The attribute of a plugin module (or object) that declares the API version it targets.
DECLARATION = "HARNESS_API_VERSION"

#: What each version changed, in one line (quoted in the message refusing a plugin that targets an older one).
HISTORY: dict[int, str] = {
    1: "MethodSpec(defaults=<the method's whole config>), ctx.trl_trainer(trainer, config, renames)",
    2: (
        "a method's own knobs are Hyperparameter(...) declarations (field= names the trainer-config field "
        "they set; renames= is gone), evaluators declare Metric(...) and Option(...)"
    ),
    3: (
        "per-trial observers (harness_trial_observer, TrialObserver), pluggy wrappers refused, a "
        "None default needs nullable=True or types=, metric names and columns unique across "
        "evaluators, an evaluator that raises loses only its own metrics"
    ),
}


@dataclass(frozen=True)
class Removal:
    """Something the API removed: in which version, and what to do instead (one sentence)."""

    version: int
    replacement: str


_HYPERPARAMETER_FIELD = (
    "declare each knob as Hyperparameter(name, default, field='<trainer-config field>') in "
    "MethodSpec.hyperparameters; ctx.trl_trainer() and ctx.trl_config() then set the field"
)

#: Names that :mod:`harness.plugin` no longer has.
REMOVED_NAMES: dict[str, Removal] = {}
#: ``(callable, argument)`` -> its removal: keyword arguments of API calls and declarations that
#: no longer exist.
REMOVED_ARGUMENTS: dict[tuple[str, str], Removal] = {
    ("trl_trainer", "renames"): Removal(2, _HYPERPARAMETER_FIELD),
    ("trl_config", "renames"): Removal(2, _HYPERPARAMETER_FIELD),
    ("MethodSpec", "renames"): Removal(2, _HYPERPARAMETER_FIELD),
}
#: Calls whose removed argument could also be passed by position: callable -> (positional slots, argument).
REMOVED_POSITIONS: dict[str, tuple[int, str]] = {"trl_trainer": (2, "renames"), "trl_config": (1, "renames")}


class RemovedNameError(PluginError, ImportError):
    """A name the plugin API removed: raised by ``harness.plugin.<name>`` (and
    ``from harness.plugin import ...``) with the migration message. An ImportError, so that an import of it
    says what to use instead."""


def removed_name(name: str) -> RemovedNameError | None:
    """The error for ``harness.plugin.<name>`` when the API removed it (None when it did not)."""
    removal = REMOVED_NAMES.get(name)
    if removal is None:
        return None
    return RemovedNameError(
        f"harness.plugin.{name} was removed in plugin API {removal.version} (installed: {API_VERSION}); "
        f"{removal.replacement}."
    )


def check_declared_version(plugin: object, owner: str) -> int | None:
    """The API version ``plugin`` declares (:data:`DECLARATION`; None when it declares none); raises a
    one-line PluginError naming ``owner`` when it is not an integer, newer than :data:`API_VERSION` or older
    than :data:`OLDEST_SUPPORTED`."""
    declared = getattr(plugin, DECLARATION, None)
    if declared is None:
        return None
    if isinstance(declared, bool) or not isinstance(declared, int) or declared < 1:
        raise PluginError(
            f"{owner} declares {DECLARATION} = {declared!r}; declare the plugin API version it targets as an "
            f"integer (this harness provides {API_VERSION})."
        )
    if declared > API_VERSION:
        raise PluginError(
            f"{owner} targets plugin API {declared}, newer than this harness's "
            f"{API_VERSION}; upgrade harness (pip install -U harness), or install a "
            f"version of the plugin written for API {API_VERSION}."
        )
    if declared < OLDEST_SUPPORTED:
        changes = "; ".join(f"API {v}: {HISTORY[v]}" for v in range(declared + 1, API_VERSION + 1))
        raise PluginError(
            f"{owner} targets plugin API {declared}, which this harness no longer supports (it provides "
            f"{API_VERSION}); port it ({changes}) and declare {DECLARATION} = {API_VERSION}."
        )
    return declared


def _called_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return None


def removed_arguments_in(source: str) -> list[tuple[int, str, str, Removal]]:
    """Calls in ``source`` that pass an argument the API removed: ``(line, callable, argument, removal)``, by
    keyword or (for :data:`REMOVED_POSITIONS`) by position."""
    if not any(f"{name}(" in source for name, _ in REMOVED_ARGUMENTS):
        return []  # the common case: no call to look at, nothing to parse
    try:
        tree = ast.parse(source)
    except SyntaxError:  # the import reports it
        return []
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or (name := _called_name(node.func)) is None:
            continue
        for keyword in node.keywords:
            removal = REMOVED_ARGUMENTS.get((name, keyword.arg or ""))
            if removal is not None:
                found.append((node.lineno, name, str(keyword.arg), removal))
        slots, argument = REMOVED_POSITIONS.get(name, (0, ""))
        if slots and len(node.args) > slots and not any(isinstance(a, ast.Starred) for a in node.args):
            found.append((node.lineno, name, argument, REMOVED_ARGUMENTS[name, argument]))
    return found


def check_removed_arguments(module: ModuleType | None, owner: str) -> None:
    """Raise a one-line PluginError naming ``owner``, the file and line, and the replacement, when
    ``module``'s source calls the API with an argument it removed (nothing when its source cannot be read)."""
    if module is None:
        return
    try:
        source = inspect.getsource(module)
        path = inspect.getsourcefile(module) or module.__name__
    except (OSError, TypeError):
        return
    found = removed_arguments_in(source)
    if found:
        line, name, argument, removal = found[0]
        raise PluginError(
            f"{owner} calls {name}(..., {argument}=...) at {path}:{line}, which plugin API {removal.version} "
            f"removed (installed: {API_VERSION}); {removal.replacement}."
        )


_UNEXPECTED = re.compile(r"(\w+)\.__init__\(\) got an unexpected keyword argument '(\w+)'")


def removed_declaration_argument(exc: TypeError) -> str | None:
    """The migration message for a ``TypeError`` raised by a declaration given an argument the API removed
    (``MethodSpec(renames=...)``), or None when the error is something else."""
    match = _UNEXPECTED.search(str(exc))
    if match is None:
        return None
    cls, argument = match.groups()
    removal = REMOVED_ARGUMENTS.get((cls, argument))
    if removal is None:
        return None
    return (
        f"{cls}({argument}=...) was removed in plugin API {removal.version} (installed: {API_VERSION}); "
        f"{removal.replacement}"
    )
