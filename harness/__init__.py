"""harness: run preference-alignment methods side by side, evaluate every checkpoint, rank them.

The plugin API is :mod:`harness.plugin`; its names are re-exported here, so ``from harness import MethodSpec,
hookimpl`` works as well as ``from harness.plugin import ...``. Like there, names that pull in torch are
imported on first use.
"""

from __future__ import annotations

from typing import Any

from harness import plugin as _plugin

__all__ = list(_plugin.__all__)
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in __all__ or name in _plugin.versions.REMOVED_NAMES:  # a removed name says what replaced it
        return getattr(_plugin, name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")
