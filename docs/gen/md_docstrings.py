"""Docstrings and signatures as Markdown, for the reference pages generated from the code.

The harness's docstrings are reST-flavoured (``code``, :class:`roles`, ``:param x:`` fields, as pytest's
hookspecs are) or Google-flavoured (``Attributes:`` sections, as TRL's configs are). This module turns both
into Markdown without a docstring library: roles become code (a link when the name has an entry in the
reference), field lists and sections become bullet lists, and text outside code is escaped where Markdown
would read it as markup.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from collections.abc import Callable
from typing import Any

_ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|exc|obj|ref):`(~?)([^`]+)`")
_FIELD = re.compile(r"^:(param|parameter|arg|returns?|return|raises?|yields?)\s*([^:]*):\s*(.*)$")
_SECTION = re.compile(
    r"^(Attributes|Args|Arguments|Parameters|Returns|Raises|Yields|Example|Examples|Note):\s*$"
)
_ENTRY = re.compile(r"^(\*{0,2}[A-Za-z_]\w*(?:, \*{0,2}[A-Za-z_]\w*)*)(\s*\([^)]*\))?:\s*(.*)$")

Linker = Callable[[str], str | None]  # a dotted or plain name -> the URL of its entry, or None


def _escape(text: str) -> str:
    """Escape what Markdown would take for markup in prose (not in code spans or ``*emphasis*``): ``<``, a
    stray ``*`` and a leading ``#``."""
    parts = re.split(r"(`[^`]*`|(?<![\w*])\*\w[^*\n]*?\w\*(?![\w*]))", text)
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("<", "&lt;").replace("*", r"\*")
    out = "".join(p.replace("<", "&lt;") if i % 2 and p.startswith("*") else p for i, p in enumerate(parts))
    return "\\" + out if out.lstrip().startswith("#") else out


def inline(text: str, link: Linker) -> str:
    """One paragraph's inline markup: roles to code (linked when known), ````x````
    to ```x```, prose escaped."""

    def role(match: re.Match[str]) -> str:
        target = match[2].strip()
        shown = target.rsplit(".", 1)[-1] if match[1] else target
        url = link(target) or link(target.rsplit(".", 1)[-1])
        return f"[`{shown}`]({url})" if url else f"`{shown}`"

    text = text.replace("``", "`")
    return _escape(_ROLE.sub(role, text))


def _entries(lines: list[str]) -> list[tuple[str, str]]:
    """``name: text`` entries of a Google-style section (continuation lines are indented deeper)."""
    out: list[tuple[str, str]] = []
    base = min((len(x) - len(x.lstrip()) for x in lines if x.strip()), default=0)
    for line in lines:
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        match = _ENTRY.match(line.strip())
        if indent == base and match:
            out.append((match[1], match[3]))
        elif out:
            out[-1] = (out[-1][0], f"{out[-1][1]} {line.strip()}")
        else:
            out.append(("", line.strip()))
    return out


def _fields(block: list[str]) -> list[tuple[str, str, str]]:
    """``:param x: text`` fields (with their continuation lines) as (kind, name, text)."""
    out: list[tuple[str, str, str]] = []
    for line in block:
        match = _FIELD.match(line.strip())
        if match:
            out.append((match[1], match[2].strip(), match[3]))
        elif out and line.strip():
            kind, name, text = out[-1]
            out[-1] = (kind, name, f"{text} {line.strip()}")
    return out


def _render_fields(fields: list[tuple[str, str, str]], link: Linker) -> list[str]:
    out: list[str] = []
    params = [(n, t) for k, n, t in fields if k in ("param", "parameter", "arg")]
    if params:
        out += ["**Parameters**", ""] + [f"- `{n}`: {inline(t, link)}" for n, t in params] + [""]
    for kind, name, text in fields:
        if kind.startswith("return") or kind.startswith("yield"):
            out += [f"**Returns:** {inline(text, link)}", ""]
        elif kind.startswith("raise"):
            out += [f"**Raises** `{name}`: {inline(text, link)}", ""]
    return out


def to_markdown(doc: str | None, link: Linker = lambda name: None) -> str:
    """A cleaned docstring (``inspect.getdoc``) as Markdown."""
    if not doc:
        return ""
    lines = inspect.cleandoc(doc).splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        section = _SECTION.match(line.strip())
        if _FIELD.match(line.strip()):
            j = i
            while j < len(lines) and (lines[j].strip() == "" or not _SECTION.match(lines[j].strip())):
                j += 1
            out += _render_fields(_fields(lines[i:j]), link)
            i = j
        elif section and line == line.lstrip():
            j = i + 1
            while j < len(lines) and (not lines[j].strip() or lines[j].startswith((" ", "\t"))):
                j += 1
            out += [f"**{section[1]}**", ""]
            entries = _entries(lines[i + 1 : j])
            out += [f"- `{n}`: {inline(t, link)}" if n else f"- {inline(t, link)}" for n, t in entries]
            out.append("")
            i = j
        else:
            out.append(inline(line.strip(), link) if line.strip() else "")
            i += 1
    return "\n".join(out).strip() + "\n"


def _annotation(value: Any) -> str:
    if value is inspect.Parameter.empty:
        return ""
    return value if isinstance(value, str) else inspect.formatannotation(value)


def _defaults_of(obj: Any) -> dict[str, str]:
    """Dataclass fields whose default is a factory, shown as what the factory makes
    (``{}`` rather than ``<factory>``)."""
    if not (inspect.isclass(obj) and dataclasses.is_dataclass(obj)):
        return {}
    return {
        f.name: repr(f.default_factory())
        for f in dataclasses.fields(obj)
        if f.default_factory is not dataclasses.MISSING
    }


def signature(obj: Any, name: str, method: bool = False) -> str | None:
    """``name(params) -> returns`` with annotations as written in the code (a method's ``self`` or ``cls``
    left out); None when there is no signature."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    if method and sig.parameters and next(iter(sig.parameters)) in ("self", "cls"):
        sig = sig.replace(parameters=list(sig.parameters.values())[1:])
    factories = _defaults_of(obj)
    params, star_done = [], False
    for p in sig.parameters.values():
        if p.kind is p.KEYWORD_ONLY and not star_done:
            params.append("*")
        star_done = star_done or p.kind in (p.KEYWORD_ONLY, p.VAR_POSITIONAL)
        text = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "") + p.name
        if _annotation(p.annotation):
            text += f": {_annotation(p.annotation)}"
        if p.default is not p.empty:
            text += " = " + factories.get(p.name, repr(p.default))
        params.append(text)
    ret = f" -> {_annotation(sig.return_annotation)}" if _annotation(sig.return_annotation) else ""
    one_line = f"{name}({', '.join(params)}){ret}"
    if len(one_line) <= 100:
        return one_line
    return f"{name}(\n" + "".join(f"    {p},\n" for p in params) + f"){ret}"
