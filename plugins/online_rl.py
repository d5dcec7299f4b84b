"""GRPO and RLOO on TRL's trainers: online RL that samples its own completions and scores them with a reward.

Both train on the distinct prompts of the data (``data_kind="prompts"``). ``method.reward`` chooses the reward:
``gold`` is the data source's programmatic reward (the toy world's, or one a plugin registers through
``harness_gold_reward``); ``trained`` is the harness's own reward stage (``method=reward`` on the same model and
data, settings from ``method.reward_stage``), trained once and cached by its settings; anything else is a
sequence-classification reward model, a local directory or a Hub id, that TRL loads and runs on the completions. ``method.beta`` is the KL coefficient to the reference model (> 0:
without it KL drifts freely, which the seed's health checks flag).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from harness_plugins._defaults import method_defaults

from harness import MethodSpec, hookimpl
from harness.errors import ConfigError
from harness.plugin.specs import separate_reference


def reward_function(cfg: Any) -> Callable[..., list[float]] | str:
    """The reward TRL should optimise for ``cfg``: the gold reward as a TRL reward function
    (``f(prompts, completions, **columns) -> list[float]``), or the reward model's path or Hub id."""
    from harness.plugin.manager import get_plugin_manager

    name = str(cfg.method.reward)
    if name == "trained":
        from harness_plugins.reward import trained_reward_model

        return trained_reward_model(cfg)
    if name != "gold":
        return name
    gold = get_plugin_manager(list(cfg.get("plugins") or [])).hook.harness_gold_reward(cfg=cfg)
    if gold is None:
        raise ConfigError(f"method.reward=gold but data.source={cfg.data.source!r} defines no gold reward; set "
                          "method.reward to a reward model (a local directory or Hub id).")

    def gold_reward(prompts: Sequence[str], completions: Sequence[str], **_: Any) -> list[float]:
        return [float(r) for r in gold(list(prompts), list(completions))]

    return gold_reward


@hookimpl
def harness_config_validate(cfg: Any) -> None:
    """A method trained on ``method.reward`` (GRPO, RLOO, PPO) gets a reward that exists: the data's gold reward
    for ``gold``, else a loadable one-output reward model."""
    reward = cfg.method.get("reward")
    if reward is None or not isinstance(reward, str):
        return
    if reward == "gold":
        reward_function(cfg)  # raises ConfigError when the data defines no gold reward
        return
    if reward == "trained":
        return  # the reward stage's own config is validated when it runs
    from harness_plugins.eval_reward_model import check_reward_model

    check_reward_model(reward, key="method.reward", alternative=", or use method.reward=gold")


@hookimpl
def harness_default_reward_model(cfg: Any) -> str | None:
    """A method trained on a reward model is also evaluated with it (its score beside the gold reward)."""
    reward = cfg.method.get("reward")
    if not isinstance(reward, str) or reward == "gold":
        return None
    result = reward_function(cfg)
    return result if isinstance(result, str) else None


def check_reward_is_set(method_cfg: Any) -> None:
    """Raise a one-line ConfigError when ``method.reward`` is empty (every method trained on a reward)."""
    if not method_cfg.get("reward"):
        raise ConfigError(f"method.reward is empty for method {method_cfg.name}; use gold (the data's programmatic "
                          "reward) or a reward model's directory or Hub id.")


def _validate(method_cfg: Any) -> None:
    check_reward_is_set(method_cfg)
    generations = int((method_cfg.get("trl") or {}).get("num_generations", 8))
    if generations < 2:
        raise ConfigError(f"method.trl.num_generations={generations} is invalid: group baselines need at least 2.")
    if (int(method_cfg.batch_size) * int(method_cfg.grad_accum)) % generations:
        raise ConfigError(f"method.batch_size x method.grad_accum ({method_cfg.batch_size} x {method_cfg.grad_accum}) "
                          f"must be a multiple of method.trl.num_generations ({generations}): each prompt's "
                          "completions share a batch.")


def _trainer(ctx: Any, trainer_cls: Any, config_cls: Any) -> Any:
    return ctx.trl_trainer(trainer_cls, config_cls, reward_funcs=reward_function(ctx.cfg),
                           train_dataset=ctx.train_data.shuffle(seed=int(ctx.cfg.seed)))


def train_grpo(ctx: Any) -> torch.nn.Module:
    """Train with TRL's GRPOTrainer; returns the trained model."""
    from trl import GRPOConfig, GRPOTrainer

    return ctx.run_trainer(_trainer(ctx, GRPOTrainer, GRPOConfig))


def train_rloo(ctx: Any) -> torch.nn.Module:
    """Train with TRL's RLOOTrainer; returns the trained model."""
    from trl import RLOOConfig, RLOOTrainer

    return ctx.run_trainer(_trainer(ctx, RLOOTrainer, RLOOConfig))


def reward_models(cfg: Any) -> int:
    """1 when the method trains on a reward model (``method.reward`` other than gold), else 0."""
    return 0 if str(cfg.method.get("reward")) == "gold" else 1


def _models(cfg: Any) -> int:
    # TRL loads a reference only for a KL term (beta > 0), and with LoRA disables the adapter instead.
    return 1 + (separate_reference(cfg) if float(cfg.method.beta) > 0 else 0) + reward_models(cfg)


@hookimpl
def harness_methods_register() -> list[MethodSpec]:
    """GRPO and RLOO."""
    common = dict(data_kind="prompts", models_in_memory=_models, needs_reference=False, validate=_validate,
                  lr_range=(1e-7, 1e-5),
                  search_space={"beta": "tag(log, interval(0.01, 0.2))",
                                "learning_rate": "tag(log, interval(3e-5, 1e-3))"})
    return [
        MethodSpec(name="grpo", train=train_grpo, defaults=method_defaults("grpo"), config_class="trl:GRPOConfig",
                   description="Group Relative Policy Optimization (online, group-normalised rewards)", **common),
        MethodSpec(name="rloo", train=train_rloo, defaults=method_defaults("rloo"), config_class="trl:RLOOConfig",
                   description="REINFORCE Leave-One-Out (online, leave-one-out baseline)", **common),
    ]
