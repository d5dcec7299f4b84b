"""Compute budget per trial: optimizer steps, examples, tokens and a FLOPs estimate, from the trial record.

Methods compared at their own defaults rarely get the same budget (the toy world's CPO trains 250 steps, KTO
500), so every trial's budget is a column of ``leaderboard.csv`` and its mean per method a column of the cost
table, and the report says so in one line when methods' budgets differ by more than 10%.

- ``steps``: ``record.train.steps``, the optimizer steps the trainer took (PPO: PPO steps, each of
  ``batch_size`` rollouts and ``ppo_epochs`` passes over them);
- ``examples``: steps × ``batch_size`` × ``grad_accum`` (pairs for pairwise methods, unpaired examples for
  KTO, sampled completions for the online methods);
- ``tokens``: examples × the mean tokens per training example (``record.data.mean_tokens``: every sequence
  of a pair, capped at the maximum length; for the online methods the prompt plus the completion-length cap,
  an upper bound);
- ``flops_est``: 6 × N × tokens × passes for the policy (forward and backward; N = the policy's parameters,
  all of them: with LoRA the backward pass still runs through the frozen weights; passes: PPO's
  ``ppo_epochs``, GRPO's ``num_iterations``), plus 2 × N × tokens for each extra forward per example: each
  further model held (reference, reward or value model: ``models`` − 1; a reference precomputed once,
  ``precompute_ref_log_probs``, counts once per training row) and, for the online methods, sampling.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from statistics import median
from typing import Any

import pandas as pd

from harness.leaderboard.analysis.frames import format_value, trial_id
from harness.records import DataSummary, TrainSummary, TrialRecord

COLUMNS = ("steps", "examples", "tokens", "flops_est")
NOTES = {
    "steps": "optimizer steps taken (PPO: PPO steps of batch_size rollouts)",
    "examples": "steps × batch_size × grad_accum: pairs (pairwise methods), unpaired "
    "examples (KTO) or sampled completions (online methods)",
    "tokens": "examples × mean tokens per training example (both sequences of a pair, capped at "
    "max_length; online: prompt + the completion-length cap, an upper bound)",
    "flops_est": "estimate: 6·N·tokens·passes (policy forward and backward, N = its parameters) + "
    "2·N·tokens per extra forward (each further model held: reference, reward or value model; sampling for "
    "online methods); a precomputed reference counts once per training row",
}
DIFFERENCE = 0.10  # budgets differing by more than this (relative) are called out


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _round3(value: float) -> int:
    """An estimate to three significant digits, as an integer."""
    if value == 0:
        return 0
    digits = 2 - int(math.floor(math.log10(abs(value))))
    return int(round(value, digits))


def trial_budget(record: TrialRecord) -> dict[str, Any]:
    """``steps``, ``examples``, ``tokens`` and ``flops_est`` of one trial (None where the record lacks what
    they need: see the module docstring)."""
    train = record.train or TrainSummary()
    hp = record.hyperparameters or {}
    data = record.data or DataSummary()
    steps, batch = _number(train.steps), _number(hp.get("batch_size"))
    accum = _number(hp.get("grad_accum")) or 1.0
    examples = steps * batch * accum if steps is not None and batch is not None else None
    per_example = _number(data.mean_tokens)
    online = record.data_kind == "prompts"
    if online and per_example is not None:
        completion = _number(hp.get("trl.max_completion_length")) or _number(hp.get("response_length"))
        per_example = per_example + completion if completion is not None else None
    tokens = examples * per_example if examples is not None and per_example is not None else None
    params = _number(train.parameters)
    flops = None
    if tokens is not None and params is not None:
        passes = _number(hp.get("ppo_epochs")) or _number(hp.get("trl.num_iterations")) or 1.0
        extra = max(int(_number(record.models_in_memory) or 1) - 1, 0)
        extra_tokens = tokens * (extra + online)
        rows = _number(data.train_examples)
        if (
            hp.get("trl.precompute_ref_log_probs") is True
            and extra
            and rows is not None
            and per_example is not None
        ):
            extra_tokens += (
                rows * per_example - tokens
            )  # the reference read every training row once, before training
        flops = _round3(6 * params * tokens * passes + 2 * params * extra_tokens)
    as_int = {"steps": steps, "examples": examples, "tokens": tokens}
    return {**{k: (int(round(v)) if v is not None else None) for k, v in as_int.items()}, "flops_est": flops}


def add_to_trials(trials: pd.DataFrame, records: Sequence[TrialRecord]) -> pd.DataFrame:
    """``trials`` with the :data:`COLUMNS` of each trial's record (matched by trial id)."""
    if trials.empty or "trial_id" not in trials.columns:
        return trials
    budgets = {trial_id(r): trial_budget(r) for r in records}
    out = trials.copy()
    for column in COLUMNS:
        out[column] = pd.array([budgets.get(t, {}).get(column) for t in out["trial_id"]], dtype="Int64")
    return out


def add_to_cost(cost: pd.DataFrame, done: pd.DataFrame) -> pd.DataFrame:
    """The cost table with each method's mean budget over its completed trials (:data:`COLUMNS`)."""
    if cost.empty or done.empty or not set(COLUMNS) <= set(done.columns):
        return cost
    means = done[list(COLUMNS)].astype("Float64").groupby(done["method"]).mean()
    out = cost.copy()
    for column in COLUMNS:
        values = [means[column].get(m) for m in out["method"]]
        out[column] = pd.array(
            [
                None
                if v is None or pd.isna(v)
                else _round3(v)
                if column in ("tokens", "flops_est")
                else int(round(v))
                for v in values
            ],
            dtype="Int64",
        )
    return out


def _spread(values: Iterable[Any]) -> bool:
    present = [float(v) for v in values if not pd.isna(v)]
    return len(present) > 1 and min(present) > 0 and max(present) > (1 + DIFFERENCE) * min(present)


def budget_note(cost: pd.DataFrame, trials: pd.DataFrame | None = None) -> str | None:
    """One line when methods' mean steps or examples differ by more than 10%, listing each method's and the
    command-line settings that equalise them (when the methods' examples per step differ, as between online
    and offline methods, their FLOPs estimates instead: one max_steps cannot equalise them); None
    otherwise."""
    if cost.empty or "steps" not in cost.columns or len(cost) < 2:
        return None
    if not (_spread(cost["steps"]) or _spread(cost["examples"])):
        return None
    rows = cost.dropna(subset=["steps"]).sort_values(["steps", "method"])
    listed = ", ".join(
        f"{r['method']} {format_value(r['steps'])} steps"
        + (
            f" × {format_value(int(round(r['examples'] / r['steps'])))} examples"
            if not pd.isna(r["examples"]) and r["steps"]
            else ""
        )
        for r in rows.to_dict("records")
    )
    if _per_step_differs(
        rows
    ):  # online rollouts against offline pairs: steps and examples count other things
        flops = rows.dropna(subset=["flops_est"]).sort_values("flops_est")
        spread = (
            f"; their FLOPs estimates run from {format_value(float(flops['flops_est'].iloc[0]))} "
            f"({flops['method'].iloc[0]}) to {format_value(float(flops['flops_est'].iloc[-1]))} "
            f"({flops['method'].iloc[-1]})"
            if len(flops) > 1
            else ""
        )
        return (
            f"budgets differ: {listed}{spread}. Their examples are not the same thing (pairs, unpaired rows, "
            "sampled completions): compare `flops_est`, and match budgets per method (method.max_steps)."
        )
    steps = int(round(median(float(v) for v in rows["steps"])))
    batch = _common_batch(trials)
    settings = f"method.max_steps={steps}" + (f" method.batch_size={batch}" if batch else "")
    return (
        f"budgets differ: {listed}; equalise with {settings} "
        "on the command line, which applies to every method."
    )


def _per_step_differs(rows: pd.DataFrame) -> bool:
    """Whether the methods' examples per step differ (then one max_steps cannot equalise them)."""
    per_step = {
        round(float(r["examples"]) / float(r["steps"]))
        for r in rows.to_dict("records")
        if not pd.isna(r["examples"]) and r["steps"]
    }
    return len(per_step) > 1


def _common_batch(trials: pd.DataFrame | None) -> int | None:
    """The most common examples per step (batch_size × grad_accum) among completed trials, if known."""
    if trials is None or trials.empty or not {"steps", "examples"} <= set(trials.columns):
        return None
    per_step = (trials["examples"].astype("Float64") / trials["steps"].astype("Float64")).dropna()
    per_step = per_step[per_step > 0]
    return int(round(float(per_step.mode().iloc[0]))) if len(per_step) else None
