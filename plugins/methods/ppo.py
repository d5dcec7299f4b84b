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
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from harness_plugins.methods.online_rl import (
    REWARD_KNOBS,
    check_reward_is_set,
    reward_function,
    reward_models,
)
from harness_plugins.methods.ppo_math import (
    AdaptiveKLController,
    FixedKLController,
    gae,
    kl_per_token,
    masked_mean,
    policy_loss,
    token_rewards,
    value_loss,
    whiten,
)
from omegaconf import DictConfig

from harness.plugin import (
    ConfigError,
    Hyperparameter,
    MethodSpec,
    Profile,
    hookimpl,
    load_reward_model,
    render_prompts,
    sample,
    score_texts,
    separate_reference,
)

if TYPE_CHECKING:
    from harness.plugin import TrainContext

KL_PENALTIES = ("kl", "abs", "mse", "full")
REWARD_NORMS = ("whiten", "running", "none")


def make_scorer(
    cfg: DictConfig, device: torch.device
) -> Callable[[Sequence[str], Sequence[str]], torch.Tensor]:
    """``score(prompts, completions) -> tensor [n]`` for ``method.reward``: the gold reward, or a reward model
    (scored on prompt + completion)."""
    reward = reward_function(cfg)
    if callable(reward):
        return lambda prompts, completions: torch.tensor(reward(prompts, completions), dtype=torch.float32)
    model, tokenizer = load_reward_model(reward, str(device))

    def score(prompts: Sequence[str], completions: Sequence[str]) -> torch.Tensor:
        texts = [p + c for p, c in zip(prompts, completions, strict=True)]
        return score_texts(model, tokenizer, texts).float().cpu()

    return score


class RunningMoments:
    """Running mean and standard deviation of the scores (``reward_norm: running``)."""

    def __init__(self) -> None:
        self.mean, self.var, self.count = 0.0, 1.0, 1e-4

    def update(self, x: torch.Tensor) -> None:
        """Merge a batch of scores into the running moments."""
        n = x.numel()
        batch_mean, batch_var = x.mean().item(), x.var(unbiased=False).item()
        delta, total = batch_mean - self.mean, self.count + n
        self.mean += delta * n / total
        self.var = (self.var * self.count + batch_var * n + delta**2 * self.count * n / total) / total
        self.count = total

    @property
    def std(self) -> float:
        """The running standard deviation."""
        return math.sqrt(max(self.var, 1e-8))


def response_logits(
    model: torch.nn.Module, ids: torch.Tensor, attn: torch.Tensor, width: int
) -> torch.Tensor:
    """Logits predicting each response token (positions ``width..``) of left-padded ``ids``: [n, len - width, V]."""
    positions = (attn.cumsum(dim=1) - 1).clamp(min=0)
    out = model(input_ids=ids, attention_mask=attn, position_ids=positions)
    return out.logits[:, width - 1 : -1].float()


def logprobs_and_entropy(
    logits: torch.Tensor, ids: torch.Tensor, width: int, temperature: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probability of each sampled response token and the entropy of each step's distribution."""
    logp_all = torch.log_softmax(logits / temperature, dim=-1)
    logp = logp_all.gather(-1, ids[:, width:].unsqueeze(-1)).squeeze(-1)
    entropy = -(logp_all.exp() * logp_all).sum(-1)
    return logp, entropy


def response_values(
    value_model: torch.nn.Module, ids: torch.Tensor, attn: torch.Tensor, width: int
) -> torch.Tensor:
    """The value model's estimate before each response token: [n, len - width]."""
    positions = (attn.cumsum(dim=1) - 1).clamp(min=0)
    return (
        value_model(input_ids=ids, attention_mask=attn, position_ids=positions)
        .logits[:, width - 1 : -1, 0]
        .float()
    )


def load_value_model(policy: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """A token-level value model from the policy's base checkpoint (a fresh scalar head on its backbone)."""
    from transformers import AutoModelForTokenClassification

    base = policy.get_base_model() if hasattr(policy, "get_base_model") else policy
    path = base.config.name_or_path
    model = AutoModelForTokenClassification.from_pretrained(path, num_labels=1, torch_dtype=torch.float32)
    model.config.pad_token_id = base.config.pad_token_id
    return model.to(device)


def _settings(m: DictConfig) -> dict[str, Any]:
    return {h.name: m[h.name] for h in HYPERPARAMETERS if h.name not in ("reward", "reward_stage")}


def train(ctx: TrainContext) -> torch.nn.Module:
    """Train the policy with PPO; returns the trained policy (a peft model with LoRA)."""
    from tqdm.auto import tqdm
    from transformers import get_scheduler

    m, s = ctx.method_cfg, _settings(ctx.method_cfg)
    device, tokenizer, seed = ctx.device, ctx.tokenizer, int(ctx.cfg.seed)
    policy = ctx.policy
    policy = ctx.trainable_policy()
    reference = ctx.reference
    value_model = load_value_model(policy, device)
    score = make_scorer(ctx.cfg, device)

    params = [p for p in policy.parameters() if p.requires_grad] + list(value_model.parameters())
    optimizer = torch.optim.AdamW(params, lr=float(m.learning_rate), eps=1e-5)
    # Message-list prompts through the chat template (its text holds the special tokens: add none when sampling).
    prompts, chat = render_prompts(tokenizer, list(ctx.train_data.shuffle(seed=seed)["prompt"]))
    batch = int(m.batch_size)
    per_epoch = math.ceil(len(prompts) / batch)
    total = int(m.max_steps) if int(m.max_steps) > 0 else max(1, round(float(m.epochs) * per_epoch))
    warmup = float(m.warmup)
    scheduler = get_scheduler(
        str(m.scheduler),
        optimizer,
        num_warmup_steps=int(warmup * total if warmup < 1 else warmup),
        num_training_steps=total * int(s["ppo_epochs"]) * math.ceil(batch / int(s["mini_batch_size"])),
    )
    kl_ctl = (
        AdaptiveKLController(float(s["init_kl_coef"]), float(s["target_kl"]), int(s["horizon"]))
        if s["adaptive_kl"]
        else FixedKLController(float(s["init_kl_coef"]))
    )
    moments = RunningMoments()
    generator = torch.Generator().manual_seed(seed)
    ctx.plan(total)
    bar = tqdm(total=total, desc=f"train {ctx.spec.name}", unit="step", leave=False)
    for step in range(1, total + 1):
        start = (step - 1) * batch
        chunk = [prompts[(start + i) % len(prompts)] for i in range(batch)]  # cycling through the prompts
        stats = _ppo_step(
            policy,
            reference,
            value_model,
            tokenizer,
            score,
            chunk,
            s,
            kl_ctl,
            moments,
            optimizer,
            scheduler,
            params,
            generator,
            seed=seed * 1_000_003 + step,
            device=device,
            sample_fn=functools.partial(sample, add_special_tokens=not chat),
        )
        bar.update(1)
        bar.set_postfix(reward=f"{stats['reward']:.3g}", kl=f"{stats['kl']:.3g}", refresh=False)
        ctx.step(step, policy, stats.pop("loss"), **stats)  # loss check, log, checkpoints
    bar.close()
    return policy


def _reference_logits(
    policy: torch.nn.Module,
    reference: torch.nn.Module | None,
    ids: torch.Tensor,
    attn: torch.Tensor,
    width: int,
) -> torch.Tensor:
    if reference is not None:
        return response_logits(reference, ids, attn, width)
    with policy.disable_adapter():  # LoRA: the reference is the base model under the adapter
        return response_logits(policy, ids, attn, width)


def _ppo_step(
    policy,
    reference,
    value_model,
    tokenizer,
    score,
    prompts,
    s,
    kl_ctl,
    moments,
    optimizer,
    scheduler,
    params,
    generator,
    *,
    seed,
    sample_fn,
    device,
) -> dict[str, float]:
    """One PPO iteration: roll out, score, compute advantages, then ``ppo_epochs`` of minibatch updates."""
    temperature = float(s["temperature"])
    with torch.no_grad():
        samples = sample_fn(
            policy,
            tokenizer,
            prompts,
            max_new_tokens=int(s["response_length"]),
            temperature=temperature,
            batch_size=len(prompts),
            seed=seed,
            desc="rollout",
        )
        (b,) = samples.batches
        ids, attn, width = b.input_ids.to(device), b.attention_mask.to(device), b.prompt_width
        mask = b.completion_mask[:, width:].to(device).float()
        policy.eval()
        logits = response_logits(policy, ids, attn, width)
        old_logp, _ = logprobs_and_entropy(logits, ids, width, temperature)
        ref_logits = _reference_logits(policy, reference, ids, attn, width)
        ref_logp, _ = logprobs_and_entropy(ref_logits, ids, width, temperature)
        old_values = response_values(value_model, ids, attn, width)
        full = s["kl_penalty"] == "full"
        kl = kl_per_token(
            old_logp,
            ref_logp,
            str(s["kl_penalty"]),
            logits / temperature if full else None,
            ref_logits / temperature if full else None,
        )
        del logits, ref_logits
        raw = score(samples.prompts, samples.completions).to(device)
        if s["missing_eos_penalty"] is not None:
            raw = torch.where(b.finished.to(device), raw, raw - float(s["missing_eos_penalty"]))
        scores = _normalise(raw, str(s["reward_norm"]), moments)
        rewards = token_rewards(scores, kl, kl_ctl.value, mask)
        advantages, returns = gae(rewards, old_values, mask, float(s["gamma"]), float(s["lam"]))
        advantages = whiten(advantages, mask)
    policy.train()
    value_model.train()
    n, mb = ids.shape[0], int(s["mini_batch_size"])
    sums: dict[str, float] = {
        "policy_loss": 0.0,
        "value_loss": 0.0,
        "clipfrac": 0.0,
        "vf_clipfrac": 0.0,
        "entropy": 0.0,
        "loss": 0.0,
    }
    updates = 0
    for _ in range(int(s["ppo_epochs"])):
        for idx in torch.randperm(n, generator=generator).split(mb):
            idx = idx.to(device)
            new_logits = response_logits(policy, ids[idx], attn[idx], width)
            new_logp, entropy = logprobs_and_entropy(new_logits, ids[idx], width, temperature)
            new_values = response_values(value_model, ids[idx], attn[idx], width)
            pg, clipfrac = policy_loss(
                new_logp, old_logp[idx], advantages[idx], mask[idx], float(s["cliprange"])
            )
            vf, vf_clipfrac = value_loss(
                new_values, old_values[idx], returns[idx], mask[idx], float(s["cliprange_value"])
            )
            loss = pg + float(s["vf_coef"]) * vf
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, float(s["max_grad_norm"]))
            optimizer.step()
            scheduler.step()
            for key, value in (
                ("policy_loss", pg),
                ("value_loss", vf),
                ("clipfrac", clipfrac),
                ("vf_clipfrac", vf_clipfrac),
                ("entropy", masked_mean(entropy, mask[idx])),
                ("loss", loss),
            ):
                sums[key] += float(value.detach())
            updates += 1
    sequence_kl = float((kl * mask).sum(1).mean())
    coef = kl_ctl.value
    kl_ctl.update(sequence_kl, n)
    return {
        **{k: v / max(updates, 1) for k, v in sums.items()},
        "reward": float(raw.mean()),
        "reward_normalised": float(scores.mean()),
        "kl": sequence_kl,
        "kl_coef": coef,
        "length": float(mask.sum(1).mean()),
        "learning_rate": float(scheduler.get_last_lr()[0]),
    }


def _normalise(raw: torch.Tensor, how: str, moments: RunningMoments) -> torch.Tensor:
    if how == "whiten":
        return (raw - raw.mean()) / (raw.std() + 1e-8) if raw.numel() > 1 else raw - raw.mean()
    if how == "running":
        moments.update(raw)
        return (raw - moments.mean) / moments.std
    return raw


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
    """Policy and value model, the reference unless LoRA provides it, the reward model unless the reward is gold."""
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
            loss_notes="The harness's PPO (plugins/methods/ppo_math.py): the normalised score at the last response token minus "
            "kl_coef × per-token KL at every token, GAE advantages (whitened), clipped surrogate averaged per "
            "response token, plus vf_coef × clipped value loss; one step = batch_size rollouts and ppo_epochs "
            "passes of minibatch updates.",
        )
    ]
