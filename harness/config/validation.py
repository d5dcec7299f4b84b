"""Checks of a composed trial config that must pass before any compute.

Core checks cover what every trial shares (method known, training knobs in range, ``method.trl`` fields
known to the method's TRL config, evaluators known, model reachable); plugins add their own through the
``harness_config_validate`` hook (a data plugin reads and validates its file there). Every failure is a
one-line :class:`harness.errors.UserError`.
"""

from __future__ import annotations

from numbers import Real
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig

from harness.errors import ConfigError
from harness.trial import models
from harness.trial.context import check_trl_fields

if TYPE_CHECKING:
    from harness.plugin.manager import HarnessPluginManager


def _number(cfg: DictConfig, key: str, *, minimum: float, strict: bool, integer: bool = False,
            hint: str = "") -> None:
    value: Any = cfg.method.get(key)
    if value is None:
        return
    ok_type = isinstance(value, int) if integer else isinstance(value, Real)
    ok = ok_type and not isinstance(value, bool) and (value > minimum if strict else value >= minimum)
    if not ok:
        bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"method.{key}={value!r} is invalid for method {cfg.method.name}: it must be {kind} "
                          f"{bound}.{(' ' + hint) if hint else ''}")


def validate_method(cfg: DictConfig, pm: HarnessPluginManager) -> None:
    """Method known, its knobs in range, its ``method.trl`` keys known; then the method's own checks."""
    spec = pm.method(str(cfg.method.name))
    _number(cfg, "beta", minimum=0, strict=True, hint="Try 0.1 (the seed's standard value).")
    _number(cfg, "learning_rate", minimum=0, strict=True, hint="Real models use 5e-7 to 5e-6.")
    _number(cfg, "epochs", minimum=0, strict=True)
    _number(cfg, "batch_size", minimum=1, strict=False, integer=True)
    _number(cfg, "grad_accum", minimum=1, strict=False, integer=True)
    _number(cfg, "warmup", minimum=0, strict=False)
    max_steps = cfg.method.get("max_steps", -1)
    if not isinstance(max_steps, int) or isinstance(max_steps, bool) or max_steps == 0 or max_steps < -1:
        raise ConfigError(f"method.max_steps={max_steps!r} is invalid: use -1 (train for method.epochs) or a "
                          "positive number of steps.")
    check_trl_fields(cfg.method, spec.config_class)
    if spec.validate is not None:
        spec.validate(cfg.method)


def validate_eval(cfg: DictConfig, pm: HarnessPluginManager) -> None:
    """Evaluators known and sampling settings in range."""
    for name in cfg.eval.evaluators:
        spec = pm.evaluator(str(name))
        if spec.applies_to != "policy":
            raise ConfigError(f"eval.evaluators lists {name}, which evaluates {spec.applies_to.replace('_', ' ')}s, "
                              "not policies; remove it (it runs by itself on the checkpoints it applies to).")
    e = cfg.eval
    if e.checkpoints not in ("all", "final"):
        raise ConfigError(f"eval.checkpoints={e.checkpoints!r} is invalid; use all or final.")
    for key in ("samples_per_prompt", "max_new_tokens", "batch_size"):
        if not isinstance(e[key], int) or e[key] < 1:
            raise ConfigError(f"eval.{key}={e[key]!r} is invalid; it must be a positive integer.")
    if e.num_prompts is not None and (not isinstance(e.num_prompts, int) or e.num_prompts < 1):
        raise ConfigError(f"eval.num_prompts={e.num_prompts!r} is invalid; use a positive integer or null (all).")
    if not isinstance(e.temperature, Real) or e.temperature <= 0:
        raise ConfigError(f"eval.temperature={e.temperature!r} is invalid; it must be > 0 (1.0 is unbiased).")


def validate_train(cfg: DictConfig) -> None:
    """Trial-level training settings (checkpoint interval, device, precision)."""
    every = cfg.train.checkpoint_every
    if not isinstance(every, int) or every < 0:
        raise ConfigError(f"train.checkpoint_every={every!r} is invalid; use 0 (train.num_checkpoints evenly "
                          "spaced checkpoints) or a number of steps.")
    count = cfg.train.get("num_checkpoints", 1)
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ConfigError(f"train.num_checkpoints={count!r} is invalid; use a positive integer (1 = final model "
                          "only).")
    device = models.resolve_device(str(cfg.train.device))
    models.resolve_precision(str(cfg.train.precision), device)
    seed = cfg.get("seed")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ConfigError(f"seed={seed!r} is invalid; it must be an integer.")


def validate_trial_config(cfg: DictConfig, pm: HarnessPluginManager) -> None:
    """Every check that must pass before a trial loads anything; raises a one-line UserError."""
    validate_method(cfg, pm)
    validate_train(cfg)
    validate_eval(cfg, pm)
    models.resolve_model_path(pm, cfg, dry_run=True)
    pm.hook.harness_config_validate(cfg=cfg)
