"""Settings a plugin declares (:class:`Option`, :class:`Hyperparameter`) and the common training knobs.

Every method has the common knobs of :data:`COMMON_KNOBS` (``method.learning_rate``, ``method.epochs``, ...:
their defaults and comments are ``conf/method/base.yaml``); each maps onto one
``transformers.TrainingArguments`` field, so ``method.trl.<that field>`` is refused (one home per knob). A
method's own knobs are :class:`Hyperparameter` declarations in its :class:`harness.plugin.specs.MethodSpec`;
an evaluator's settings are :class:`Option` declarations. A value is checked against its declaration before
any compute. The trackers a trainer reports to and the run a trial logs to are ``tracking.*``
(:func:`tracking_report_to`, :class:`TrackingRun`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import ConfigError, PluginError

if TYPE_CHECKING:
    from omegaconf import DictConfig

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_BOUNDS = re.compile(r"^\s*([\[(])\s*([^,\s]+)\s*,\s*([^\])\s]+)\s*([\])])\s*$")


def reject(owner: str, message: str) -> None:
    """Raise the PluginError of a declaration that breaks the contract."""
    raise PluginError(f"{owner}: {message}")


def check_name(owner: str, what: str, name: Any, pattern: re.Pattern[str] = _NAME) -> None:
    """Reject a name that is not an identifier (or does not match ``pattern``)."""
    if not isinstance(name, str) or not pattern.match(name):
        reject(owner, f"{what} {name!r} is invalid; use letters, digits and underscores (e.g. 'my_method').")


def parse_bounds(text: str) -> tuple[float, float, bool, bool]:
    """``"(0, inf)"`` -> (low, high, low inclusive, high inclusive); ValueError for anything else."""
    match = _BOUNDS.match(text)
    if not match:
        raise ValueError(text)
    low, high = float(match.group(2)), float(match.group(3))
    if math.isnan(low) or math.isnan(high) or low > high:
        raise ValueError(text)
    return low, high, match.group(1) == "[", match.group(4) == "]"


_TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _expected_types(default: Any) -> tuple[type, ...] | None:
    """The types a setting with this default takes (None: not checked, e.g. lists and mappings)."""
    if isinstance(default, bool):
        return (bool,)
    if isinstance(default, int):
        return (int,)
    if isinstance(default, float):
        return (int, float)
    if isinstance(default, str):
        return (str,)
    return None


def _has_type(value: Any, types: tuple[type, ...]) -> bool:
    if isinstance(value, bool):
        return bool in types
    return isinstance(value, types)


@dataclass(frozen=True)
class Option:
    """A setting a plugin declares, with its default and meaning; values are checked before any compute.

    Attributes:
        name: the key (``eval.<evaluator>.<name>`` for an evaluator option).
        default: the default value. Its type is the setting's type unless ``types`` says otherwise: an int
            setting takes integers, a float setting any number, a bool setting true/false, a string setting
            strings; lists and mappings are not type-checked. A ``None`` default needs ``nullable=True`` (null
            is a value: "none", "the task's default") or ``types`` (the config must set a value of those
            types; null is refused before any compute); a bare ``None`` default is refused when the plugin
            registers.
        help: one line saying what it means and its unit (shown in errors and listings).
        bounds: for numbers, the allowed interval in interval notation: ``"(0, inf)"`` (positive),
            ``"[0, 1]"``, ``"[1, inf)"``. A number must also be finite (``inf`` and ``nan`` are never values).
        choices: the allowed values (strings usually).
        nullable: whether ``null`` is a valid value.
        types: the accepted types when the default's type is not enough, e.g. ``(int, float)``.
    """

    name: str
    default: Any
    help: str = ""
    bounds: str | None = None
    choices: tuple[Any, ...] | None = None
    nullable: bool = False
    types: tuple[type, ...] | None = None

    def __post_init__(self) -> None:
        owner = f"{type(self).__name__} {self.name!r}"
        check_name(owner, "name", self.name)
        if self.bounds is not None:
            try:
                parse_bounds(self.bounds)
            except (ValueError, TypeError):
                reject(
                    owner, f"bounds {self.bounds!r} is not an interval; write e.g. '(0, inf)' or '[0, 1]'."
                )
        if self.choices is not None:
            object.__setattr__(self, "choices", tuple(self.choices))
        if self.types is not None:
            object.__setattr__(self, "types", tuple(self.types))
        if self.default is None and not self.nullable and self.types is None:
            reject(
                owner,
                "the default None gives no type and does not say null is allowed; declare nullable=True "
                "(null is a valid value) or types=(...) (the config must set a value of those types).",
            )
        problem = self.problem(self.default) if self.default is not None else None
        if problem:
            reject(owner, f"the default {self.default!r} is invalid: {problem}.")

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not acceptable for this setting (None when it is)."""
        if value is None:
            return None if self.nullable else "it must not be null"
        types = self.types or _expected_types(self.default)
        if types is not None and not _has_type(value, types):
            wanted = (
                "a number" if float in types else " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)
            )
            return f"it must be {wanted}"
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                return "it must be a finite number"
            if self.bounds is not None:
                low, high, low_in, high_in = parse_bounds(self.bounds)
                if (
                    value < low
                    or value > high
                    or (value == low and not low_in)
                    or (value == high and not high_in)
                ):
                    return f"it must lie in {self.bounds}"
        if self.choices is not None and value not in self.choices:
            return f"use one of {', '.join(map(str, self.choices))}"
        return None


@dataclass(frozen=True)
class Hyperparameter(Option):
    """A method's own knob, set as ``method.<name>`` (the common training knobs are the harness's own).

    Attributes:
        field: the field of the method's trainer config this knob sets (``TrainContext.trl_config`` passes it,
            and ``method.trl.<field>`` is then refused as a second way to set it); ``None`` when the method
            reads ``ctx.method_cfg.<name>`` itself.
        paper_name: what the method's paper calls this knob when that differs from ``name`` (IPO's ``beta`` is
            its paper's ``tau``, ORPO's is ``lambda``): reports show it beside the key, ``beta (tau)=0.5``, so
            a reader does not take one sweep column for one quantity.
    """

    field: str | None = None
    paper_name: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = f"Hyperparameter {self.name!r}"
        if self.name in COMMON_KNOBS or self.name in ("name", "trl"):
            reject(
                owner,
                f"method.{self.name} is one of the harness's own keys; set its default in "
                f"MethodSpec.defaults instead of declaring it.",
            )
        if self.field is not None:
            check_name(owner, "field", self.field)
        if self.paper_name is not None and (
            not isinstance(self.paper_name, str) or not self.paper_name.strip()
        ):
            reject(owner, "paper_name must be a non-empty string (or None: the paper calls it by its key).")


# The common training knobs: method.<key> -> (the TrainingArguments field it sets, its checks). Their defaults
# and meanings are in conf/method/base.yaml; a method changes a default through MethodSpec.defaults.
COMMON_KNOBS: dict[str, Option] = {
    "learning_rate": Option("learning_rate", None, types=(int, float), bounds="(0, inf)"),
    "epochs": Option("epochs", None, types=(int, float), bounds="(0, inf)"),
    "max_steps": Option("max_steps", None, types=(int,), bounds="[-1, inf)"),
    "batch_size": Option("batch_size", None, types=(int,), bounds="[1, inf)"),
    "grad_accum": Option("grad_accum", None, types=(int,), bounds="[1, inf)"),
    "warmup": Option("warmup", None, types=(int, float), bounds="[0, inf)"),
    "scheduler": Option("scheduler", None, types=(str,)),
}
TRAINING_ARGUMENTS = {
    "learning_rate": "learning_rate",
    "epochs": "num_train_epochs",
    "max_steps": "max_steps",
    "batch_size": "per_device_train_batch_size",
    "grad_accum": "gradient_accumulation_steps",
    "warmup": "warmup_steps",
    "scheduler": "lr_scheduler_type",
}
# TrainingArguments fields the harness sets itself; method.trl may not set them.
MANAGED_TRL_FIELDS = set(TRAINING_ARGUMENTS.values()) | {
    "output_dir",
    "seed",
    "data_seed",
    "logging_steps",
    "save_strategy",
    "eval_strategy",
    "report_to",
    "bf16",
    "fp16",
    "use_cpu",
    "gradient_checkpointing",
    "activation_checkpointing",
    "disable_tqdm",
    "run_name",
    "project",
    "logging_dir",
}
# The harness's config key for a managed field that a user sets through it
# (named when method.trl sets the field).
MANAGED_TRL_HOMES = {
    "report_to": "tracking.report_to",
    "project": "tracking.project",
    "logging_dir": "tracking.dir",
}


# Experiment tracking (``tracking.*``): the trackers the trainer reports to, and the run each trial logs to.
# The core passes them to the trainer; a plugin (the built-in ``trackers``) opens, fills and closes the runs.


def tracking_report_to(value: Any) -> list[str]:
    """``tracking.report_to`` as a list of tracker names: one name or a list; ``none``,
    null and ``[]`` mean none."""
    if value is None or isinstance(value, str):
        names = [] if value in (None, "", "none") else [value]
    elif isinstance(value, Sequence):  # a list, or OmegaConf's ListConfig
        names = [str(name) for name in value if str(name) != "none"]
    else:
        raise ConfigError(
            f"tracking.report_to={value!r} is invalid; give a tracker or a list of trackers, "
            "e.g. tracking.report_to=[tensorboard,mlflow] (none: no tracker)."
        )
    return list(dict.fromkeys(names))


@dataclass(frozen=True)
class TrackingRun:
    """The run a trial logs to, in every tracker.

    Attributes:
        name: ``<sweep>/<trial number>`` for a multirun's trial (its directory ``multirun/<sweep>/<n>``); in
            general the trial directory's last two parts (``outputs/<time>`` for a single run).
        directory: its local files (TensorBoard's event files, W&B's ``wandb/`` folder):
            ``<tracking.dir>/<name>``, or ``<trial dir>/tracking`` when ``tracking.dir`` is null.
        project: ``tracking.project`` (the W&B project, MLflow experiment, trackio project).
    """

    name: str
    directory: Path
    project: str

    @classmethod
    def of(cls, tracking: DictConfig | Mapping[str, Any] | None, trial_dir: str | Path) -> TrackingRun:
        """The run of the trial in ``trial_dir`` under the ``tracking`` config node
        (a mapping; None: defaults)."""
        tracking = tracking or {}
        path = Path(trial_dir).absolute()
        name = f"{path.parent.name}/{path.name}" if path.parent.name else path.name
        root = tracking.get("dir")
        return cls(
            name=name,
            directory=Path(root) / name if root else path / "tracking",
            project=str(tracking.get("project") or "harness"),
        )
