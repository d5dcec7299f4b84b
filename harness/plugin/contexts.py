"""The types a plugin's functions receive: :class:`TrainContext` (a method's ``train``) and
:class:`EvalContext` (an evaluator's ``evaluate``), as protocols of the plugin API.

They live here, with the API, so that the declarations (:mod:`harness.plugin.specs`) name them without
importing the runtime (no import circle, not even one of type-only imports): the trial runner builds
:class:`harness.trial.context.TrainContext` and :class:`harness.evaluation.context.EvalContext`, which satisfy
these protocols (a test checks that each protocol member exists there and the other way round). Annotate a
plugin's functions with these: ``def train(ctx: TrainContext) -> torch.nn.Module``. Attributes are read-only
here (but ``steps_done``, which the harness's own trainer callback counts): a plugin reads them; the harness
sets them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    import torch
    from omegaconf import DictConfig
    from transformers import Trainer

    from harness.evaluation.refcache import RefCache
    from harness.evaluation.sampling import Samples, TokenLogprobs

T = TypeVar("T")

# A programmatic ("gold") reward: scores completions of prompts; higher is better.
RewardFunction = Callable[[Sequence[str], Sequence[str]], Sequence[float]]


class TrainContext(Protocol):
    """Everything one trial's training needs, handed to a method's ``train(ctx)``;
    it returns the trained model.

    A method on a transformers/TRL trainer builds it with :meth:`trl_trainer` and trains it with
    :meth:`run_trainer`; a method with its own loop calls :meth:`plan` once, trains :meth:`trainable_policy`
    and calls :meth:`step` after every optimizer step.
    """

    @property
    def cfg(self) -> DictConfig:
        """The trial's composed config."""

    @property
    def spec(self) -> Any:
        """The method's :class:`harness.plugin.MethodSpec`."""

    @property
    def method_cfg(self) -> DictConfig:
        """The ``method`` node of the config: the common knobs, the method's hyperparameters, ``trl``."""

    @property
    def tokenizer(self) -> Any:
        """The model's tokenizer (a pad token set, left padding)."""

    @property
    def policy(self) -> torch.nn.Module:
        """The model to train, as loaded (with LoRA, TRL trainers apply ``peft_config``; see
        :meth:`trainable_policy`)."""

    @property
    def reference(self) -> torch.nn.Module | None:
        """The frozen reference model when the method needs one and LoRA is off; else None (with LoRA the
        reference is the policy with its adapter disabled)."""

    @property
    def peft_config(self) -> Any:
        """The LoRA config (``model.lora``), or None."""

    @property
    def train_data(self) -> Any:
        """The training ``datasets.Dataset``, in the method's ``data_kind``."""

    @property
    def eval_data(self) -> Any:
        """The held-out ``datasets.Dataset`` in the method's ``data_kind``, or None."""

    @property
    def output_dir(self) -> Path:
        """A scratch directory for the trainer (the harness saves checkpoints elsewhere)."""

    @property
    def device(self) -> torch.device:
        """Where to train."""

    @property
    def precision(self) -> str:
        """``"fp32"``, ``"bf16"`` or ``"fp16"``."""

    @property
    def checkpointer(self) -> Any:
        """Takes and evaluates checkpoints (driven by :meth:`trainer_callbacks` or :meth:`step`)."""

    @property
    def log_history(self) -> list[dict[str, Any]]:
        """The logged losses and step statistics, written to the trial record."""

    #: Optimizer steps taken so far (the harness counts them: :meth:`step`, :meth:`trainer_callbacks`).
    steps_done: int

    @property
    def prepared_data(self) -> dict[str, Any] | None:
        """Whether :meth:`trl_trainer` prepared the trainer's data or read it from the harness
        cache (else None)."""

    @property
    def reference_pass(self) -> dict[str, Any] | None:
        """Whether :meth:`trl_trainer` computed the reference's log-probs or read them from the
        cache (else None)."""

    def training_arguments(self) -> dict[str, Any]:
        """Keyword arguments for any ``transformers.TrainingArguments`` subclass: the common knobs and what
        the harness manages (output directory, seeds, logging, precision, no saving or evaluation)."""

    def tracking_arguments(self) -> dict[str, Any]:
        """The trainer's ``report_to`` (``tracking.report_to``) and, when it reports anywhere,
        the trial's run."""

    def trl_config(self, config_class: type | None = None, **fixed: Any) -> Any:
        """The method's trainer config: :meth:`training_arguments`, the hyperparameters' fields, ``fixed``,
        then ``method.trl``."""

    def trl_trainer(
        self, trainer_class: type | None = None, config_class: type | None = None, **arguments: Any
    ) -> Any:
        """A transformers/TRL trainer on the policy, :meth:`trl_config`, the data, the tokenizer, the LoRA
        config and the harness callbacks; ``arguments`` add or replace any of them (``ref_model=``, ...)."""

    def trainer_callbacks(self) -> list[Any]:
        """Callbacks to pass to a transformers/TRL trainer so that the harness sees every step."""

    def run_trainer(self, trainer: Trainer) -> torch.nn.Module:
        """Train a transformers/TRL ``trainer`` under the harness and return the trained model."""

    def plan(self, total_steps: int) -> None:
        """Own loop: announce the planned number of optimizer steps once, before training."""

    def step(self, step: int, model: torch.nn.Module, loss: float | None = None, **stats: Any) -> None:
        """Own loop: call after each optimizer step (the loss is checked and logged with ``stats``;
        checkpoints are taken and evaluated when due)."""

    def trainable_policy(self) -> torch.nn.Module:
        """Own loop: the policy to train, wrapped with its LoRA adapter when the trial has one."""


class ReferenceModel(Protocol):
    """Access to the reference model while evaluating (:attr:`EvalContext.reference`)."""

    def use(self, policy: torch.nn.Module) -> AbstractContextManager[torch.nn.Module]:
        """``with ctx.reference.use(ctx.policy) as ref:``: a module computing the reference distribution."""


class EvalContext(Protocol):
    """What an evaluator's ``evaluate(ctx)`` sees for one checkpoint; expensive quantities are computed at
    most once per checkpoint and shared by the evaluators (samples, log-probabilities, rewards), and those of
    the reference model alone come from a cache shared by every trial with the same model, data and evaluation
    settings."""

    @property
    def cfg(self) -> DictConfig:
        """The trial's config."""

    @property
    def eval_cfg(self) -> DictConfig:
        """The ``eval`` node of the config."""

    @property
    def options(self) -> DictConfig:
        """The running evaluator's options, ``eval.<evaluator name>``
        (its declared defaults, as overridden)."""

    @property
    def evaluator(self) -> Any:
        """The running evaluator's :class:`harness.plugin.EvaluatorSpec`."""

    @property
    def step(self) -> int:
        """The checkpoint's optimizer step (0: the reference model)."""

    @property
    def is_reference(self) -> bool:
        """Whether the policy is the reference model itself (step 0)."""

    @property
    def policy(self) -> torch.nn.Module:
        """The model being evaluated."""

    @property
    def reference(self) -> ReferenceModel:
        """The reference model, through :meth:`ReferenceModel.use`."""

    @property
    def tokenizer(self) -> Any:
        """The model's tokenizer."""

    @property
    def source_prompts(self) -> list[Any]:
        """The held-out prompts as the data gave them (strings or message lists)."""

    @property
    def prompts(self) -> list[str]:
        """The held-out prompts as text (message lists rendered through the chat template)."""

    @property
    def chat(self) -> bool:
        """Whether the prompts were rendered through the chat template."""

    @property
    def gold_reward(self) -> RewardFunction | None:
        """The data source's programmatic reward, or None."""

    @property
    def preference_pairs(self) -> Sequence[Mapping[str, Any]] | None:
        """Held-out pairwise rows (prompt/chosen/rejected), or None."""

    @property
    def refcache(self) -> RefCache:
        """The reference-evaluation cache (quantities of the reference model alone)."""

    @property
    def label(self) -> str:
        """Prefixes progress descriptions (``"selection: "`` on the selection prompts)."""

    @property
    def sample_scores(self) -> dict[str, dict[str, list[float]]]:
        """Per-sample scores kept for the readable samples (see :meth:`add_sample_scores`)."""

    @property
    def withheld(self) -> dict[str, str]:
        """The metrics withheld at this checkpoint so far, with why (see :meth:`withhold`)."""

    @property
    def reference_samples(self) -> Samples:
        """Completions of the reference model on the same prompts with the same seed."""

    @property
    def policy_samples(self) -> Samples:
        """Completions of the policy on the held-out prompts (fixed seed)."""

    @property
    def policy_tokens(self) -> TokenLogprobs:
        """Per-token log-probabilities and entropies of the policy samples under the policy."""

    @property
    def reference_tokens(self) -> TokenLogprobs:
        """Per-token log-probabilities of the policy samples under the reference model."""

    @property
    def policy_logprobs(self) -> torch.Tensor:
        """Per-sequence log-probability of the policy samples under the policy."""

    @property
    def reference_logprobs(self) -> torch.Tensor:
        """Per-sequence log-probability of the policy samples under the reference model."""

    @property
    def gold_rewards(self) -> torch.Tensor | None:
        """Gold reward of each policy sample, or None without a gold reward."""

    @property
    def reference_gold_rewards(self) -> torch.Tensor | None:
        """Gold reward of each reference sample, or None without a gold reward."""

    @property
    def reward_model_path(self) -> str | None:
        """The configured reward model (``eval.reward_model.name_or_path``), or None."""

    @property
    def reward_model_scores(self) -> torch.Tensor | None:
        """The reward model's score of each policy sample, or None without a reward model."""

    @property
    def reference_reward_model_scores(self) -> torch.Tensor | None:
        """The reward model's score of each reference sample, or None without a reward model."""

    def memo(self, name: str, compute: Callable[[], T]) -> T:
        """``compute()``, run at most once per checkpoint under ``name`` (for quantities evaluators share)."""

    def trial_memo(self, name: str, compute: Callable[[], T]) -> T:
        """``compute()``, run at most once per trial and prompt set under ``name``
        (quantities of the data alone)."""

    def reference_tensor(self, name: str, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        """A quantity of the reference model alone: from the reference cache,
        else ``compute()`` and stored."""

    def token_logprobs(
        self, model: torch.nn.Module, samples: Samples, with_entropy: bool = False
    ) -> TokenLogprobs:
        """Per-token log-probabilities of ``samples``' completions under ``model`` at the
        sampling temperature."""

    def add_sample_scores(
        self, name: str, policy: Sequence[float], reference: Sequence[float] | None = None
    ) -> None:
        """Keep a per-sample score under ``name`` for the readable samples
        (one value per sample, NaN: none)."""

    def withhold(self, metric: str, reason: str) -> None:
        """Say that ``metric`` has no value at this checkpoint and why, in a few words (``"unusable (31/32
        verdicts unusable)"``): the record keeps it as ``withheld_metrics`` and the report shows it, rather
        than a number that is no measurement. The evaluator leaves the metric out of its result."""
