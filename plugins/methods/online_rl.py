"""GRPO and RLOO on TRL's trainers: online RL that samples its own completions and scores them with a reward.

Both train on the distinct prompts of the data (``data_kind="prompts"``). ``method.reward`` chooses the
reward: ``gold`` is the data source's programmatic reward (the toy world's, or one a plugin registers through
``harness_gold_reward``); ``trained`` is the harness's own reward stage (``method=reward`` on the same model
and data, settings from ``method.reward_stage``), trained once and cached by its settings; anything else is a
sequence-classification reward model, a local directory or a Hub id, that TRL loads and runs on the
completions. ``method.beta`` is the KL coefficient to the reference model (> 0: without it KL drifts freely,
which the seed's health checks flag).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig

from harness.plugin import (
    ConfigError,
    Hyperparameter,
    MethodSpec,
    Profile,
    check_reward_model,
    hookimpl,
    separate_reference,
)
from harness.plugin import gold_reward as data_gold_reward

if TYPE_CHECKING:
    from transformers import PreTrainedModel, Trainer

    from harness.plugin import TrainContext


def reward_function(cfg: DictConfig) -> Callable[..., list[float]] | str:
    """The reward TRL should optimise for ``cfg``: the gold reward as a TRL reward function
    (``f(prompts, completions, **columns) -> list[float]``), or the reward model's path or Hub id."""
    name = str(cfg.method.reward)
    if name == "trained":
        from harness_plugins.methods.reward import trained_reward_model

        return trained_reward_model(cfg)
    if name != "gold":
        return name
    gold = data_gold_reward(cfg)
    if gold is None:
        raise ConfigError(
            f"method.reward=gold but data.source={cfg.data.source!r} defines no gold reward; set "
            "method.reward to a reward model (a local directory or Hub id)."
        )

    def gold_reward(prompts: Sequence[str], completions: Sequence[str], **_: Any) -> list[float]:
        return [float(r) for r in gold(list(prompts), list(completions))]

    return gold_reward


@hookimpl
def harness_config_validate(cfg: DictConfig) -> None:
    """A method trained on ``method.reward`` (GRPO, RLOO, PPO) gets a reward that exists: the data's gold
    reward for ``gold``, else a loadable one-output reward model."""
    reward = cfg.method.get("reward")
    if reward is None or not isinstance(reward, str):
        return
    if reward == "gold":
        reward_function(cfg)  # raises ConfigError when the data defines no gold reward
        return
    if reward == "trained":
        from harness_plugins.methods.reward import reward_stage

        reward_stage(
            cfg
        ).check()  # its settings (method.reward_stage) against method=reward, before any compute
        return
    check_reward_model(reward, key="method.reward", alternative=", or use method.reward=gold")


@hookimpl
def harness_default_reward_model(cfg: DictConfig) -> str | None:
    """A method trained on a reward model is also evaluated with it (its score beside the gold reward)."""
    reward = cfg.method.get("reward")
    if not isinstance(reward, str) or reward == "gold":
        return None
    result = reward_function(cfg)
    return result if isinstance(result, str) else None


def check_reward_is_set(method_cfg: DictConfig) -> None:
    """Raise a one-line ConfigError when ``method.reward`` is empty (every method trained on a reward)."""
    if not method_cfg.get("reward"):
        raise ConfigError(
            f"method.reward is empty for method {method_cfg.name}; use gold (the data's programmatic "
            "reward) or a reward model's directory or Hub id."
        )


def _validate(method_cfg: DictConfig) -> None:
    check_reward_is_set(method_cfg)
    generations = int((method_cfg.get("trl") or {}).get("num_generations", 8))
    if generations < 2:
        raise ConfigError(
            f"method.trl.num_generations={generations} is invalid: group baselines need at least 2."
        )
    if (int(method_cfg.batch_size) * int(method_cfg.grad_accum)) % generations:
        raise ConfigError(
            f"method.batch_size x method.grad_accum ({method_cfg.batch_size} x {method_cfg.grad_accum}) "
            f"must be a multiple of method.trl.num_generations ({generations}): each prompt's "
            "completions share a batch."
        )


def build_trainer(ctx: TrainContext) -> Trainer:
    """The method's TRL trainer (GRPOTrainer or RLOOTrainer) on the shuffled prompts,
    rewarded by ``method.reward``."""
    return ctx.trl_trainer(
        reward_funcs=reward_function(ctx.cfg), train_dataset=ctx.train_data.shuffle(seed=int(ctx.cfg.seed))
    )


def train(ctx: TrainContext) -> PreTrainedModel:
    """Train with the method's TRL trainer; returns the trained model."""
    return ctx.run_trainer(build_trainer(ctx))


def reward_models(cfg: DictConfig) -> int:
    """1 when the method trains on a reward model (``method.reward`` other than gold), else 0."""
    return 0 if str(cfg.method.get("reward")) == "gold" else 1


def _models(cfg: DictConfig) -> int:
    # TRL loads a reference only for a KL term (beta > 0), and with LoRA disables the adapter instead.
    return 1 + (separate_reference(cfg) if float(cfg.method.beta) > 0 else 0) + reward_models(cfg)


# The knobs of every method trained on method.reward (GRPO, RLOO, PPO).
REWARD_KNOBS = [
    Hyperparameter(
        "reward",
        "gold",
        "gold (the data's programmatic reward) | trained (the reward stage, trained once "
        "and cached) | a reward model's directory or Hub id",
    ),
    Hyperparameter(
        "reward_stage",
        {},
        "with reward=trained: method=reward settings to change, e.g. {learning_rate: 2e-4}",
    ),
]
# Real models: TRL's recipe (learning rate 1e-6, 256-token completions); batch_size x grad_accum must be a
# multiple of num_generations (each prompt's completions share a batch).
_TRL = {
    "max_completion_length": 256,  # tokens per completion
    "temperature": 1.0,
}  # sampling temperature during training
# The toy world's tuning (GRPO: gold 0.012 -> 0.54 at KL 6.1 nats).
_TOY = Profile(
    {
        "learning_rate": 3e-4,
        "epochs": 1,
        "max_steps": 150,
        "batch_size": 16,
        "grad_accum": 1,
        "warmup": 0.0,
        "scheduler": "constant",
        "trl": {"max_completion_length": 24},
    },
    {"learning_rate": "tag(log, interval(3e-5, 1e-3))"},
)


# What TRL computes (trl/trainer/grpo_trainer.py and rloo_trainer.py: _compute_loss, advantages in
# _generate_and_score_completions).
GRPO_LOSS = (
    "GRPOTrainer, loss_type=dapo (TRL's default): clipped per-token policy-gradient loss, advantage = reward "
    "minus its group's mean over num_generations completions, divided by the group's std (scale_rewards="
    "group), plus beta·per-token KL to the reference (k3 estimator); summed over tokens and divided by the "
    "accumulated batch's completion tokens."
)
RLOO_LOSS = (
    "RLOOTrainer: clipped sequence-level ratio on completion log-probs summed over tokens, advantage = "
    "reward minus the mean of the prompt's other completions (leave-one-out; normalize_advantages=false), "
    "the reward lowered by beta·Σ(log π_old − log π_ref) over completion tokens; mean over completions."
)


@hookimpl
def harness_methods_register() -> list[MethodSpec]:
    """GRPO and RLOO."""
    return [
        _online_spec(
            "grpo",
            trainer="trl:GRPOTrainer",
            description="Group Relative Policy Optimization (Shao "
            "et al. 2024; online, group-normalised rewards)",
            beta_help="KL coefficient to the reference; real models: 0.01 to 0.1 (0: no reference, KL "
            "unchecked)",
            trl={
                "num_generations": 8,  # per prompt; real: 8 to 16
                **_TRL,
            },
            loss_notes=GRPO_LOSS,
        ),
        _online_spec(
            "rloo",
            trainer="trl:RLOOTrainer",
            description="REINFORCE Leave-One-Out (Ahmadian et al. 2024; online, leave-one-out baseline)",
            beta_help="KL coefficient to the reference; real models: 0.01 to 0.1",
            trl={
                "num_generations": 8,  # per prompt; real: 2 to 8
                **_TRL,
            },
            loss_notes=RLOO_LOSS,
        ),
    ]


def _online_spec(
    name: str, *, trainer: str, description: str, beta_help: str, trl: dict[str, Any], loss_notes: str
) -> MethodSpec:
    """An online method on a TRL trainer: the reward knobs and ``beta``, TRL's recipe for real models and the
    toy world's tuning; what differs between GRPO and RLOO is passed in."""
    return MethodSpec(
        name=name,
        trainer=trainer,
        description=description,
        hyperparameters=[
            *REWARD_KNOBS,
            Hyperparameter("beta", 0.04, beta_help, bounds="[0, inf)", field="beta"),
        ],
        defaults={"learning_rate": 1e-6, "trl": trl},
        loss_notes=loss_notes,
        train=train,
        data_kind="prompts",
        models_in_memory=_models,
        needs_reference=False,
        validate=_validate,
        lr_range=(1e-7, 1e-5),
        profiles={"toy": _TOY},
        search_space={
            "beta": "tag(log, interval(0.01, 0.2))",
            "learning_rate": "tag(log, interval(1e-7, 1e-5))",
        },
    )
