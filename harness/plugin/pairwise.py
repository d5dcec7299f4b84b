"""The pairwise-loss extension point: a DPO-family method is a loss function and a spec.

DPO, IPO, R-DPO, DPOP, ... differ only in the function that turns a pair's numbers into a loss: the summed
log-probabilities of the chosen and the rejected completion under the policy and under the frozen reference,
and the completions' token counts. A plugin writes that function over a :class:`PairwiseBatch` and declares
the method with :func:`pairwise_loss_method`; the harness trains it on TRL's ``DPOTrainer`` (tokenisation,
batching, the reference pass and its cache, LoRA, precision, logging are TRL's and the harness's, as for
``method=dpo``), with only the loss replaced (:mod:`harness.trial.pairwise_loss`).
:func:`harness.plugin.check_pairwise_loss` checks in a plugin's tests that the trainer computes exactly the
plugin's loss::

    import torch.nn.functional as F
    from harness.plugin import Hyperparameter, PairwiseBatch, pairwise_loss_method

    def rdpo_loss(batch: PairwiseBatch, settings) -> torch.Tensor:  # per-pair losses, shape [batch]
        margin = settings["beta"] * (batch.chosen_logratios - batch.rejected_logratios)
        return -F.logsigmoid(margin + settings["alpha"] * (batch.chosen_lengths - batch.rejected_lengths))

    RDPO = pairwise_loss_method(
        name="rdpo",
        loss=rdpo_loss,
        hyperparameters=[
            Hyperparameter("beta", 0.1, "KL strength", bounds="(0, inf)", field="beta"),
            Hyperparameter("alpha", 0.05, "length margin per token", bounds="[0, inf)"),
        ],
    )

This module imports neither torch nor TRL (a plugin that only declares stays cheap to import); the loss
function is called with torch tensors while training.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.config.model_settings import separate_reference
from harness.errors import ConfigError
from harness.plugin.settings import Hyperparameter, reject
from harness.plugin.specs import MethodSpec, Profile

if TYPE_CHECKING:
    import torch
    from omegaconf import DictConfig

    from harness.trial.context import TrainContext


@dataclass(frozen=True)
class PairwiseBatch:
    """One batch of preference pairs, as a pairwise loss sees it: every field is a tensor of shape [batch],
    row i being pair i, on the training device.

    Attributes:
        policy_chosen_logps: log π(y_chosen | x), the policy's log-probability of the chosen completion,
            summed over its tokens (the prompt excluded); carries the gradient.
        policy_rejected_logps: the same for the rejected completion.
        reference_chosen_logps: log π_ref(y_chosen | x) under the frozen reference model (or, with LoRA, the
            policy with its adapter disabled); no gradient.
        reference_rejected_logps: the same for the rejected completion.
        chosen_lengths: |y_chosen|, the number of tokens the chosen log-probabilities sum over (an integer
            tensor): the completion as TRL tokenises it, EOS included, after truncation to ``max_length``.
        rejected_lengths: |y_rejected|, the same for the rejected completion.
    """

    policy_chosen_logps: torch.Tensor
    policy_rejected_logps: torch.Tensor
    reference_chosen_logps: torch.Tensor
    reference_rejected_logps: torch.Tensor
    chosen_lengths: torch.Tensor
    rejected_lengths: torch.Tensor

    @property
    def chosen_logratios(self) -> torch.Tensor:
        """Δ_chosen = log π(y_chosen | x) − log π_ref(y_chosen | x), shape [batch]:
        DPO's implicit reward over β."""
        return self.policy_chosen_logps - self.reference_chosen_logps

    @property
    def rejected_logratios(self) -> torch.Tensor:
        """Δ_rejected = log π(y_rejected | x) − log π_ref(y_rejected | x), shape [batch]."""
        return self.policy_rejected_logps - self.reference_rejected_logps

    @property
    def size(self) -> int:
        """The number of pairs."""
        return int(self.policy_chosen_logps.shape[0])


#: A DPO-family loss: ``loss(batch, settings) -> per-pair losses`` (shape [batch]; the harness averages them
#: over the batch, as TRL does). ``settings`` maps each of the method's hyperparameters to its value in the
#: trial.
PairwiseLoss = Callable[[PairwiseBatch, Mapping[str, Any]], "torch.Tensor"]

#: ``method.trl`` fields that choose or shape TRL's own DPO loss (or the log-probabilities it sums): a method
#: on the extension point computes its plugin's loss instead, so setting them is refused rather than silently
#: ignored.
REPLACED_FIELDS = (
    "loss_type",
    "loss_weights",
    "ld_alpha",
    "use_weighting",
    "f_divergence_type",
    "f_alpha_divergence_coef",
    "label_smoothing",
    "discopop_tau",
)
#: The trainer-config defaults of every method on the extension point (the built-in DPO's): sequences up to
#: 1024 tokens, and the reference's log-probabilities computed once before training (and cached across
#: trials).
TRL_DEFAULTS = {"max_length": 1024, "precompute_ref_log_probs": True}
TRAINER = "harness.trial.pairwise_loss:PairwiseLossTrainer"


def pair_losses(
    loss: PairwiseLoss, batch: PairwiseBatch, settings: Mapping[str, Any], method: str
) -> torch.Tensor:
    """``loss(batch, settings)``, checked to be per-pair losses (shape [batch]); a TypeError names the method
    and what it returned otherwise."""
    losses = loss(batch, settings)
    shape = getattr(losses, "shape", None)
    if shape is None or tuple(shape) != (batch.size,):
        got = f"shape {tuple(shape)}" if shape is not None else type(losses).__name__
        raise TypeError(
            f"the loss of method {method} returned {got}; a pairwise loss returns one loss per pair, "
            f"a tensor of shape [{batch.size}] (the harness takes the mean)."
        )
    return losses


def method_settings(spec: MethodSpec, values: Mapping[str, Any]) -> dict[str, Any]:
    """``{hyperparameter: value}`` of ``spec``: its defaults, replaced by ``values`` (a trial's ``method``
    node, or a plain mapping), as plain Python values."""
    from omegaconf import DictConfig, OmegaConf

    plain = OmegaConf.to_container(values, resolve=True) if isinstance(values, DictConfig) else dict(values)
    return {h.name: plain.get(h.name, h.default) for h in spec.hyperparameters}


def trl_support_problem() -> str | None:
    """Why the installed TRL cannot train a pairwise-loss method (None when it can): the trainer needs TRL's
    ``DPOTrainer._compute_loss`` scoring sequences through TRL's fused LM head (``trl.trainer.utils``:
    ``add_fused_lm_head``, ``FusedCausalLMOutput``), as TRL 1.16 does."""
    try:
        import trl
        from trl import DPOTrainer
        from trl.trainer import utils
    except ImportError as exc:
        return f"trl does not import ({exc})"
    needed = {
        "DPOTrainer._compute_loss": getattr(DPOTrainer, "_compute_loss", None),
        "trl.trainer.utils.add_fused_lm_head": getattr(utils, "add_fused_lm_head", None),
        "trl.trainer.utils.FusedCausalLMOutput": getattr(utils, "FusedCausalLMOutput", None),
    }
    missing = [name for name, value in needed.items() if value is None]
    if missing:
        return f"the installed TRL {trl.__version__} lacks {', '.join(missing)}"
    return None


@dataclass(frozen=True)
class PairwiseLossTraining:
    """``MethodSpec.train`` of a method declared with :func:`pairwise_loss_method`: builds its trainer
    (:class:`harness.trial.pairwise_loss.PairwiseLossTrainer`, TRL's ``DPOTrainer`` with the loss replaced)
    with :meth:`TrainContext.trl_trainer` and trains it; ``loss`` is the plugin's function."""

    loss: PairwiseLoss

    def __call__(self, ctx: TrainContext) -> Any:
        """Train ``ctx.policy`` against ``ctx.reference`` (None with LoRA: the adapter-disabled policy);
        returns the trained model."""
        settings = method_settings(ctx.spec, ctx.method_cfg)
        trainer = ctx.trl_trainer(
            ref_model=ctx.reference,
            pairwise_loss=self.loss,
            loss_settings=settings,
            method_name=ctx.spec.name,
        )
        return ctx.run_trainer(trainer)


@dataclass(frozen=True)
class _Validation:
    """``MethodSpec.validate`` of a pairwise-loss method: the installed TRL supports it, ``method.trl`` does
    not set a field of TRL's own loss, then the plugin's own check."""

    method: str
    own: Callable[[Any], None] | None

    def __call__(self, method_cfg: DictConfig) -> None:
        problem = trl_support_problem()
        if problem is not None:
            raise ConfigError(
                f"method {self.method} trains on the pairwise-loss extension point, which reads the "
                f"per-sequence log-probabilities of TRL's DPOTrainer, but {problem}; install a TRL that "
                "has them (the harness is tested with trl 1.16)."
            )
        replaced = sorted(set((method_cfg.get("trl") or {}).keys()) & set(REPLACED_FIELDS))
        if replaced:
            raise ConfigError(
                f"method.trl.{replaced[0]} chooses TRL's own DPO loss, but method {self.method} computes its "
                "plugin's loss (the pairwise-loss extension point); remove it."
            )
        if self.own is not None:
            self.own(method_cfg)


def _policy_and_reference(cfg: DictConfig) -> int:
    """The policy and, without LoRA, the frozen reference."""
    return 1 + separate_reference(cfg)


def _with_trl_defaults(owner: str, label: str, values: Mapping[str, Any], base: bool) -> dict[str, Any]:
    """``values`` with :data:`TRL_DEFAULTS` under its ``trl`` entry (when ``base``); refuses the fields of
    TRL's own loss (:data:`REPLACED_FIELDS`)."""
    values = dict(values)
    trl = values.get("trl") or {}
    if not isinstance(trl, Mapping):
        reject(owner, f"{label}['trl'] must be a mapping of trainer-config fields, got {trl!r}.")
    replaced = sorted(set(trl) & set(REPLACED_FIELDS))
    if replaced:
        reject(
            owner,
            f"{label}['trl'][{replaced[0]!r}] chooses TRL's own DPO loss; a pairwise-loss method computes "
            "its loss function instead: remove it.",
        )
    if base or trl:
        values["trl"] = {**(TRL_DEFAULTS if base else {}), **trl}
    return values


def _with_trl_profiles(owner: str, profiles: Mapping[str, Profile]) -> dict[str, Any]:
    """Each profile with its ``"trl"`` entries checked and completed like ``defaults``' (a value that is not a
    :class:`Profile` is passed on as it is: :class:`MethodSpec` refuses it)."""
    return {
        key: Profile(_with_trl_defaults(owner, f"profiles[{key!r}]", p.defaults, False), p.search_space)
        if isinstance(p, Profile)
        else p  # MethodSpec refuses it
        for key, p in profiles.items()
    }


def pairwise_loss_method(
    name: str,
    loss: PairwiseLoss,
    *,
    hyperparameters: Sequence[Hyperparameter] = (),
    defaults: Mapping[str, Any] | None = None,
    profiles: Mapping[str, Profile] | None = None,
    search_space: Mapping[str, str] | None = None,
    description: str = "",
    loss_notes: str = "",
    lr_range: tuple[float, float] = (5e-7, 5e-6),
    validate: Callable[[Any], None] | None = None,
) -> MethodSpec:
    """The :class:`MethodSpec` of a DPO-family method whose loss is ``loss``, trained on TRL's ``DPOTrainer``.

    Args:
        name: the value users pass as ``method=<name>``.
        loss: ``loss(batch: PairwiseBatch, settings: Mapping[str, Any]) -> torch.Tensor``, the per-pair losses
            (shape [batch]); the harness averages them. ``settings[h]`` is the value of each hyperparameter
            ``h`` in the trial. A pure function of its arguments: :func:`harness.plugin.check_pairwise_loss`
            checks it against a plain forward pass.
        hyperparameters: the method's knobs (``method.<name>``), as for any method. One with ``field="beta"``
            sets ``DPOConfig.beta`` too, which scales the implicit rewards TRL logs (``rewards/chosen`` =
            β·Δ_chosen).
        defaults: values of the common knobs (``learning_rate``, ``epochs``, ...) and ``DPOConfig`` fields
            under ``"trl"``, for real models. Under ``"trl"`` they extend :data:`TRL_DEFAULTS`; the fields of
            TRL's own loss (:data:`REPLACED_FIELDS`) are refused.
        profiles, search_space, description, loss_notes, lr_range: as in :class:`MethodSpec` (``profiles``'
            ``"trl"`` entries are checked like ``defaults``').
        validate: ``validate(method_cfg) -> None``, the method's own check of settings that are wrong together
            (raise :class:`~harness.errors.ConfigError`); runs after the extension point's own checks.

    Returns the spec for ``harness_methods_register`` (pairwise data, a frozen reference: the adapter-disabled
    policy under LoRA; trainer ``PairwiseLossTrainer``, config ``trl.DPOConfig``). Raises :class:`PluginError`
    when ``loss`` is not callable, a declaration breaks :class:`MethodSpec`'s contract or sets a field of
    TRL's loss.
    """
    owner = f"MethodSpec {name!r}"
    if not callable(loss):
        reject(owner, f"loss must be a function loss(batch, settings) -> per-pair losses, got {loss!r}.")
    return MethodSpec(
        name=name,
        train=PairwiseLossTraining(loss),
        data_kind="pairwise",
        hyperparameters=hyperparameters,
        defaults=_with_trl_defaults(owner, "defaults", defaults or {}, True),
        profiles=_with_trl_profiles(owner, profiles or {}),
        models_in_memory=_policy_and_reference,
        needs_reference=True,
        search_space=dict(search_space or {}),
        lr_range=lr_range,
        trainer=TRAINER,
        config_class="trl:DPOConfig",
        validate=_Validation(name, validate),
        description=description,
        loss_notes=loss_notes,
    )


def pairwise_loss_of(spec: MethodSpec) -> PairwiseLoss | None:
    """The loss function of a method declared with :func:`pairwise_loss_method`
    (None for any other method)."""
    return spec.train.loss if isinstance(spec.train, PairwiseLossTraining) else None
