"""What a plugin hands to the harness: the description of a method or an evaluator.

Plugins return these from the registration hooks in :mod:`harness.plugin.hookspecs`. They are plain frozen
dataclasses so that the core can list, validate and document them without knowing any method by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from harness.evaluation.context import EvalContext
    from harness.trial.context import TrainContext

DataKind = Literal["pairwise", "unpaired", "prompts"]
ModelKind = Literal["policy", "reward_model"]


@dataclass(frozen=True)
class MethodSpec:
    """A training method, as registered by a plugin.

    Attributes:
        name: the value users pass as ``method=<name>``.
        train: ``train(ctx) -> None``; trains ``ctx.policy`` on ``ctx.train_data`` and calls
            ``ctx.callbacks`` (checkpointing, NaN detection, progress) through the trainer it builds.
        data_kind: "pairwise" (prompt/chosen/rejected), "unpaired" (prompt/completion/label) or "prompts"
            (online methods that sample their own completions: the distinct prompts of the data). Pairwise data
            is converted automatically for unpaired and prompt-only methods.
        models_in_memory: how many full models the method holds while training (policy, reference,
            reward, value): the seed's "Compute" column, checked by the measured peak memory. A number, or
            ``models_in_memory(cfg) -> int`` of the trial's config when it depends on it (fewer with LoRA, whose
            reference is the policy with its adapter disabled: see :func:`separate_reference`).
        needs_reference: whether a frozen reference model must be loaded for training.
        defaults: the method's default config (``conf/method/<name>.yaml`` for built-ins). Used to
            register the config group entry when no YAML file provides one.
        search_space: suggested sweep space in Hydra's sweeper syntax, e.g.
            ``{"beta": "tag(log, interval(0.01, 0.5))"}`` (keys are relative to ``method``).
        lr_range: sane learning-rate range for real models (from the seed), used by health checks.
        config_class: import path (``"package.module:Class"``) of the config dataclass whose fields may be
            set under ``method.trl``; unknown keys there are rejected before any compute. A path rather than
            the class so that registering a method does not import its trainer library. ``None``: no such
            class (``method.trl`` must then be empty).
        validate: ``validate(method_cfg) -> None``; raises :class:`harness.errors.ConfigError` for a
            value out of range. Called before any compute.
        description: one line shown in listings and the leaderboard.
        produces: what ``train`` returns: a ``"policy"`` (a causal LM, evaluated by ``eval.evaluators`` against
            the reference model) or a ``"reward_model"`` (a one-output sequence classifier, evaluated by the
            evaluators that apply to reward models, with no reference baseline).
    """

    name: str
    train: Callable[[TrainContext], None]
    data_kind: DataKind = "pairwise"
    models_in_memory: int | Callable[[Any], int] = 2
    needs_reference: bool = True
    defaults: Mapping[str, Any] = field(default_factory=dict)
    search_space: Mapping[str, str] = field(default_factory=dict)
    lr_range: tuple[float, float] = (5e-7, 5e-6)
    config_class: str | None = None
    validate: Callable[[Any], None] | None = None
    description: str = ""
    produces: ModelKind = "policy"

    def count_models(self, cfg: Any) -> int:
        """How many full models the method holds in memory for the trial configured by ``cfg``."""
        n = self.models_in_memory
        return int(n(cfg) if callable(n) else n)


def separate_reference(cfg: Any) -> int:
    """1 when the trial's reference is a model of its own, 0 with LoRA (the policy with its adapter disabled):
    a term for :attr:`MethodSpec.models_in_memory` functions."""
    return 0 if cfg.model.get("lora") else 1


@dataclass(frozen=True)
class EvaluatorSpec:
    """A checkpoint evaluator, as registered by a plugin.

    Attributes:
        name: the value listed in ``eval.evaluators``.
        evaluate: ``evaluate(ctx) -> dict[str, float]``; metrics for the checkpoint in ``ctx``. Shared,
            expensive artefacts (policy samples, reference log-probabilities) come from ``ctx``, which
            computes each once per checkpoint.
        description: one line for listings.
        applies_to: the kind of model it evaluates: ``"policy"`` (listed in ``eval.evaluators``) or
            ``"reward_model"`` (run on every checkpoint of a method that produces a reward model).
    """

    name: str
    evaluate: Callable[[EvalContext], Mapping[str, float]]
    description: str = ""
    applies_to: ModelKind = "policy"
