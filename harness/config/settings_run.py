"""The run's own settings, declared: the top-level keys, ``train.*``, ``tracking.*`` and ``leaderboard.*``.

Hydra gets their defaults as the ``core_settings`` node that ``conf/config.yaml`` lists
(:func:`harness.config.store.register_configs`); :mod:`harness.config.validation` checks a trial's values
against them before any compute. See :mod:`harness.config.setting` for what a declaration holds.
"""

from __future__ import annotations

from typing import Any

from harness.config.setting import Setting, SettingsGroup
from harness.config.sweep_checks import (
    DEFAULT_VERDICT_MARGIN,
    check_matched_kl,
    check_sweep_name,
    check_verdict_margin,
)

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
RERUN_CHOICES = ("missing", "all")


def _names(value: Any) -> str | None:
    """Every entry of a list is a non-empty name (a string)."""
    bad = (
        next((v for v in value if not isinstance(v, str) or not v), None) if isinstance(value, list) else None
    )
    return None if bad is None else f"{bad!r} is not a name"


def _sweep_name(value: Any) -> str | None:
    check_sweep_name(value)  # raises its own line
    return None


def _matched_kl(value: Any) -> str | None:
    check_matched_kl(value)  # raises its own line (the leaderboard reads old records' values with it too)
    return None


def _verdict_margin(value: Any) -> str | None:
    check_verdict_margin(value)  # raises its own line (python -m harness.leaderboard --margin runs it too)
    return None


TOP_LEVEL = SettingsGroup(
    "",
    "The trial's seed, extra plugins, output and multirun naming: python -m harness key=value.",
    (
        Setting("seed", 0, "seeds data order, LoRA init and (with eval.seed) evaluation sampling"),
        Setting(
            "plugins",
            [],
            "extra plugin modules to import, e.g. [my_pkg.my_method]",
            types=(list,),
            check=_names,
            fix="give a list of modules to import, e.g. plugins=[my_pkg.my_method]",
        ),
        Setting(
            "verbose",
            False,
            "show the libraries' own progress bars, info logs and warnings on the console (datasets, "
            "transformers, TRL); false: their warnings and log records go to the trial's log file only",
        ),
        Setting(
            "sweep_name",
            "${now:%Y-%m-%d_%H-%M-%S}",
            "multirun name: trials in multirun/<sweep_name>/, report in leaderboards/<sweep_name>/ (one "
            "plain directory name; default: the time the multirun starts)",
            types=(str, int),
            check=_sweep_name,
        ),
        Setting(
            "rerun",
            "missing",
            "a multirun run again with the same sweep_name: missing = skip trials completed with the same "
            "config, run the rest | all = run every trial again (the command line's --force)",
            choices=RERUN_CHOICES,
            fix="use rerun=missing (skip completed trials) or rerun=all",
        ),
    ),
)

TRAIN = SettingsGroup(
    "train",
    "How every trial trains, whatever its method: checkpoints, device, precision, logging.",
    (
        Setting(
            "checkpoint_every",
            0,
            "save (and evaluate) a checkpoint every N optimizer steps; 0 = use num_checkpoints",
            bounds="[0, inf)",
            fix="use 0 (train.num_checkpoints evenly spaced checkpoints) or a number of steps",
        ),
        Setting(
            "num_checkpoints",
            4,
            "with checkpoint_every=0: this many evenly spaced checkpoints, the last being the final model",
            bounds="[1, inf)",
            fix="use a positive integer (1 = final model only)",
        ),
        Setting(
            "save_checkpoints",
            True,
            "write checkpoint weights (safetensors) to <trial dir>/checkpoints/step-N/: true = the "
            "evaluated ones (eval.checkpoints), all = every one, false = none",
            types=(bool, str),
            choices=(True, "all", False),
            fix="use true (the evaluated checkpoints), all (every checkpoint) or false (none)",
        ),
        Setting("device", "auto", "auto (cuda > mps > cpu) | cpu | cuda | mps", choices=DEVICES),
        Setting(
            "precision",
            "auto",
            "auto (bf16 on a GPU that supports it, else fp32) | fp32 | bf16 | fp16",
            choices=PRECISIONS,
        ),
        Setting("gradient_checkpointing", False, "trade compute for memory on large models"),
        Setting(
            "logging_steps",
            5,
            "log the training loss every N steps (a NaN loss fails the trial at the next log)",
            bounds="[1, inf)",
            fix="log every N >= 1 optimizer steps",
        ),
        Setting(
            "num_threads",
            0,
            "torch CPU threads; 0 = torch's default (all cores; "
            "split between the trials a parallel launcher runs)",
            bounds="[0, inf)",
            fix="use a number of threads >= 1, or 0 (torch's default)",
        ),
    ),
)

TRACKING = SettingsGroup(
    "tracking",
    'Experiment trackers (README "Experiment trackers"): one run per trial, named <sweep>/<trial number>.',
    (
        Setting(
            "report_to",
            [],
            "TRL's report_to: any of [tensorboard, wandb, mlflow, trackio]; [] or none = no tracker",
            types=(list, str),
            nullable=True,
            check=_names,
            fix="give a tracker or a list of trackers, e.g. "
            "tracking.report_to=[tensorboard,mlflow] (none: no tracker)",
        ),
        Setting(
            "project",
            "harness",
            "the W&B project, MLflow experiment and trackio project the runs go to (null: harness)",
            nullable=True,
        ),
        Setting(
            "dir",
            None,
            "TensorBoard event files in <dir>/<run name>, W&B's "
            "files in <dir>/wandb; null = the trial directory",
            types=(str,),
            nullable=True,
        ),
    ),
)

LEADERBOARD = SettingsGroup(
    "leaderboard",
    "The comparative report a multirun writes when it ends (python -m harness.leaderboard rebuilds it).",
    (
        Setting(
            "dir",
            "leaderboards",
            "reports go to <dir>/<sweep name>/, relative to the directory the command runs in",
        ),
        Setting("print", True, "print the leaderboard table when a multirun ends"),
        Setting(
            "objective",
            "auto",
            "metric to rank by: auto = gold reward (else reward-model score, ...), or any metric an "
            "evaluator declares with a direction (name or column); null = auto",
            nullable=True,
        ),
        Setting(
            "kl_budget",
            10.0,
            "each trial is shown at its best checkpoint with KL <= this (nats); null = no budget",
            types=(int, float),
            bounds="(0, inf)",
            nullable=True,
            fix="use a KL budget in nats > 0, or null (no budget)",
        ),
        Setting(
            "matched_kl",
            [1, 2, 5],
            "KL values (nats) at which each method's reward-vs-KL frontier is read for the \"reward at "
            'matched KL" table (interpolated, never extrapolated); [] = no table',
            types=(list,),
            nullable=True,
            check=_matched_kl,
            fix="give a list of KL values in nats > 0, e.g. [1, 2, 5], or [] for none",
        ),
        Setting(
            "matched_kl_max_gap",
            1.0,
            'widest KL gap (nats) between two checkpoints that a "reward at matched KL" value may be '
            "interpolated across unmarked; wider gaps are marked in the table; null = never marked",
            types=(int, float),
            bounds="(0, inf)",
            nullable=True,
            fix="use a KL gap in nats > 0, or null (never marked)",
        ),
        Setting(
            "verdict_margin",
            DEFAULT_VERDICT_MARGIN,
            "the verdict's equivalence margin, as a share in (0, 1) of the recommended method's test gain "
            "over the base model: two methods whose difference is shown to lie inside it are tied; "
            "null = the default",
            nullable=True,
            check=_verdict_margin,
        ),
    ),
)
