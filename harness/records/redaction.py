"""Secrets kept out of everything the harness prints or writes: messages, trial records, reports, trackers.

This module owns :func:`redact` (one text) and :func:`redact_value` (a nested config or record). What counts
as a secret:

- the password of a URL's credentials (``http://user:KEY@host/v1`` -> ``http://user:***@host/v1``; a bare user
  name, as in ``postgresql://user@host/db``, is not a secret and stays);
- a query parameter named like a key (``?api_key=...``, ``&token=...``, ``&sig=...``);
- ``name=value`` or ``name: value`` where the name is a key's (``api_key``, ``access_token``, ``hf_token``,
  ``secret``, ``password``, ...; not ``api_key_env``, which names a variable, nor ``pad_token``);
- tokens of a known shape wherever they stand: OpenAI/Anthropic ``sk-...``, Hugging Face ``hf_...``, GitHub
  ``ghp_...``/``github_pat_...``, AWS ``AKIA...``, Slack ``xox?-...``, Google ``AIza...``, ``Bearer ...``;
- in a mapping, the value of a key named like a key's.

Each is replaced by ``***`` (the rest of the text stays, so a message still says what was wrong and where).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MASK = "***"

_SECRET_NAME = (
    r"(?:api[_-]?key|access[_-]?token|auth[_-]?token|hf[_-]?token|secret(?:[_-]?key)?|password|passwd)"
)
_NAME_ONLY = re.compile(rf"^(?:[\w-]*[._-])?{_SECRET_NAME}$", re.IGNORECASE)

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # scheme://user:password@host -> scheme://user:***@host
    (re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@'\"]+:)([^/\s@'\"]+)(@)"), rf"\g<1>{MASK}\g<3>"),
    # ?api_key=... &token=... &sig=...
    (
        re.compile(
            r"([?&](?:api[_-]?key|key|token|access_token|password|secret|sig|signature)=)([^&#\s'\"]+)"
        ),
        rf"\g<1>{MASK}",
    ),
    # api_key=..., "password": "...", hf_token: ...
    (
        re.compile(
            rf"((?<![\w-])(?:[\w-]*[._-])?{_SECRET_NAME}['\"]?\s*[=:]\s*['\"]?)(?!\*\*\*)([^\s,'\"}}&]+)",
            re.IGNORECASE,
        ),
        rf"\g<1>{MASK}",
    ),
    # tokens of a known shape
    (
        re.compile(
            r"\b(?:sk-[A-Za-z0-9_-]{16,}|hf_[A-Za-z0-9]{20,}|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}"
            r"|AKIA[0-9A-Z]{16}|xox[baprs]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35})"
        ),
        MASK,
    ),
    (re.compile(r"(\bBearer\s+)[A-Za-z0-9._~+/-]+=*"), rf"\g<1>{MASK}"),
)


def redact(text: str) -> str:
    """``text`` with every secret it holds (see the module docstring) replaced by ``***``."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def is_secret_name(name: str) -> bool:
    """Whether a config or record key names a secret (``api_key``, ``judge.password``; not
    ``api_key_env``)."""
    return bool(_NAME_ONLY.match(name))


def redact_value(value: Any) -> Any:
    """``value`` (strings, mappings, lists, tuples; anything else as it is) with every secret replaced:
    strings through :func:`redact`, and the string value of a key that names a secret
    (:func:`is_secret_name`) by ``***``. Returns new containers; ``value`` is not modified."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {
            key: (MASK if isinstance(item, str) and item and is_secret_name(str(key)) else redact_value(item))
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return type(value)(redact_value(item) for item in value)
    return value
