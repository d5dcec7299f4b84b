"""The fenced code blocks of the manual, how each one is to be run, and the commands inside them.

Every fenced ``bash``/``sh``/``shell``/``console``/``python``/``py`` block of ``docs/`` and ``README.md`` is
run by a test unless the line right before its opening fence is a marker (docs/contributing.md):

- ``<!-- run in the slow tier -->``: run by ``tests/test_docs.py`` in the slow tier;
- ``<!-- run by: tests/test_x.py::test_name -->`` (or ``.ci/run``): an existing test runs the same command;
- ``<!-- not run here: reason -->``: it cannot run here, and says why.

This module only reads: it finds the blocks and their markers, and splits shell blocks into commands, so the
docs test can check the rule without running anything and then run what it must.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

GOVERNED = {"bash", "sh", "shell", "console", "python", "py"}
_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_MARKER = re.compile(r"^<!--\s*(?P<body>.*?)\s*-->$")
_FILE_SNIPPET = re.compile(r"^#\s*(?P<path>[\w./-]+\.py)\b")
SETUP = ("pip install", "pip3 install", "python3 -m venv", "python -m venv")


@dataclass(frozen=True)
class Snippet:
    """One fenced block: where it is, its language and text, and the marker before it (if any)."""

    path: Path
    line: int  # the opening fence's line, from 1
    lang: str
    text: str
    marker: str | None = None

    @property
    def where(self) -> str:
        """``file:line`` for messages and test ids."""
        return f"{self.path.as_posix()}:{self.line}"

    @property
    def governed(self) -> bool:
        """Whether the snippet rule applies (a shell, console or Python block)."""
        return self.lang in GOVERNED

    @property
    def tier(self) -> str:
        """``default``, ``slow``, ``run-by`` or ``not-run`` (``bad`` for a marker that says none of these)."""
        if self.marker is None:
            return "default"
        if self.marker == "run in the slow tier":
            return "slow"
        if self.marker.startswith("run by:") and self.marker.split(":", 1)[1].strip():
            return "run-by"
        if self.marker.startswith("not run here:") and self.marker.split(":", 1)[1].strip():
            return "not-run"
        return "bad"

    @property
    def detail(self) -> str:
        """The reason (not run here) or the target (run by)."""
        return (self.marker or "").split(":", 1)[1].strip() if ":" in (self.marker or "") else ""

    @property
    def file_path(self) -> str | None:
        """For a Python block whose first line names a file (``# my_pkg/rdpo.py: ...``), that file."""
        match = _FILE_SNIPPET.match(self.text.splitlines()[0]) if self.lang in ("python", "py") else None
        return match["path"] if match else None


def read_snippets(path: Path, root: Path) -> list[Snippet]:
    """Every fenced block of a Markdown file (``path``, named relative to ``root``)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out: list[Snippet] = []
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        fence, indent = match["fence"], len(match["indent"])
        end = i + 1
        while end < len(lines) and not lines[end].strip().startswith(fence[0] * len(fence)):
            end += 1
        body = "\n".join(
            line[indent:] if line[:indent].strip() == "" else line for line in lines[i + 1 : end]
        )
        before = _MARKER.match(lines[i - 1].strip()) if i > 0 else None
        lang = (match["info"].strip().split() or [""])[0].lower()
        out.append(Snippet(path.relative_to(root), i + 1, lang, body, before["body"] if before else None))
        i = end + 1
    return out


def manual_snippets(root: Path) -> list[Snippet]:
    """The blocks of every page under ``docs/`` and of ``README.md``."""
    pages = [root / "README.md", *sorted((root / "docs").rglob("*.md"))]
    return [s for page in pages if page.exists() for s in read_snippets(page, root)]


@dataclass
class Command:
    """One command of a shell block: its environment additions and its words."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    line: str = ""  # the logical line it came from, continuations joined

    @property
    def is_setup(self) -> bool:
        """A line that sets up the environment the tests already run in (venv, activate, pip install)."""
        return self.argv[0] in (".", "source") or " ".join(self.argv).startswith(SETUP)

    @property
    def module(self) -> str | None:
        """For ``python -m <module> ...``, the module."""
        if len(self.argv) >= 3 and self.argv[0] in ("python", "python3") and self.argv[1] == "-m":
            return self.argv[2]
        return None

    @property
    def args(self) -> list[str]:
        """The arguments after ``python -m <module>``."""
        return self.argv[3:] if self.module else []


def logical_lines(text: str) -> list[str]:
    """The block's lines with ``\\`` continuations joined, blank lines and whole-line comments dropped."""
    out: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        if line and not line.startswith("#"):
            out.append(line)
    return out


def shell_commands(text: str) -> list[Command]:
    """The commands of a shell block, in order: ``&&`` splits a line; ``VAR=value`` prefixes and ``export``
    lines set the environment of the commands after them."""
    out: list[Command] = []
    exported: dict[str, str] = {}
    for line in logical_lines(text):
        words = shlex.split(line, comments=True)
        parts: list[list[str]] = [[]]
        for word in words:
            if word == "&&":
                parts.append([])
            else:
                parts[-1].append(word)
        for part in filter(None, parts):
            if part[0] == "export":
                exported.update(dict(w.split("=", 1) for w in part[1:] if "=" in w))
                continue
            env = dict(exported)
            while part and re.match(r"^[A-Z_][A-Z0-9_]*=", part[0]):
                key, value = part.pop(0).split("=", 1)
                env[key] = value
            if part:
                out.append(Command(part, env, line))
    return out


def console_commands(text: str) -> list[tuple[str, list[str]]]:
    """A console block as ``(command line, expected output lines)`` pairs (``$ `` starts a command)."""
    out: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("$ "):
            out.append((line[2:].strip(), []))
        elif out and line.strip():
            out[-1][1].append(line.rstrip())
    return out


def override_key(arg: str) -> str | None:
    """The config key an override sets (``+method.x=1`` -> ``method.x``); None for a flag or a bare word."""
    if arg.startswith("-") or "=" not in arg:
        return None
    return arg.split("=", 1)[0].lstrip("+~")
