"""A core setting's declaration (:class:`Setting`) and the settings of one config node
(:class:`SettingsGroup`).

A :class:`Setting` is a plugin's :class:`~harness.plugin.settings.Option` (default, help, bounds, choices,
nullable, types) with the sentence its error ends with and, where those cannot say it, a check of its own; a
:class:`SettingsGroup` checks a config node against its settings and gives Hydra their defaults. The
declarations themselves, and why Hydra holds only the defaults, are :mod:`harness.config.declared`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from harness.errors import ConfigError
from harness.plugin.settings import Option


def _is_interpolation(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("${") and value.endswith("}")


@dataclass(frozen=True)
class Setting(Option):
    """A core setting: an :class:`~harness.plugin.settings.Option` whose error line can say what
    to write instead.

    Attributes:
        fix: the end of the error line (``<key>=<value> is invalid; <fix>.``), e.g. ``use all or final``;
            empty: the problem found (``it must be an integer``).
        check: a further check of a value that the declared type, bounds and choices accept; returns the
            problem (None when there is none), or raises a :class:`~harness.errors.ConfigError` with a line of
            its own (a check shared with another reader of the setting, e.g. the leaderboard's
            ``matched_kl``).

    A default may be an interpolation (``${leaderboard.kl_budget}``):
    it takes another key's value, checked there.
    """

    fix: str = ""
    check: Callable[[Any], str | None] | None = field(default=None, compare=False, repr=False)

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not acceptable (None when it is): the declared checks, then :attr:`check`."""
        if _is_interpolation(value):
            return None
        found = super().problem(value)
        if found is None and value is not None and self.check is not None:
            found = self.check(value)
        return found

    def error(self, key: str, value: Any) -> str | None:
        """The one-line error for ``value`` set at ``key`` (None when it is acceptable)."""
        found = self.problem(value)
        return None if found is None else f"{key}={value!r} is invalid; {self.fix or found}."


@dataclass(frozen=True)
class SettingsGroup:
    """The settings of one config node.

    Attributes:
        key: the node's dotted key (``"train"``, ``"eval.selection"``, ``"hydra.sweeper"``; ``""``:
            the top level).
        help: one line saying what the node is for.
        options: its settings, in the order the config lists them.
        groups: its sub-nodes (``eval.selection`` in ``eval``), each with its own full key.
    """

    key: str
    help: str
    options: tuple[Option, ...]
    groups: tuple[SettingsGroup, ...] = ()

    def full_key(self, name: str) -> str:
        """The dotted key of the setting ``name`` of this node."""
        return f"{self.key}.{name}" if self.key else name

    def defaults(self) -> dict[str, Any]:
        """The node's default values (sub-nodes nested), as Hydra stores them: fresh copies, in order."""
        node = {o.name: copy.deepcopy(o.default) for o in self.options}
        for group in self.groups:
            node[group.key.rsplit(".", 1)[-1]] = group.defaults()
        return node

    def option(self, name: str) -> Option | None:
        """The declaration of the setting ``name`` of this node (None when there is none)."""
        return next((o for o in self.options if o.name == name), None)

    def walk(self) -> Iterator[tuple[str, Option]]:
        """``(full key, declaration)`` of every setting, sub-nodes included."""
        for option in self.options:
            yield self.full_key(option.name), option
        for group in self.groups:
            yield from group.walk()

    def check(self, node: Mapping[str, Any] | DictConfig | None, skip: Collection[str] = ()) -> None:
        """Check every declared setting that ``node`` holds (sub-nodes included; keys in ``skip`` and missing
        values left out) against its declaration.

        :raises ConfigError: the first invalid value, in one line naming the key, the value and the fix.
        """
        if node is None:
            return
        for option in self.options:
            if option.name in skip or option.name not in node or _missing(node, option.name):
                continue
            value = plain(node[option.name])
            line = (
                option.error(self.full_key(option.name), value)
                if isinstance(option, Setting)
                else _option_error(self.full_key(option.name), value, option)
            )
            if line is not None:
                raise ConfigError(line)
        for group in self.groups:
            name = group.key.rsplit(".", 1)[-1]
            sub = node.get(name) if name in node else None
            if isinstance(sub, (Mapping, DictConfig)):
                group.check(sub, skip)


def _option_error(key: str, value: Any, option: Option) -> str | None:
    found = option.problem(value)
    return None if found is None else f"{key}={value!r} is invalid; {found}."


def _missing(node: Mapping[str, Any] | DictConfig, name: str) -> bool:
    return isinstance(node, DictConfig) and OmegaConf.is_missing(node, name)


def plain(value: Any) -> Any:
    """A config value as plain Python (lists and mappings of an OmegaConf node resolved and converted)."""
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    return value
