"""harness: run preference-alignment methods side by side, evaluate every checkpoint, rank them.

Public API for plugin authors: :data:`hookimpl` (mark hook implementations), :class:`MethodSpec` and
:class:`EvaluatorSpec` (what registration hooks return), and :class:`TrainContext` (what a method trains
with).
"""

from harness.plugin.hookspecs import hookimpl
from harness.plugin.specs import EvaluatorSpec, MethodSpec

__all__ = ["EvaluatorSpec", "MethodSpec", "TrainContext", "hookimpl"]
__version__ = "0.1.0"


def __getattr__(name: str):
    if name == "TrainContext":  # imported lazily: it pulls in torch and transformers
        from harness.trial.context import TrainContext

        return TrainContext
    raise AttributeError(name)
