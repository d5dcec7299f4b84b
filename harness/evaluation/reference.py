"""The reference model as evaluation reaches it: :class:`Reference` (kept in memory, loaded on demand per
checkpoint, or the policy with its LoRA adapter disabled)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch


class Reference:
    """Access to the reference model for evaluation.

    Either a loaded model that stays in memory (methods that train against a reference hold it anyway), a
    loader called at most once per checkpoint evaluation and released afterwards (reference-free methods, so
    that the measured training memory is the method's own; see :meth:`held`), or the policy itself with its
    LoRA adapter disabled.
    """

    def __init__(
        self, model: torch.nn.Module | None = None, loader: Callable[[], torch.nn.Module] | None = None
    ) -> None:
        self._model = model
        self._loader = loader
        self._loaded: torch.nn.Module | None = None
        self._holding = False

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Within this block, a loaded-on-demand reference is loaded at most once (on first use) and kept;
        it is released at the end. Wrap one checkpoint's evaluation in it."""
        self._holding = True
        try:
            yield
        finally:
            self._holding = False
            self._loaded = None

    @contextlib.contextmanager
    def use(self, policy: torch.nn.Module) -> Iterator[torch.nn.Module]:
        """Yield a module computing the reference distribution for ``policy``'s evaluation."""
        if self._model is not None:
            yield self._model
        elif self._loader is not None:
            model = self._loaded or self._loader()
            if self._holding:
                self._loaded = model
            try:
                yield model
            finally:
                del model
        elif hasattr(policy, "disable_adapter"):  # a peft model: the base weights are the reference
            with policy.disable_adapter():
                yield policy
        else:
            raise RuntimeError("no reference model available for evaluation")
