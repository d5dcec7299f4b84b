"""How a method's config reaches its trainer, and the checks that keep one home per knob.

A method's trainer config (a ``transformers.TrainingArguments`` subclass such as TRL's ``DPOConfig``) is built
from three sources, in order: the common knobs (``method.learning_rate`` -> ``learning_rate``, ...: see
:data:`~harness.plugin.settings.TRAINING_ARGUMENTS`), the method's hyperparameters that declare a ``field``
(``method.gamma`` -> ``simpo_gamma``), and ``method.trl.*`` verbatim. A ``method.trl`` key that one of the
first two already sets, or that the harness manages (output directory, seeds, logging, precision), is refused
before any compute, as is a key the config class does not have.
"""

from __future__ import annotations

import dataclasses
import importlib
import typing
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from harness.errors import ConfigError, PluginError, UnknownNameError
from harness.plugin.settings import COMMON_KNOBS, MANAGED_TRL_FIELDS, MANAGED_TRL_HOMES, TRAINING_ARGUMENTS

if TYPE_CHECKING:
    from harness.plugin.specs import MethodSpec

_CLASSES: dict[tuple[str, str], tuple[type | None, type | None]] = {}  # (name, origin) -> resolved classes


def import_object(path: str) -> Any:
    """The object at ``"package.module:attribute"``."""
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


def _config_class_of(trainer: type) -> type | None:
    """The class of a trainer's ``args`` parameter (``DPOConfig`` for ``DPOTrainer``), from its annotation."""
    try:
        hint = typing.get_type_hints(trainer.__init__).get("args")
    except Exception:  # unresolvable forward references: no derivation
        return None
    candidates = [hint, *typing.get_args(hint)]
    return next((c for c in candidates if isinstance(c, type) and c is not type(None)), None)


def trainer_classes(spec: MethodSpec) -> tuple[type | None, type | None]:
    """``(trainer class, config class)`` of a method, imported on first use (None where it declares none).

    :raises PluginError: a path that does not import, or a trainer whose config class cannot be derived.
    """
    key = (spec.name, spec.origin)
    if key not in _CLASSES:
        owner = f"MethodSpec {spec.name!r} of {spec.origin or 'its plugin'}"
        resolved = []
        for what, value in (("trainer", spec.trainer), ("config_class", spec.config_class)):
            try:
                resolved.append(import_object(value) if isinstance(value, str) else value)
            except (ImportError, AttributeError) as exc:
                raise PluginError(
                    f"{owner}: {what} {value!r} cannot be imported ({type(exc).__name__}: {exc}); "
                    "fix the 'package.module:Class' path."
                ) from None
        trainer, config = resolved
        if config is None and trainer is not None:
            config = _config_class_of(trainer)
            if config is None:
                raise PluginError(
                    f"{owner}: cannot derive the config class of {trainer.__name__} from its `args` "
                    "annotation; set MethodSpec.config_class."
                )
        _CLASSES[key] = (trainer, config)
    return _CLASSES[key]


def trl_overrides(method_cfg: DictConfig) -> dict[str, Any]:
    """The ``method.trl`` mapping as plain Python values ({} when absent)."""
    trl = method_cfg.get("trl")
    if not trl:
        return {}
    if not isinstance(trl, DictConfig):
        raise ConfigError(
            f"method.trl must be a mapping of trainer config fields, got {trl!r}; set fields one by one, "
            "e.g. method.trl.max_length=64."
        )
    return OmegaConf.to_container(trl, resolve=True)  # type: ignore[return-value]


def hyperparameter_fields(spec: MethodSpec, method_cfg: DictConfig) -> dict[str, Any]:
    """``{trainer config field: value}`` for the method's hyperparameters that declare a field."""
    return {h.field: method_cfg.get(h.name) for h in spec.hyperparameters if h.field is not None}


def check_method_values(spec: MethodSpec, method_cfg: DictConfig) -> None:
    """Each common knob and declared hyperparameter of ``method`` against its declaration."""
    for name, declaration in [*COMMON_KNOBS.items(), *((h.name, h) for h in spec.hyperparameters)]:
        if name not in method_cfg:
            continue
        value = method_cfg.get(name)
        problem = declaration.problem(value)
        if problem is None and name == "max_steps" and value == 0:
            problem = "use -1 (train for method.epochs) or a positive number of steps"
        if problem is not None:
            meaning = f" ({declaration.help})" if declaration.help else ""
            raise ConfigError(
                f"method.{name}={value!r} is invalid for method {spec.name}{meaning}: {problem}."
            )


def check_trl_fields(spec: MethodSpec, method_cfg: DictConfig) -> None:
    """``method.trl`` keys known to the method's config class, not managed by the harness, and not set by a
    ``method.*`` knob too; the hyperparameters' fields exist in the config class."""
    _, config_class = trainer_classes(spec)
    overrides = trl_overrides(method_cfg)
    if config_class is None:
        if overrides:
            raise ConfigError(f"method {spec.name} takes no method.trl options; remove {sorted(overrides)}.")
        return
    fields = {f.name for f in dataclasses.fields(config_class)}
    for h in spec.hyperparameters:
        if h.field is not None and h.field not in fields:
            raise PluginError(
                f"MethodSpec {spec.name!r} of {spec.origin or 'its plugin'}: hyperparameter {h.name!r} "
                f"sets {config_class.__name__}.{h.field}, which does not exist; fix its field."
            )
    by_field = {h.field: f"method.{h.name}" for h in spec.hyperparameters if h.field is not None}
    by_field.update({target: f"method.{knob}" for knob, target in TRAINING_ARGUMENTS.items()})
    for key in overrides:
        if key in by_field:
            raise ConfigError(
                f"method.trl.{key} sets the same {config_class.__name__} field as {by_field[key]}; "
                f"set {by_field[key]} only."
            )
        if key in MANAGED_TRL_HOMES:
            raise ConfigError(
                f"method.trl.{key} is managed by the harness for every method; set "
                f"{MANAGED_TRL_HOMES[key]} instead (docs/how-to/scaling-out.md, Experiment trackers)."
            )
        if key in MANAGED_TRL_FIELDS:
            raise ConfigError(
                f"method.trl.{key} is managed by the harness (trial directory, seeds, logging, "
                "precision come from the trial's config); remove it."
            )
        if key not in fields:
            raise UnknownNameError(f"{config_class.__name__} option (method.trl)", key, fields)


def max_length(spec: MethodSpec, method_cfg: DictConfig) -> int | None:
    """The trainer's maximum sequence length (prompt + completion tokens): ``method.trl.max_length``, else the
    default of the trainer config's ``max_length`` field; None when the method has no such limit."""
    trl = trl_overrides(method_cfg)
    if "max_length" in trl:
        value = trl["max_length"]
    else:
        field = getattr(trainer_classes(spec)[1], "__dataclass_fields__", {}).get("max_length")
        value = getattr(field, "default", None)
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None
