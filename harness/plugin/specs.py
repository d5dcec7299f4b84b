"""What a plugin hands to the harness: the description of a method or an evaluator, checked on creation.

Plugins return :class:`MethodSpec` and :class:`EvaluatorSpec` from the registration hooks in
:mod:`harness.plugin.hookspecs`. They are frozen dataclasses, so the core can list, validate and document them
without knowing any method by name. Like TRL's configs, each checks its own fields when it is created
(``__post_init__``) and raises :class:`harness.errors.PluginError` naming the field, the value and the fix;
the plugin manager adds the plugin's name and source to the message.

A method declares its own knobs (:class:`Hyperparameter`: ``method.<name>`` with its default, help, bounds and
the trainer-config field it sets); an evaluator declares the metrics it returns (:class:`Metric`: direction,
leaderboard column, headline or not; declared in :mod:`harness.plugin.metrics`, importable from here too) and
its settings (:class:`Option`: ``eval.<evaluator>.<name>``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from harness.plugin.metrics import Metric
from harness.plugin.settings import COMMON_KNOBS, Hyperparameter, Option, check_name, reject

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from harness.plugin.contexts import EvalContext, TrainContext

DataKind = Literal["pairwise", "unpaired", "prompts"]
ModelKind = Literal["policy", "reward_model"]
DATA_KINDS = ("pairwise", "unpaired", "prompts")
MODEL_KINDS = ("policy", "reward_model")


@dataclass(frozen=True)
class Profile:
    """A method's values for a family of models (``"toy"``: the built-in toy world's tuning).

    Attributes:
        defaults: values that replace the method's defaults: common knobs, hyperparameters, and trainer-config
            fields under ``"trl"``.
        search_space: entries that replace the method's suggested sweep space (e.g. learning rates that suit
            these models).
    """

    defaults: Mapping[str, Any] = field(default_factory=dict)
    search_space: Mapping[str, str] = field(default_factory=dict)


def _callable_or_none(owner: str, what: str, value: Any) -> None:
    if value is not None and not callable(value):
        reject(owner, f"{what} must be a function or None, got {type(value).__name__}.")


def _class_path(owner: str, what: str, value: Any) -> None:
    if value is None or isinstance(value, type):
        return
    if not isinstance(value, str) or ":" not in value or not all(value.partition(":")[::2]):
        reject(
            owner,
            f"{what} {value!r} is invalid; give the class itself or its 'package.module:Class' path "
            "(imported when a trial is validated, not at registration).",
        )


@dataclass(frozen=True)
class MethodSpec:
    """A training method, as registered by a plugin.

    Attributes:
        name: the value users pass as ``method=<name>``.
        train: ``train(ctx: TrainContext) -> model``; trains ``ctx.policy`` on ``ctx.train_data`` and returns
            the trained model (a TRL trainer gets ``ctx.trainer_callbacks()``; an own loop calls
            ``ctx.step``).
        data_kind: "pairwise" (prompt/chosen/rejected), "unpaired" (prompt/completion/label) or "prompts"
            (online methods that sample their own completions: the distinct prompts of the data). Pairwise
            data is converted automatically for unpaired and prompt-only methods.
        hyperparameters: the method's own knobs (``method.<name>``), each with its default, help, bounds and
            the trainer-config field it sets.
        defaults: the method's values for the harness's common training knobs (``learning_rate``, ``epochs``,
            ``max_steps``, ``batch_size``, ``grad_accum``, ``warmup``, ``scheduler``:
            ``conf/method/base.yaml``) and for its trainer-config fields under ``"trl"``; the method's config
            is the base config, its hyperparameters' defaults, then these. They are for real models (the
            seed's values).
        profiles: by profile name, a :class:`Profile` (values and search ranges that replace the defaults for
            a family of models); ``"toy"`` is the built-in toy world's tuning, used when the model config's
            ``profile`` is ``toy`` (``model=toy``).
        models_in_memory: how many full models the method holds while training (policy, reference, reward,
            value): the seed's "Compute" column, checked by the measured peak memory. A number, or
            ``models_in_memory(cfg) -> int`` of the trial's config when it depends on it (fewer with LoRA,
            whose reference is the policy with its adapter disabled: see
            :func:`harness.config.model_settings.separate_reference`).
        needs_reference: whether a frozen reference model must be loaded for training (``ctx.reference``).
        search_space: suggested sweep space in Hydra's sweeper syntax, keys relative to ``method``: a
            hyperparameter, a common knob or ``trl.<field>``, e.g.
            ``{"beta": "tag(log, interval(0.01, 0.5))"}``.
        lr_range: the sane learning-rate range for real models (about 1e9 parameters; from the seed); health
            checks scale it to the model's size and flag rates far outside it.
        trainer: the transformers/TRL trainer class the method trains with, or its ``"module:Class"`` path;
            :meth:`TrainContext.trl_trainer` builds it, and the config class is derived from its ``args``.
        config_class: the trainer config class (or ``"module:Class"``) whose fields ``method.trl.*`` may set,
            when it is not derived from ``trainer``; ``None`` with no trainer: ``method.trl`` must stay empty.
        validate: ``validate(method_cfg) -> None``; raises :class:`harness.errors.ConfigError` for settings
            that are wrong together. Called before any compute, after each value is checked on its own.
        description: one line shown in listings and the leaderboard.
        loss_notes: the loss convention the trainer actually uses, in a sentence or two (what is summed and
            what is averaged per token, which tokens an NLL term covers, what the knobs scale, naming the
            trainer-config flag where one decides it): shown next to the method's settings in the leaderboard,
            so a reader can see why two methods' numbers are not on one scale. Empty: nothing stated.
        produces: what ``train`` returns: a ``"policy"`` (a causal LM, evaluated by ``eval.evaluators``
            against the reference model) or a ``"reward_model"`` (a one-output sequence classifier, evaluated
            by the evaluators that apply to reward models, with no reference baseline).
        origin: which plugin registered it (set by the plugin manager, for error messages).
    """

    name: str
    train: Callable[[TrainContext], Any]
    data_kind: DataKind = "pairwise"
    hyperparameters: Sequence[Hyperparameter] = ()
    defaults: Mapping[str, Any] = field(default_factory=dict)
    profiles: Mapping[str, Profile] = field(default_factory=dict)
    models_in_memory: int | Callable[[Any], int] = 2
    needs_reference: bool = True
    search_space: Mapping[str, str] = field(default_factory=dict)
    lr_range: tuple[float, float] = (5e-7, 5e-6)
    trainer: str | type | None = None
    config_class: str | type | None = None
    validate: Callable[[Any], None] | None = None
    description: str = ""
    produces: ModelKind = "policy"
    loss_notes: str = ""
    origin: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        owner = f"MethodSpec {self.name!r}"
        check_name(owner, "name", self.name)
        if not isinstance(self.loss_notes, str):
            reject(
                owner,
                f"loss_notes must be a string (the loss convention in words), got "
                f"{type(self.loss_notes).__name__}.",
            )
        if not callable(self.train):
            reject(owner, f"train must be a function train(ctx) -> model, got {type(self.train).__name__}.")
        if self.data_kind not in DATA_KINDS:
            reject(owner, f"data_kind {self.data_kind!r} is invalid; use one of {', '.join(DATA_KINDS)}.")
        if self.produces not in MODEL_KINDS:
            reject(owner, f"produces {self.produces!r} is invalid; use one of {', '.join(MODEL_KINDS)}.")
        n = self.models_in_memory
        if not callable(n) and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            reject(
                owner,
                f"models_in_memory {n!r} is invalid; give a positive integer or a function of the config.",
            )
        _callable_or_none(owner, "validate", self.validate)
        _class_path(owner, "trainer", self.trainer)
        _class_path(owner, "config_class", self.config_class)
        self._check_lr_range(owner)
        self._check_knobs(owner)

    def _check_lr_range(self, owner: str) -> None:
        r = self.lr_range
        ok = (
            isinstance(r, (tuple, list))
            and len(r) == 2
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) and 0 < x < math.inf for x in r)
            and r[0] <= r[1]
        )
        if not ok:
            reject(
                owner, f"lr_range {r!r} is invalid; give (low, high) with 0 < low <= high, e.g. (5e-7, 5e-6)."
            )

    def _check_knobs(self, owner: str) -> None:
        object.__setattr__(self, "hyperparameters", tuple(self.hyperparameters))
        names = [h.name for h in self.hyperparameters]
        if any(not isinstance(h, Hyperparameter) for h in self.hyperparameters):
            reject(owner, "hyperparameters must be Hyperparameter(...) declarations.")
        if len(set(names)) != len(names):
            reject(
                owner, f"hyperparameter names repeat: {sorted(n for n in set(names) if names.count(n) > 1)}."
            )
        self._check_values(owner, "defaults", self.defaults, hyperparameters_allowed=False)
        if not isinstance(self.profiles, Mapping):
            reject(
                owner,
                f"profiles must be a mapping of profile name -> values, got {type(self.profiles).__name__}.",
            )
        for profile, values in self.profiles.items():
            check_name(owner, "profile", profile)
            if not isinstance(values, Profile):
                reject(owner, f"profiles[{profile!r}] must be a Profile(defaults=..., search_space=...).")
            self._check_values(owner, f"profiles[{profile!r}]", values.defaults, hyperparameters_allowed=True)
            self._check_space(owner, values.search_space, names)
        self._check_space(owner, self.search_space, names)
        for h in self.hyperparameters:
            if h.field is not None and self.trainer is None and self.config_class is None:
                reject(
                    owner,
                    f"hyperparameter {h.name!r} sets the trainer-config field {h.field!r}, but the method "
                    "declares no trainer or config_class; declare one, or drop the field.",
                )

    def _check_space(self, owner: str, space: Mapping[str, str], names: Sequence[str]) -> None:
        trl = dict(self.defaults.get("trl") or {})
        for key, spec in space.items():
            known = key in names or key in COMMON_KNOBS or (key.startswith("trl.") and key[4:] in trl)
            if not known:
                reject(
                    owner,
                    f"search_space key {key!r} is neither a hyperparameter ({', '.join(names) or 'none'}), "
                    f"a common knob, nor a trl.<field> set in defaults['trl'].",
                )
            if not isinstance(spec, str):
                reject(
                    owner, f"search_space[{key!r}] must be a string in Hydra's sweep syntax, got {spec!r}."
                )

    def suggested_space(self, profile: str | None = None) -> dict[str, str]:
        """The suggested sweep space, with the entries of ``profile`` (when the method declares it) on top."""
        chosen = self.profiles.get(profile or "")
        return {**self.search_space, **(dict(chosen.search_space) if chosen else {})}

    def _check_values(self, owner: str, label: str, values: Any, hyperparameters_allowed: bool) -> None:
        """``defaults`` or a profile: common knobs (and, in a profile, hyperparameters) with valid values, and
        trainer-config fields under ``trl`` that no hyperparameter sets."""
        if not isinstance(values, Mapping):
            reject(owner, f"{label} must be a mapping, got {type(values).__name__}.")
        fields = {h.field: h.name for h in self.hyperparameters if h.field is not None}
        for key, value in values.items():
            declared = self.hyperparameter(key)
            if key == "trl":
                if not isinstance(value, Mapping):
                    reject(
                        owner, f"{label}['trl'] must be a mapping of trainer-config fields, got {value!r}."
                    )
                clash = sorted(set(value) & set(fields))
                if clash:
                    reject(
                        owner,
                        f"{label}['trl'][{clash[0]!r}] is set by hyperparameter {fields[clash[0]]!r}; "
                        "set that instead.",
                    )
            elif declared is not None and not hyperparameters_allowed:
                reject(
                    owner, f"{label}[{key!r}] repeats hyperparameter {key!r}; its default is declared there."
                )
            elif declared is None and key not in COMMON_KNOBS:
                reject(
                    owner,
                    f"{label}[{key!r}] is not a common training knob ({', '.join(COMMON_KNOBS)}), "
                    f"a hyperparameter or 'trl'; declare it as Hyperparameter({key!r}, default, help).",
                )
            elif (problem := (declared or COMMON_KNOBS[key]).problem(value)) is not None:
                reject(owner, f"{label}[{key!r}]={value!r} is invalid: {problem}.")

    def count_models(self, cfg: DictConfig) -> int:
        """How many full models the method holds in memory for the trial configured by ``cfg``."""
        n = self.models_in_memory
        return int(n(cfg) if callable(n) else n)

    def hyperparameter(self, name: str) -> Hyperparameter | None:
        """The declared hyperparameter ``name`` (None if there is none)."""
        return next((h for h in self.hyperparameters if h.name == name), None)

    def paper_names(self) -> dict[str, str]:
        """Key -> the paper's name, for the hyperparameters whose paper calls them otherwise
        (``paper_name``)."""
        return {h.name: h.paper_name for h in self.hyperparameters if h.paper_name and h.paper_name != h.name}


@dataclass(frozen=True)
class EvaluatorSpec:
    """A checkpoint evaluator, as registered by a plugin.

    Attributes:
        name: the value listed in ``eval.evaluators`` (or added with ``eval.extra=[<name>]``).
        evaluate: ``evaluate(ctx: EvalContext) -> dict[str, float]``; metrics for the checkpoint in ``ctx``.
            Shared, expensive artefacts (policy samples, reference log-probabilities) come from ``ctx``, which
            computes each once per checkpoint; the evaluator's options are ``ctx.options``. If it raises, only
            its own metrics are missing at that checkpoint (recorded and named:
            :mod:`harness.evaluation.failures`).
        metrics: the metrics it returns, declared (a returned key no declaration matches is kept in the
            records and ``checkpoints.csv`` but is never a column or an objective). Names and columns are
            unique across evaluators (checked at registration); a returned key another evaluator already
            returned at the same checkpoint is not kept (recorded against this evaluator).
        options: its settings, ``eval.<name>.<option>`` in the config, with their defaults.
        description: one line for listings.
        applies_to: the kind of model it evaluates: ``"policy"`` (listed in ``eval.evaluators``) or
            ``"reward_model"`` (run on every checkpoint of a method that produces a reward model).
        active: ``active(cfg) -> bool``: whether it yields its metrics under the trial config ``cfg`` (the
            reward-model evaluator does only with a reward model configured); read before any compute to
            resolve the objective ``auto`` of an Optuna sweep. ``None``: always.
        origin: which plugin registered it (set by the plugin manager, for error messages).
        plugin: the name of the plugin that registered it (set by the plugin manager; records name it).
    """

    name: str
    evaluate: Callable[[EvalContext], Mapping[str, float]]
    metrics: Sequence[Metric] = ()
    options: Sequence[Option] = ()
    description: str = ""
    applies_to: ModelKind = "policy"
    active: Callable[[Any], bool] | None = None
    origin: str = field(default="", compare=False)
    plugin: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        owner = f"EvaluatorSpec {self.name!r}"
        check_name(owner, "name", self.name)
        if not callable(self.evaluate):
            reject(
                owner,
                f"evaluate must be a function evaluate(ctx) -> dict, got {type(self.evaluate).__name__}.",
            )
        _callable_or_none(owner, "active", self.active)
        if self.applies_to not in MODEL_KINDS:
            reject(owner, f"applies_to {self.applies_to!r} is invalid; use one of {', '.join(MODEL_KINDS)}.")
        object.__setattr__(self, "metrics", tuple(self.metrics))
        object.__setattr__(self, "options", tuple(self.options))
        if any(not isinstance(m, Metric) for m in self.metrics):
            reject(owner, "metrics must be Metric(...) declarations.")
        if any(not isinstance(o, Option) for o in self.options):
            reject(owner, "options must be Option(...) declarations.")
        for what, names in (
            ("metric", [m.name for m in self.metrics]),
            ("option", [o.name for o in self.options]),
        ):
            if len(set(names)) != len(names):
                reject(owner, f"{what} names repeat: {sorted(n for n in set(names) if names.count(n) > 1)}.")
        labels = [m.label for m in self.metrics]
        if len(set(labels)) != len(labels):
            reject(owner, f"metric columns repeat: {sorted(n for n in set(labels) if labels.count(n) > 1)}.")

    def metric(self, key: str) -> Metric | None:
        """The declaration matching the metric key or column ``key`` (None if none does)."""
        return next((m for m in self.metrics if m.matches(key)), None)

    def option_defaults(self) -> dict[str, Any]:
        """``{option: default}``: the evaluator's node under ``eval.<name>``."""
        return {o.name: o.default for o in self.options}
