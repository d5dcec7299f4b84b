"""RLHF with PPO: the harness's own trainer on transformers primitives (TRL 1.x dropped its PPOTrainer).

After the published recipe (Huang et al. 2024, "The N Implementation Details of RLHF with PPO", and the design
of TRL's former PPO trainer): each PPO step samples ``batch_size`` responses from the policy, scores them with
``method.reward`` (the data's gold reward, or a sequence-classification reward model), normalises the scores
(``reward_norm``, whitening by default: the seed warns that PPO without it is unstable), adds a per-token KL
penalty to the reference (``kl_penalty``: kl, abs, mse or full; coefficient ``init_kl_coef``, adapted toward
``target_kl`` when ``adaptive_kl``), estimates advantages with GAE (``gamma``, ``lam``) from a separate value
model (initialised from the policy's base, ``cliprange_value``, ``vf_coef``), whitens them, and runs
``ppo_epochs`` passes of clipped-surrogate updates (``cliprange``) over minibatches of ``mini_batch_size``.
Four models are involved: policy, reference (the adapter-disabled policy with LoRA), value model and reward
model (none with a programmatic reward). The arithmetic is in :mod:`harness_plugins.methods.ppo_math`.

This module declares the method (its hyperparameters, checks and registration) and runs the training loop;
one PPO iteration is :func:`harness_plugins.methods.ppo_step.ppo_step`, and the forward passes of the policy,
reference and value model and the reward scorer are in :mod:`harness_plugins.methods.ppo_models`.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any

import torch
from harness_plugins.methods.online_rl import REWARD_KNOBS, check_reward_is_set, reward_models
from harness_plugins.methods.ppo_math import AdaptiveKLController, FixedKLController
from harness_plugins.methods.ppo_models import (
    load_value_model,
    logprobs_and_entropy,
    make_scorer,
    response_logits,
    response_values,
)
from harness_plugins.methods.ppo_step import PPOState, RunningMoments, ppo_step
from omegaconf import DictConfig

from harness.plugin import (
    ConfigError,
    Hyperparameter,
    MethodSpec,
    Profile,
    hookimpl,
    render_prompts,
    sample,
    separate_reference,
)

if TYPE_CHECKING:
    from torch.optim.lr_scheduler import LRScheduler

    from harness.plugin import TrainContext

# The helpers of the PPO trainer were defined here before it was split; they stay importable from this module.
__all__ = [
    "HYPERPARAMETERS",
    "KL_PENALTIES",
    "REWARD_NORMS",
    "RunningMoments",
    "harness_methods_register",
    "load_value_model",
    "logprobs_and_entropy",
    "make_scorer",
    "response_logits",
    "response_values",
    "train",
]

KL_PENALTIES = ("kl", "abs", "mse", "full")
REWARD_NORMS = ("whiten", "running", "none")


def _settings(m: DictConfig) -> dict[str, Any]:
    return {h.name: m[h.name] for h in HYPERPARAMETERS if h.name not in ("reward", "reward_stage")}


def train(ctx: TrainContext) -> torch.nn.Module:
    """Train the policy with PPO; returns the trained policy (a peft model with LoRA)."""
    from tqdm.auto import tqdm

    m, s = ctx.method_cfg, _settings(ctx.method_cfg)
    device, tokenizer, seed = ctx.device, ctx.tokenizer, int(ctx.cfg.seed)
    policy = ctx.trainable_policy()
    value_model = load_value_model(policy, device)
    score = make_scorer(ctx.cfg, device)
    params = [p for p in policy.parameters() if p.requires_grad] + list(value_model.parameters())
    optimizer = torch.optim.AdamW(params, lr=float(m.learning_rate), eps=1e-5)
    # Message-list prompts through the chat template (its text holds the special tokens:
    # add none when sampling).
    # The reward model reads the source prompts in its own rendering (harness.plugin.score_pairs).
    sources = list(ctx.train_data.shuffle(seed=seed)["prompt"])
    prompts, chat = render_prompts(tokenizer, sources)
    batch = int(m.batch_size)
    per_epoch = math.ceil(len(prompts) / batch)
    total = int(m.max_steps) if int(m.max_steps) > 0 else max(1, round(float(m.epochs) * per_epoch))
    state = PPOState(
        policy=policy,
        reference=ctx.reference,
        value_model=value_model,
        tokenizer=tokenizer,
        score=score,
        settings=s,
        kl_ctl=_kl_controller(s),
        moments=RunningMoments(),
        optimizer=optimizer,
        scheduler=_scheduler(m, s, optimizer, total),
        params=params,
        generator=torch.Generator().manual_seed(seed),
        device=device,
        sample_fn=functools.partial(sample, add_special_tokens=not chat),
    )
    ctx.plan(total)
    bar = tqdm(total=total, desc=f"train {ctx.spec.name}", unit="step", leave=False)
    for step in range(1, total + 1):
        start = (step - 1) * batch
        chunk = [(start + i) % len(prompts) for i in range(batch)]  # cycling through the prompts
        stats = ppo_step(
            state,
            [prompts[i] for i in chunk],
            seed=seed * 1_000_003 + step,
            sources=[sources[i] for i in chunk],
        )
        bar.update(1)
        bar.set_postfix(reward=f"{stats['reward']:.3g}", kl=f"{stats['kl']:.3g}", refresh=False)
        ctx.step(step, policy, stats.pop("loss"), **stats)  # loss check, log, checkpoints
    bar.close()
    return policy


def _scheduler(m: DictConfig, s: dict[str, Any], optimizer: torch.optim.Optimizer, total: int) -> LRScheduler:
    """``method.scheduler`` over every minibatch update of ``total`` PPO steps (``method.warmup``: a fraction
    of them below 1, else a count)."""
    from transformers import get_scheduler

    warmup = float(m.warmup)
    updates_per_step = int(s["ppo_epochs"]) * math.ceil(int(m.batch_size) / int(s["mini_batch_size"]))
    return get_scheduler(
        str(m.scheduler),
        optimizer,
        num_warmup_steps=int(warmup * total if warmup < 1 else warmup),
        num_training_steps=total * updates_per_step,
    )


def _kl_controller(s: dict[str, Any]) -> AdaptiveKLController | FixedKLController:
    """The KL coefficient's controller: adapted toward ``target_kl`` (``adaptive_kl``), else fixed."""
    if s["adaptive_kl"]:
        return AdaptiveKLController(float(s["init_kl_coef"]), float(s["target_kl"]), int(s["horizon"]))
    return FixedKLController(float(s["init_kl_coef"]))


def _validate(m: DictConfig) -> None:
    check_reward_is_set(m)
    if int(m.grad_accum) != 1:
        raise ConfigError(
            f"method.grad_accum={m.grad_accum} is not used by PPO (each update is one minibatch of "
            "method.mini_batch_size responses); leave it at 1."
        )
    if int(m.batch_size) % int(m.mini_batch_size):
        raise ConfigError(
            f"method.mini_batch_size={m.mini_batch_size} must divide method.batch_size={m.batch_size}."
        )


def _models(cfg: DictConfig) -> int:
    """Policy and value model, the reference unless LoRA provides it,
    the reward model unless the reward is gold."""
    return 2 + separate_reference(cfg) + reward_models(cfg)


HYPERPARAMETERS = [
    *REWARD_KNOBS,
    Hyperparameter(
        "kl_penalty",
        "kl",
        "per-token KL penalty: kl (log-ratio) | abs | mse | full (exact over the vocabulary)",
        choices=KL_PENALTIES,
    ),
    Hyperparameter(
        "init_kl_coef",
        0.2,
        "KL coefficient; real models: 0.02 to 0.2 (the seed: too low -> reward hacking)",
        bounds="[0, inf)",
    ),
    Hyperparameter("adaptive_kl", True, "adapt the coefficient toward target_kl (Ziegler et al. 2019)"),
    Hyperparameter(
        "target_kl",
        6.0,
        "nats per sequence the adaptive controller aims for (the seed's healthy band is 0.5 to 10)",
        bounds="(0, inf)",
    ),
    Hyperparameter(
        "horizon", 10000, "samples over which the controller corrects a full error", bounds="[1, inf)"
    ),
    Hyperparameter("cliprange", 0.2, "PPO policy ratio clip", bounds="[0, inf)"),
    Hyperparameter("cliprange_value", 0.2, "value-function clip", bounds="[0, inf)"),
    Hyperparameter("vf_coef", 0.1, "weight of the value loss", bounds="[0, inf)"),
    Hyperparameter("gamma", 1.0, "discount (the recipe uses 1)", bounds="[0, 1]"),
    Hyperparameter("lam", 0.95, "GAE lambda (the recipe uses 0.95)", bounds="[0, 1]"),
    Hyperparameter("ppo_epochs", 4, "passes over each batch of rollouts", bounds="[1, inf)"),
    Hyperparameter(
        "mini_batch_size", 8, "responses per gradient update (divides batch_size)", bounds="[1, inf)"
    ),
    Hyperparameter(
        "reward_norm",
        "whiten",
        "whiten (per batch) | running (running mean/std) | none; the seed: unnormalised PPO is unstable",
        choices=REWARD_NORMS,
    ),
    Hyperparameter("response_length", 256, "tokens sampled per response", bounds="[1, inf)"),
    Hyperparameter("temperature", 1.0, "sampling temperature during rollouts", bounds="(0, inf)"),
    Hyperparameter("max_grad_norm", 1.0, "gradient clipping", bounds="(0, inf)"),
    Hyperparameter(
        "missing_eos_penalty",
        None,
        "subtract this from the score of responses that hit response_length without EOS (null: none)",
        types=(int, float),
        nullable=True,
        bounds="[0, inf)",
    ),
]


@hookimpl
def harness_methods_register() -> list[MethodSpec]:
    """RLHF-PPO."""
    return [
        MethodSpec(
            name="ppo",
            train=train,
            data_kind="prompts",
            models_in_memory=_models,
            needs_reference=True,
            hyperparameters=HYPERPARAMETERS,
            lr_range=(1e-7, 1e-5),
            validate=_validate,
            description="RLHF with PPO (policy, reference, value and reward models; KL-penalised reward)",
            # Real models (the seed's recipe): batch 64 to 512 rollouts per step, one minibatch per update.
            defaults={
                "learning_rate": 1e-6,
                "batch_size": 64,
                "grad_accum": 1,
                "warmup": 0.0,
                "scheduler": "constant",
            },
            profiles={
                "toy": Profile(  # the toy world's tuning: 60 steps, adaptive KL toward 4 nats
                    {
                        "learning_rate": 1e-4,
                        "max_steps": 60,
                        "init_kl_coef": 0.05,
                        "target_kl": 4.0,
                        "mini_batch_size": 16,
                        "response_length": 24,
                    },
                    {"learning_rate": "tag(log, interval(1e-5, 1e-3))"},
                )
            },
            search_space={
                "init_kl_coef": "tag(log, interval(0.01, 0.5))",
                "learning_rate": "tag(log, interval(1e-7, 1e-5))",
            },
            loss_notes="The harness's PPO (plugins/methods/ppo_math.py): the normalised score at the last "
            "response token minus kl_coef × per-token KL at every token, GAE advantages (whitened), clipped "
            "surrogate averaged per response token, plus vf_coef × clipped value loss; one step = "
            "batch_size rollouts and ppo_epochs passes of minibatch updates.",
        )
    ]
