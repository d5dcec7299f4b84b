"""Checks of a composed trial config that must pass before any compute.

Core checks cover what every trial shares: each core setting against its declaration
(:mod:`~harness.config.declared`: ``train.*``, ``eval.*``, ``leaderboard.*``, ``tracking.*``, the top-level
keys, ``model.*`` with :mod:`~harness.config.model_settings`), the method known and its knobs in range,
``method.trl`` fields known to the method's TRL config, evaluators known, the model reachable,
``data.chat_template``, the cache directories usable (:func:`validate_caches`). Plugins add their own
through the ``harness_config_validate`` hook (a data plugin reads and validates its file there). Every
failure is a one-line :class:`harness.errors.UserError`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig

from harness.cache import cache_dir, check_directory
from harness.config import distributed, model_settings, resources, settings_eval, settings_run
from harness.config.metrics import resolve_metric
from harness.config.trainer_config import check_method_values, check_trl_fields
from harness.errors import ConfigError, UnknownNameError

if TYPE_CHECKING:
    from harness.plugin.manager import HarnessPluginManager
    from harness.plugin.specs import EvaluatorSpec


def validate_method(cfg: DictConfig, pm: HarnessPluginManager) -> None:
    """Method known, each knob valid against its declaration, its ``method.trl`` keys known and not set twice;
    then the method's own checks of settings that are wrong together."""
    spec = pm.method(str(cfg.method.name))
    check_method_values(spec, cfg.method)
    check_trl_fields(spec, cfg.method)
    if spec.validate is not None:
        spec.validate(cfg.method)


def evaluator_names(cfg: DictConfig) -> list[str]:
    """The evaluators a policy trial runs: ``eval.evaluators`` then ``eval.extra`` (each once, in order)."""
    names = [str(n) for n in [*(cfg.eval.get("evaluators") or []), *(cfg.eval.get("extra") or [])]]
    return list(dict.fromkeys(names))


def trial_evaluators(cfg: DictConfig, pm: HarnessPluginManager) -> list[EvaluatorSpec]:
    """The evaluators that run on the trial's checkpoints: those listed for a policy, or every evaluator that
    applies to what the method produces (a reward model)."""
    produces = pm.method(str(cfg.method.name)).produces
    if produces == "policy":
        return [pm.evaluator(name) for name in evaluator_names(cfg)]
    return [e for e in pm.evaluators.values() if e.applies_to == produces]


def metric_declarations(cfg: DictConfig, pm: HarnessPluginManager) -> dict[str, dict[str, Any]]:
    """What the trial's evaluators declare about their metrics,
    as written to its record (name -> declaration)."""
    return {m.name: m.to_record(e.name) for e in trial_evaluators(cfg, pm) for m in e.metrics}


def validate_eval(cfg: DictConfig, pm: HarnessPluginManager) -> None:
    """``eval.*`` valid against its declarations, its evaluators known and for policies,
    their options valid."""
    settings_eval.EVAL.check(cfg.eval)
    for name in evaluator_names(cfg):
        spec = pm.evaluator(name)
        if spec.applies_to != "policy":
            raise ConfigError(
                f"eval.evaluators lists {name}, which evaluates {spec.applies_to.replace('_', ' ')}s, "
                "not policies; remove it (it runs by itself on the checkpoints it applies to)."
            )
    for spec in pm.evaluators.values():
        options = cfg.eval.get(spec.name)
        for option in spec.options:
            value = options.get(option.name) if options is not None else option.default
            problem = option.problem(value)
            if problem is not None:
                meaning = f" ({option.help})" if option.help else ""
                raise ConfigError(f"eval.{spec.name}.{option.name}={value!r} is invalid{meaning}: {problem}.")
    validate_selection(cfg, pm)


def validate_selection(cfg: DictConfig, pm: HarnessPluginManager) -> None:
    """``eval.selection``: its declared settings (a number of prompts >= 0, a seed or null, a list of
    evaluators to exclude), and the evaluators it excludes known."""
    selection = cfg.eval.get("selection") or {}
    settings_eval.SELECTION.check(selection)
    unknown = next((name for name in selection.get("exclude") or [] if name not in pm.evaluators), None)
    if unknown is not None:
        raise UnknownNameError("evaluator in eval.selection.exclude", unknown, pm.evaluators)


def validate_objective(cfg: DictConfig, pm: HarnessPluginManager) -> None:
    """``leaderboard.objective`` is ``auto`` or a metric the trial's evaluators declare with a direction."""
    objective = (cfg.get("leaderboard") or {}).get("objective", "auto")
    if objective not in (None, "auto"):
        resolve_metric(
            str(objective),
            trial_evaluators(cfg, pm),
            "leaderboard.objective",
            registered=list(pm.evaluators.values()),
        )


def validate_train(cfg: DictConfig) -> None:
    """``train.*`` (the device and precision resolvable here) and the top-level keys, against their
    declarations (a multirun's ``sweep_name`` is checked with the run:
    :func:`harness.config.compose.validated_jobs`)."""
    device = resources.resolve_device(str(cfg.train.device))
    resources.resolve_precision(str(cfg.train.precision), device)
    settings_run.TRAIN.check(cfg.train)
    settings_run.TOP_LEVEL.check(cfg, skip=("sweep_name",))


def validate_reporting(cfg: DictConfig) -> None:
    """``leaderboard.*`` and ``tracking.*`` against their declarations (the trackers themselves: the trackers
    plugin)."""
    settings_run.LEADERBOARD.check(cfg.get("leaderboard"))
    settings_run.TRACKING.check(cfg.get("tracking"))


def validate_model(cfg: DictConfig, pm: HarnessPluginManager) -> None:
    """``model.*``: known keys and valid values (quantization and flash attention on the trial's device), the
    model reachable, and named LoRA target modules present in it (checked on its meta-device skeleton)."""
    model_settings.check_model_settings(cfg.model, resources.resolve_device(str(cfg.train.device)))
    path = resources.resolve_model_path(pm, cfg, dry_run=True)
    model_settings.check_lora_targets(path, cfg.model)


#: ``data.chat_template``'s values: those :mod:`harness.data.chat_data` reads (``CHAT_TEMPLATE_MODES``; this
#: layer does not import the data package, a test keeps the two equal).
CHAT_TEMPLATE_MODES = ("auto", "always", "never")


def validate_data(cfg: DictConfig, pm: HarnessPluginManager) -> None:
    """``data.chat_template`` one of auto/always/never; with ``always``, the model's tokenizer has a chat
    template (when it is at hand without building anything). ``data.columns`` is checked by the data source
    that reads it (``data=files``: :func:`harness.data.load_preference_data`)."""
    mode = str((cfg.get("data") or {}).get("chat_template") or "auto")
    if mode not in CHAT_TEMPLATE_MODES:
        raise ConfigError(
            f"data.chat_template={mode!r} is invalid; use auto (the model's template on string data when it "
            "has one), always or never."
        )
    if mode == "always":
        _check_has_template(resources.resolve_model_path(pm, cfg, dry_run=True), cfg.model)


def _check_has_template(path: str, model_cfg: DictConfig) -> None:
    """``data.chat_template=always``: the tokenizer at ``path`` has a chat template (one that cannot be loaded
    yet, e.g. a plugin's model not built, is checked when the trial loads it)."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(
            path,
            revision=model_cfg.get("revision"),
            trust_remote_code=bool(model_cfg.get("trust_remote_code")),
        )
    except (OSError, ValueError):
        return
    if getattr(tokenizer, "chat_template", None) is None:
        raise ConfigError(
            f"data.chat_template=always but the tokenizer of {path} has no chat template; use a chat model, "
            "set its tokenizer.chat_template, or data.chat_template=never (strings as they are)."
        )


def validate_processes(cfg: DictConfig, pm: HarnessPluginManager) -> None:
    """Multi-process training (torchrun/accelerate launch, FSDP, DeepSpeed):
    :func:`distributed.check_distributed`."""
    distributed.check_distributed(cfg, trains_with_trainer=pm.method(cfg.method.name).trainer is not None)


def cache_directories(cfg: DictConfig) -> dict[str, Path]:
    """The cache directories a trial of ``cfg`` reads and writes, by the setting that places them: the harness
    cache (``HARNESS_CACHE_DIR``), and ``toyworld.cache_dir`` and ``eval.cache_dir`` where set."""
    found = {"HARNESS_CACHE_DIR": cache_dir("")}
    toyworld = cfg.get("toyworld") or {}
    if toyworld.get("cache_dir"):
        found["toyworld.cache_dir"] = Path(str(toyworld.get("cache_dir"))).expanduser()
    evaluation = cfg.get("eval") or {}
    if evaluation.get("cache", True) and evaluation.get("cache_dir"):
        found["eval.cache_dir"] = Path(str(evaluation.get("cache_dir"))).expanduser()
    return found


def validate_caches(cfg: DictConfig) -> None:
    """Each cache directory exists or can be created, is a directory and is writable (in read-only cache
    mode: is a readable directory or absent), before any compute: :func:`harness.cache.check_directory`."""
    for setting, path in cache_directories(cfg).items():
        problem = check_directory(path, setting)
        if problem is not None:
            raise ConfigError(problem)


def validate_trial_config(cfg: DictConfig, pm: HarnessPluginManager) -> None:
    """Every check that must pass before a trial loads anything; raises a one-line UserError."""
    validate_method(cfg, pm)
    validate_train(cfg)
    validate_eval(cfg, pm)
    validate_reporting(cfg)
    validate_objective(cfg, pm)
    validate_model(cfg, pm)
    validate_processes(cfg, pm)
    validate_data(cfg, pm)
    validate_caches(cfg)
    pm.hook.harness_config_validate(cfg=cfg)
