"""Judge prompts for the ``judge`` evaluator: templates the user can replace, and the question the judge sees.

A template is a text file with the placeholders ``{prompt}`` (the user's question), ``{answer_a}`` and
``{answer_b}`` (the two completions), each used at least once; write ``{{`` and ``}}`` for literal braces. A
line ``<<<system>>>`` starts the system message and a line ``<<<user>>>`` the user message; a file without
these marker lines is the user message alone (no system message). The built-in template
(``templates/pairwise.txt``) is a pairwise prompt in the MT-Bench style: it asks for a short comparison and
then ``[[A]]``, ``[[B]]`` or ``[[C]]`` for a tie.

The judge is shown each prompt as the data gave it (``EvalContext.source_prompts``): a plain-text prompt as it
is, a conversation by its last user message, never the policy's chat markup.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BUILTIN = Path(__file__).resolve().parent / "templates" / "pairwise.txt"
PLACEHOLDERS = ("prompt", "answer_a", "answer_b")
SYSTEM_MARK, USER_MARK = "<<<system>>>", "<<<user>>>"


@dataclass(frozen=True)
class Template:
    """A judge prompt: an optional system message and the user message, both with placeholders."""

    system: str | None
    user: str
    source: str  # the file it came from (for messages)

    @property
    def text(self) -> str:
        """Everything that shapes the prompt (part of the verdict cache's key)."""
        return f"{SYSTEM_MARK}\n{self.system or ''}\n{USER_MARK}\n{self.user}"

    def render(self, prompt: str, answer_a: str, answer_b: str) -> list[dict[str, str]]:
        """The chat messages asking the judge to compare ``answer_a`` and ``answer_b`` on ``prompt``."""
        values = {"prompt": prompt, "answer_a": answer_a, "answer_b": answer_b}
        messages = [{"role": "system", "content": self.system.format(**values)}] if self.system else []
        return [*messages, {"role": "user", "content": self.user.format(**values)}]


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def _split(text: str) -> tuple[str | None, str]:
    """(system, user) by the marker lines; ValueError for markers out of order or repeated."""
    lines = text.splitlines()
    marks = [(i, line.strip()) for i, line in enumerate(lines) if line.strip() in (SYSTEM_MARK, USER_MARK)]
    if not marks:
        return None, text.strip("\n")
    kinds = [kind for _, kind in marks]
    if kinds not in ([USER_MARK], [SYSTEM_MARK, USER_MARK]) or any(
        line.strip() for line in lines[: marks[0][0]]
    ):
        raise ValueError(
            f"use at most one {SYSTEM_MARK} line, then one {USER_MARK} line, with nothing before the "
            "first marker"
        )
    user = "\n".join(lines[marks[-1][0] + 1 :]).strip("\n")
    system = "\n".join(lines[marks[0][0] + 1 : marks[-1][0]]).strip("\n") if len(marks) == 2 else None
    return system or None, user


def parse_template(text: str, source: str) -> Template:
    """The template in ``text`` (from ``source``); ValueError (one line) for missing or unknown placeholders,
    stray braces or misplaced marker lines."""
    system, user = _split(text)
    try:
        used = _fields(user) | (_fields(system) if system else set())
    except ValueError as exc:  # "Single '}' encountered in format string"
        raise ValueError(f"{exc}; write {{{{ and }}}} for literal braces") from None
    unknown = sorted(used - set(PLACEHOLDERS))
    if unknown:
        raise ValueError(
            f"unknown placeholder {{{unknown[0]}}}; use only {{prompt}}, {{answer_a}} and {{answer_b}} "
            "(and {{ }} for literal braces)"
        )
    missing = [p for p in PLACEHOLDERS if p not in used]
    if missing:
        raise ValueError(
            f"placeholder {{{missing[0]}}} is missing; the template needs {{prompt}}, {{answer_a}} "
            "and {{answer_b}}"
        )
    if not user.strip():
        raise ValueError(f"the user message (after {USER_MARK}) is empty")
    return Template(system=system, user=user, source=source)


def load_template(path: str | None) -> Template:
    """The template in the file ``path`` (None: the built-in one); ValueError (one line)
    when it is unusable."""
    file = BUILTIN if path is None else Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read it ({type(exc).__name__}: {exc})".splitlines()[0]) from None
    return parse_template(text, str(file))


def question_text(prompt: Any) -> str:
    """The question the judge sees for one evaluation prompt as the data gave it: a string as it is; a message
    list by its last user message (the judge is not shown the policy's system prompt or chat markup)."""
    if not isinstance(prompt, list):
        return str(prompt)
    users = [m for m in prompt if isinstance(m, Mapping) and m.get("role") == "user"]
    content = (users or [m for m in prompt if isinstance(m, Mapping)] or [{}])[-1].get("content", "")
    if isinstance(content, list):  # multimodal parts: their text
        return " ".join(
            str(part.get("text", "")) if isinstance(part, Mapping) else str(part) for part in content
        )
    return "" if content is None else str(content)
