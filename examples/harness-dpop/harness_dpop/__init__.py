"""harness-dpop: an example third-party plugin package for the harness.

The harness imports this module through the ``harness.plugins`` entry point (see ``pyproject.toml``) and calls
the hook functions below, marked with :data:`harness.plugin.hookimpl`:

* ``harness_methods_register``: the methods ``dpop`` (:mod:`harness_dpop.method`, loss in
  :mod:`harness_dpop.loss`; its own torch loop) and ``rdpo`` (:mod:`harness_dpop.rdpo`: a loss function on the
  harness's pairwise-loss extension point, trained on TRL's DPOTrainer by the harness);
* ``harness_evaluators_register``: the evaluator ``repetition`` (:mod:`harness_dpop.repetition`);
* ``harness_config_searchpath``: the folder holding ``method/dpop.yaml``, the method's commented config.

Everything comes from :mod:`harness.plugin`, the harness's public plugin API.
"""

from __future__ import annotations

from harness.plugin import EvaluatorSpec, MethodSpec, hookimpl
from harness_dpop import rdpo
from harness_dpop.method import method_spec
from harness_dpop.repetition import evaluator_spec

__version__ = "0.1.0"


@hookimpl
def harness_methods_register() -> list[MethodSpec]:
    """The ``dpop`` and ``rdpo`` methods."""
    return [method_spec(), rdpo.method_spec()]


@hookimpl
def harness_evaluators_register() -> list[EvaluatorSpec]:
    """The ``repetition`` evaluator."""
    return [evaluator_spec()]


@hookimpl
def harness_config_searchpath() -> list[str]:
    """Hydra config folders of this package: ``harness_dpop/conf`` (``method/dpop.yaml``)."""
    return ["pkg://harness_dpop.conf"]
