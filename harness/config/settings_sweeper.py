"""The Optuna sweeper's settings, declared: ``hydra.sweeper.*`` under ``hydra/sweeper=optuna``.

These declarations are the one source of the sweeper's defaults: :func:`sweeper_node` is the
``hydra/sweeper/optuna`` node Hydra composes (:func:`harness.config.store.register_configs`) and passes, key
by key, to the sweeper (:class:`harness.sweep.sweeper.OptunaSweep`, which fills a key it is not given from
here too). The sampler and the pruner are config groups of their own (``conf/hydra/sweeper/sampler/``,
``pruner/``), built by the sweeper. The sweep's search space comes from each method plugin's suggested space,
then ``params``/``method_params``, then sweep overrides on the command line, in Hydra's sweeper syntax:
``choice(a,b)`` or ``a,b`` | ``range(start,stop,step)`` | ``interval(low,high)`` |
``tag(log, interval(low,high))``; a fixed override (``method.beta=0.1``) removes a dimension.
"""

from __future__ import annotations

from typing import Any

from harness.config.setting import Setting, SettingsGroup

SWEEPER_TARGET = "hydra_plugins.harness_optuna_sweeper.optuna_sweeper.HarnessOptunaSweeper"
SAMPLERS = ("tpe", "random", "grid", "cmaes", "nsga2")  # conf/hydra/sweeper/sampler/<name>.yaml
PRUNERS = ("median", "successive_halving", "hyperband", "none")  # conf/hydra/sweeper/pruner/<name>.yaml
DEFAULT_SAMPLER, DEFAULT_PRUNER = "tpe", "median"

# What a trial reports to the pruner after each checkpoint (``prune_value``), with the words a pruned trial's
# reason uses for it: ``peak``, its best value so far at any KL (optimistic: a trial whose KL rose above the
# budget may come back under it, as DPO at a high learning rate does, so it is not cut for that); ``best``,
# its value so far by the leaderboard's rule (its best checkpoint within the KL budget; it never falls);
# ``last``, the latest checkpoint's objective; ``ema``, an exponential moving average of the checkpoints'
# objectives (:data:`harness.sweep.study.PRUNE_EMA` on the latest), which smooths noisy evaluations.
PRUNE_VALUES = {
    "peak": "objective so far at any KL",
    "best": "objective so far",
    "last": "objective",
    "ema": "moving average of the objective",
}


def _names(value: Any) -> str | None:
    bad = next((v for v in value if not isinstance(v, str) or not v), None)
    return None if bad is None else f"{bad!r} is not a metric name"


SWEEPER = SettingsGroup(
    "hydra.sweeper",
    "Optuna search with Hydra launching the trials: python -m harness -m hydra/sweeper=optuna method=dpo. "
    "Optuna does the searching (ask-and-tell), Hydra the launching (hydra/launcher=joblib for parallel "
    f"trials); the sampler is hydra/sweeper/sampler=<{' | '.join(SAMPLERS)}> (default {DEFAULT_SAMPLER}), "
    f"the pruner hydra/sweeper/pruner=<{' | '.join(PRUNERS)}> (default {DEFAULT_PRUNER}).",
    (
        Setting(
            "study_name",
            None,
            "default: the sweep name (multirun/<sweep_name>, stable for the same command)",
            types=(str,),
            nullable=True,
        ),
        Setting(
            "storage",
            None,
            "default: an Optuna journal file <sweep dir>/optuna.journal; or any Optuna storage URL "
            "(postgresql://user@host/db for workers on several machines: pip install 'harness[postgres]'; "
            "the password from PGPASSWORD or ~/.pgpass, or in the URL: hidden in every file written)",
            types=(str,),
            nullable=True,
        ),
        Setting(
            "n_trials",
            20,
            "trials planned in the study; rerunning the command resumes it and runs only the missing ones",
            bounds="[1, inf)",
            fix="plan at least one trial",
        ),
        Setting(
            "budget_steps",
            None,
            "or a budget in optimizer steps: no trial is started once the finished ones trained this many "
            "(pruned ones count the steps they reached); n_trials still caps the count",
            types=(int,),
            bounds="[1, inf)",
            nullable=True,
            fix="give optimizer steps >= 1, or null for no budget",
        ),
        Setting(
            "n_jobs",
            1,
            "trials launched at once (with a parallel launcher, e.g. hydra/launcher=joblib); below 1: one",
        ),
        Setting(
            "objectives",
            ["auto"],
            "metrics to optimise, any an evaluator of the trial declares with a "
            "direction (key or leaderboard column): auto (gold reward, else reward-model "
            "score), kl, win_rate, ...; checked before any trial",
            types=(list,),
            check=_names,
            fix="give a list of metric names, e.g. [auto] or [auto, kl]",
        ),
        Setting(
            "directions",
            None,
            "null: each objective's declared direction (gold_reward maximize, kl minimize, ...); or one per "
            "objective (a single one applies to all), e.g. [maximize, minimize] for [auto, kl] with nsga2",
            types=(list,),
            nullable=True,
            fix="give a list of directions (maximize or minimize), one per objective, or null",
        ),
        Setting(
            "kl_budget",
            "${leaderboard.kl_budget}",
            "a trial's value is its best checkpoint within this "
            "KL (the leaderboard's rule); null = no budget",
            types=(int, float),
            bounds="(0, inf)",
            nullable=True,
            fix="use a number of nats > 0, or null",
        ),
        Setting(
            "kl_constraint",
            False,
            "also tell the sampler a trial is infeasible when no checkpoint is within the budget",
        ),
        Setting(
            "params",
            {},
            "dimensions for every trial: {<config key>: <sweep syntax>}; "
            "method.* keys apply to the methods that have them",
            types=(dict,),
            nullable=True,
            fix="give a mapping {<config key>: <sweep syntax>}, e.g. {method.beta: 'interval(0.05, 0.5)'}",
        ),
        Setting(
            "method_params",
            {},
            "per-method dimensions: {<method>: {<key under method>: <sweep syntax>}}, e.g. simpo: {gamma: "
            "interval(0.5, 2.0)}",
            types=(dict,),
            nullable=True,
            fix="give a mapping {<method>: {<key under method>: <sweep syntax>}}",
        ),
        Setting(
            "use_suggested",
            True,
            "start from each method plugin's suggested space (false: search only what is given)",
        ),
        Setting(
            "heartbeat_s",
            30,
            "how often a running trial refreshes its heartbeat in the study (seconds)",
            types=(int, float),
            bounds="(0, inf)",
        ),
        Setting(
            "stale_after_s",
            600,
            "a RUNNING trial with no heartbeat for this long (seconds; or whose "
            "process is gone) is lost; any live worker settles it (a worker whose plan "
            "is not complete waits for other workers' trials)",
            types=(int, float),
            bounds="(0, inf)",
        ),
        Setting(
            "max_retries",
            1,
            "a lost trial is marked failed and run again this many times",
            bounds="[0, inf)",
        ),
        Setting(
            "prune_warmup",
            0.33,
            "never prune a trial before this share of its planned "
            "optimizer steps (slow starters, e.g. DPO's dip)",
            bounds="[0, 1)",
            fix="give the share of a trial's steps before which it is never pruned, in [0, 1), e.g. 0.33",
        ),
        Setting(
            "prune_by_method",
            True,
            "the pruner compares a trial with trials of its own "
            "method only (learning curves differ by method)",
        ),
        Setting(
            "prune_value",
            "peak",
            "what a trial reports to the pruner at each checkpoint: peak = its best objective "
            "so far at any KL (optimistic: DPO at a high learning rate overshoots the KL "
            "budget, then comes back under it) | best = its value so far by the leaderboard's "
            "rule (best checkpoint within kl_budget) | last = the latest checkpoint's objective "
            "| ema = a moving average of the checkpoints' objectives",
            choices=tuple(PRUNE_VALUES),
            fix=f"use one of {', '.join(PRUNE_VALUES)}",
        ),
    ),
)


def sweeper_defaults() -> dict[str, Any]:
    """``{setting: default}`` of the Optuna sweeper (what Hydra passes when nothing is overridden)."""
    return SWEEPER.defaults()


def sweeper_node() -> dict[str, Any]:
    """The ``hydra/sweeper/optuna`` config node: the default sampler and pruner,
    the sweeper class, its settings."""
    return {
        "defaults": [{"sampler": DEFAULT_SAMPLER}, {"pruner": DEFAULT_PRUNER}, "_self_"],
        "_target_": SWEEPER_TARGET,
        # the sampler and pruner are built by the sweeper (the grid sampler needs the space)
        "_recursive_": False,
        **sweeper_defaults(),
    }
