"""How a typed record part becomes JSON and back: :class:`Part`, the base of every record dataclass.

A part is a plain dataclass. :meth:`Part.to_dict` writes its fields in declaration order, under their own
names, leaving out fields that are None unless the part always writes them (:meth:`Part.always`: a key today's
records hold as ``null``, e.g. a reference evaluation's ``cache_dir``), then the keys it did not know when it
was read (:attr:`Part.extra`, so that a record read and written again keeps them). :meth:`Part.from_dict`
reads the same layout back, turning the fields named in :attr:`Part.PARTS` into parts (a list of dicts into a
list of parts). Values are taken as they are, never coerced: a metric written as ``1`` is read back as ``1``,
not ``1.0``.

:class:`MappingView` adds read-only ``record["key"]`` / ``record.get("key")`` access that returns what the
JSON file holds under that key (parts as dicts), for code written against the records' old dict form.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, TypeVar

P = TypeVar("P", bound="Part")


@dataclass
class Part:
    """A typed part of a trial record (see the module docstring). ``extra``:
    keys this version does not know."""

    #: Fields written even when they are None (their key is in every record, with a null value).
    ALWAYS: ClassVar[tuple[str, ...]] = ()
    #: Fields that hold a part (or a list of parts): field name -> part class.
    PARTS: ClassVar[dict[str, type[Part]]] = {}

    extra: dict[str, Any] = field(default_factory=dict, kw_only=True, repr=False)

    def always(self) -> set[str]:
        """The fields written even when None (:attr:`ALWAYS`; a part may widen it from its state)."""
        return set(self.ALWAYS)

    def written(self, name: str, value: Any) -> bool:
        """Whether field ``name`` (holding ``value``) is written."""
        return value is not None or name in self.always()

    def field_names(self) -> list[str]:
        """The fields that are keys of the JSON form, in order."""
        return [f.name for f in fields(self) if f.init and f.name != "extra" and not f.name.startswith("_")]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: the written fields (parts as dicts) in declaration order, then :attr:`extra`."""
        out = {
            name: plain(value)
            for name in self.field_names()
            if self.written(name, value := getattr(self, name))
        }
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls: type[P], data: Mapping[str, Any]) -> P:
        """The part a JSON object describes; unknown keys go to :attr:`extra`.

        :raises TypeError: ``data`` is not an object, or lacks a required field."""
        return cls._from_fields(data)

    @classmethod
    def _from_fields(cls: type[P], data: Mapping[str, Any]) -> P:
        if not isinstance(data, Mapping):
            raise TypeError(f"{cls.__name__} must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls) if f.init and f.name != "extra"}
        given: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in data.items():
            if key in known:
                given[key] = parse(cls.PARTS.get(key), value)
            else:
                extra[key] = value
        return cls(**given, extra=extra)


def plain(value: Any) -> Any:
    """``value`` in its JSON form: a part as its dict, a list of parts as a list of dicts,
    anything else as is."""
    if isinstance(value, Part):
        return value.to_dict()
    if isinstance(value, list) and any(isinstance(v, Part) for v in value):
        return [plain(v) for v in value]
    return value


def parse(kind: type[Part] | None, value: Any) -> Any:
    """``value`` read as a ``kind`` part (a list as a list of parts); None and untyped fields as they are."""
    if kind is None or value is None:
        return value
    if isinstance(value, list):
        return [kind.from_dict(v) for v in value]
    return kind.from_dict(value)


class MappingView(Mapping[str, Any]):
    """Read-only dict-style access to a part's JSON form: ``part["key"]``, ``part.get("key")``,
    ``in``, ``keys()``.

    Each value is what the JSON file holds under that key (a part as a dict, built on access; a change to it
    does not change the part). New code reads attributes; this view serves code written against the old
    dicts."""

    def _keys(self) -> list[str]:
        part: Any = self
        names = [n for n in part.field_names() if part.written(n, getattr(part, n))]
        return [*names, *part.extra]

    def _value(self, key: str) -> Any:
        part: Any = self
        if key in part.extra:
            return part.extra[key]
        if key in part.field_names() and part.written(key, value := getattr(part, key)):
            return plain(value)
        raise KeyError(key)

    def __getitem__(self, key: str) -> Any:
        return self._value(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())
