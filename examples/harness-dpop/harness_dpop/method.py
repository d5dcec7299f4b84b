"""Method ``dpop``: DPO-Positive trained by its own plain-torch loop (no TRL trainer).

The loop is what any method with its own loop owes the harness: read the common knobs from ``ctx.method_cfg``,
call ``ctx.plan(total_steps)`` once, ``ctx.step(step, model, loss)`` after every optimizer step (the harness
checks the loss, takes and evaluates checkpoints there), and return the trained model. Sequence
log-probabilities come from :func:`harness.plugin.completion_logprobs`, which lays the texts out exactly as
the harness's evaluators (and TRL's trainers) do.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import torch

from harness.plugin import (
    DataError,
    Hyperparameter,
    MethodSpec,
    Profile,
    completion_logprobs,
    separate_reference,
)
from harness_dpop.loss import dpop_loss

if TYPE_CHECKING:
    from harness.plugin import TrainContext

HYPERPARAMETERS = [
    Hyperparameter(
        "beta",
        0.1,
        "inverse temperature of the implicit reward (DPO's KL strength); real models: 0.05 to 0.5",
        bounds="(0, inf)",
    ),
    Hyperparameter(
        "lam",
        5.0,
        "λ, weight of the penalty on the chosen completion losing log-probability against "
        "the reference (0 is DPO); the paper uses 50 on real models",
        bounds="[0, inf)",
    ),
]
# Real models: DPO's learning rate (the other common knobs keep the harness's conf/method/base.yaml defaults).
DEFAULTS = {"learning_rate": 5e-7}
# The toy world's tuning (model=toy): a higher rate, more epochs, bigger batches without accumulation.
TOY = Profile(
    {"learning_rate": 3e-4, "epochs": 3, "batch_size": 16, "grad_accum": 1},
    {"learning_rate": "tag(log, interval(1e-5, 3e-4))"},
)


def training_steps(num_examples: int, batch_size: int, grad_accum: int, epochs: float, max_steps: int) -> int:
    """Optimizer steps to take: ``max_steps`` when > 0, else ``epochs`` passes over the data
    (at least one)."""
    if max_steps > 0:
        return max_steps
    per_epoch = max(1, math.ceil(num_examples / (batch_size * grad_accum)))
    return max(1, math.ceil(epochs * per_epoch))


def micro_batches(data: Any, batch_size: int, seed: int) -> Iterator[dict[str, list[Any]]]:
    """Endless batches of ``data`` rows (``{"prompt": [...], "chosen": [...], "rejected": [...]}``),
    reshuffled every epoch with a seed derived from ``seed``."""
    for epoch in itertools.count():
        rows = data.shuffle(seed=seed + epoch)
        for start in range(0, len(rows), batch_size):
            yield rows[start : start + batch_size]


def _check_text(data: Any) -> None:
    """This example trains on string prompts and completions only (the toy world's and most files')."""
    if len(data) == 0:
        raise DataError("method dpop got no training pairs; check data.source and its split.")
    if not all(isinstance(data[0][column], str) for column in ("prompt", "chosen", "rejected")):
        raise DataError(
            "method dpop (example plugin) supports standard string pairs only, not conversational "
            "message lists; apply the chat template to the data first, or use method=dpo."
        )


def batch_loss(
    policy: torch.nn.Module,
    reference: torch.nn.Module | None,
    tokenizer: Any,
    batch: dict[str, list[Any]],
    *,
    beta: float,
    lam: float,
) -> torch.Tensor:
    """The DPOP loss of one batch: chosen and rejected scored in one forward pass per model.

    ``reference`` is the frozen reference model, or None for a peft ``policy`` whose base weights (adapter
    disabled) are the reference.
    """
    prompts = list(batch["prompt"]) * 2
    completions = [*batch["chosen"], *batch["rejected"]]
    n = len(batch["prompt"])
    policy_logps = completion_logprobs(policy, tokenizer, prompts, completions)  # [2n], with gradient
    with torch.no_grad():
        if reference is not None:
            reference_logps = completion_logprobs(reference, tokenizer, prompts, completions)
        else:
            with policy.disable_adapter():  # LoRA: the base model is the reference
                reference_logps = completion_logprobs(policy, tokenizer, prompts, completions)
    return dpop_loss(
        policy_logps[:n], policy_logps[n:], reference_logps[:n], reference_logps[n:], beta=beta, lam=lam
    )


def train(ctx: TrainContext) -> torch.nn.Module:
    """Train ``ctx.policy`` with DPOP on ``ctx.train_data`` (AdamW, the common knobs); returns the trained
    model (a peft model with LoRA)."""
    from transformers import get_scheduler

    m = ctx.method_cfg
    _check_text(ctx.train_data)
    policy = ctx.trainable_policy()  # wrapped with its LoRA adapter when the trial has one
    batch_size, accum = int(m.batch_size), int(m.grad_accum)
    total = training_steps(len(ctx.train_data), batch_size, accum, float(m.epochs), int(m.max_steps))
    params = [p for p in policy.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=float(m.learning_rate))
    warmup = float(m.warmup)  # a fraction of the steps if < 1, else a number of steps (as in base.yaml)
    scheduler = get_scheduler(
        str(m.scheduler),
        optimizer,
        num_training_steps=total,
        num_warmup_steps=round(warmup * total) if warmup < 1 else int(warmup),
    )
    # Mixed precision as the harness chose it (weights stay fp32 under bf16/fp16; fp16 needs loss scaling).
    amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(ctx.precision)
    scaler = torch.amp.GradScaler(ctx.device.type, enabled=ctx.precision == "fp16")
    batches = micro_batches(ctx.train_data, batch_size, int(ctx.cfg.seed))

    ctx.plan(total)  # so that train.num_checkpoints evenly spaced checkpoints are taken
    policy.train()
    for step in range(1, total + 1):
        optimizer.zero_grad(set_to_none=True)
        step_loss = 0.0
        for _ in range(accum):
            with torch.autocast(ctx.device.type, dtype=amp) if amp is not None else contextlib.nullcontext():
                loss = batch_loss(
                    policy, ctx.reference, ctx.tokenizer, next(batches), beta=float(m.beta), lam=float(m.lam)
                )
            scaler.scale(loss / accum).backward()
            step_loss += float(loss.detach()) / accum
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        ctx.step(step, policy, step_loss)  # loss check (a NaN fails the trial) and checkpoints
    return policy


def models_in_memory(cfg: Any) -> int:
    """The policy, and the frozen reference unless LoRA makes the adapter-disabled policy the reference."""
    return 1 + separate_reference(cfg)


def method_spec() -> MethodSpec:
    """The ``dpop`` method's declaration."""
    return MethodSpec(
        name="dpop",
        train=train,
        data_kind="pairwise",
        needs_reference=True,
        models_in_memory=models_in_memory,
        hyperparameters=HYPERPARAMETERS,
        defaults=DEFAULTS,
        profiles={"toy": TOY},
        lr_range=(5e-7, 5e-6),
        search_space={
            "beta": "tag(log, interval(0.02, 0.5))",
            "lam": "interval(0.0, 50.0)",
            "learning_rate": "tag(log, interval(1e-7, 1e-5))",
        },
        description="DPO-Positive (Pal et al. 2024): DPO with a penalty on the chosen completion's "
        "likelihood falling (example plugin, own torch loop)",
    )
