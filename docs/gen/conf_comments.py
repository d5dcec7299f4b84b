"""The keys of a commented config file of ``conf/`` with their values and comments,
for the settings reference.

Every key in ``conf/`` carries a comment saying what it means (a house rule), so a config file is
documentation already: this module reads it back as a tree of :class:`ConfKey` entries. Values come from
PyYAML (the exact defaults); comments from the text: a key's inline comment, plus the comment-only lines right
below it that are indented past the key (they continue that comment); a comment-only line at the key's own
indentation is a note on the enclosing group, and the comment lines opening the file describe the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][A-Za-z0-9_]*):(?P<rest>.*)$")
_SKIPPED = {"defaults", "_target_", "_recursive_", "hydra"}  # Hydra's own keys, not harness settings


@dataclass
class ConfKey:
    """One key of a config file: dotted name, default value, comment, children (a group)
    and notes on the group."""

    key: str
    default: Any
    help: str = ""
    children: list[ConfKey] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # comment lines inside a group, about the group

    @property
    def is_group(self) -> bool:
        """Whether the key holds other keys (a mapping with keys of its own in the file)."""
        return bool(self.children)


def _comment(text: str) -> str:
    """The comment part of a YAML line (outside quotes), without the ``#``; empty when there is none."""
    quote = None
    for i, char in enumerate(text):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or text[i - 1] in " \t"):
            return text[i + 1 :].strip()
    return ""


def _lookup(values: Any, path: list[str]) -> Any:
    for part in path:
        values = values.get(part) if isinstance(values, dict) else None
    return values


def read_conf(path: Path, prefix: str = "") -> tuple[str, list[ConfKey]]:
    """The file's opening comment and its top-level keys (``prefix.key``), each with its children."""
    lines = path.read_text(encoding="utf-8").splitlines()
    values = yaml.safe_load("\n".join(lines)) or {}
    intro: list[str] = []
    roots: list[ConfKey] = []
    stack: list[tuple[int, ConfKey]] = []  # (indentation, entry) of the open groups and the last key
    last: tuple[int, ConfKey, int] | None = None  # (indent, entry, column of its comment)
    skipping: int | None = None
    for line in lines:
        match = _KEY.match(line)
        stripped = line.strip()
        if match is None:
            if skipping is not None and line[: len(line) - len(line.lstrip())] != "":
                continue
            if stripped.startswith("#"):
                _attach_comment(line, stripped[1:].strip(), last, stack, intro, roots)
            continue
        indent = len(match["indent"])
        if skipping is not None and indent > skipping:
            continue
        skipping = None
        if indent == 0 and match["key"] in _SKIPPED:
            skipping = 0
            continue
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path_parts = [e.key.rsplit(".", 1)[-1] for _, e in stack] + [match["key"]]
        dotted = ".".join(([prefix] if prefix else []) + path_parts)
        entry = ConfKey(dotted, _lookup(values, path_parts), _comment(match["rest"]))
        (stack[-1][1].children if stack else roots).append(entry)
        stack.append((indent, entry))
        last = (indent, entry, line.find("#", len(match["indent"]) + len(match["key"])))
    return " ".join(intro), roots


def _attach_comment(line, text, last, stack, intro, roots) -> None:
    """A comment-only line continues the last key's comment, notes its group, or (before any key) the file."""
    column = line.find("#")
    if last is None:
        if not roots:
            intro.append(text)
        return
    indent, entry, comment_column = last
    if column > indent and comment_column > 0 and column >= comment_column - 2:
        entry.help = f"{entry.help} {text}".strip()
        return
    parent = next((e for i, e in reversed(stack) if i < column and e.is_group), None)
    if parent is not None:
        parent.notes.append(text)
    else:
        intro.append(text)


def flatten(entries: list[ConfKey]) -> list[ConfKey]:
    """Every key of the tree, depth first (groups before their children)."""
    out: list[ConfKey] = []
    for entry in entries:
        out.append(entry)
        out.extend(flatten(entry.children))
    return out
