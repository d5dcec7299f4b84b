"""Health checks: the seed's gotchas, turned into flags on evaluated checkpoints.

Each flag is raised from a checkpoint's metrics, the reference model's metrics (step 0) and the metrics of the
trial's earlier checkpoints; it carries a one-line explanation and the seed's suggested fix. Thresholds are
module constants so that they are documented in one place. A flag is a signal to look at a trial, not a
verdict: the leaderboard shows them beside the numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from harness.records import Checkpoint

KL_LOW = 0.5  # nats per sequence: below this at the final checkpoint the policy has barely moved
KL_HIGH = 15.0  # nats per sequence: above this the policy has drifted too far from the reference
KL_EXPLOSION_FACTOR = 2.0  # KL more than doubling between checkpoints while reward rises, above the band
KL_HEALTHY_TOP = 10.0  # top of the seed's healthy band (0.5 to 10 nats)
DISTINCT_COLLAPSE = 0.5  # distinct-2 below this fraction of the reference's: mode collapse
LENGTH_GROWTH = 1.5  # mean completion length above this multiple of the reference's: length exploitation
LR_FAR_OUTSIDE = 10.0  # learning rate more than this factor outside the method's range for the model size
LR_RANGE_MODEL_SIZE = 1e9  # the seed's learning-rate ranges are for models of about this many parameters

# Metric keys the checks read (written by the built-in evaluators).
KL, GOLD, GOLD_SE, RM, RM_SE = (
    "kl",
    "gold_reward",
    "gold_reward_se",
    "reward_model_score",
    "reward_model_score_se",
)
DISTINCT_2, LENGTH = "distinct_2", "length"


@dataclass(frozen=True)
class HealthFlag:
    """A raised flag: its name, what was seen (one line) and the seed's suggested fix."""

    flag: str
    message: str
    fix: str

    def to_dict(self) -> dict[str, str]:
        """The flag as a JSON-serialisable dict (as stored in trial records)."""
        return asdict(self)


def _get(metrics: Mapping[str, Any] | None, key: str) -> float | None:
    value = (metrics or {}).get(key)
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def lr_range_for_size(lr_range: tuple[float, float], parameters: int | None) -> tuple[float, float]:
    """The method's learning-rate range scaled to a model of ``parameters`` parameters.

    The seed's ranges are for billion-parameter models; smaller models train stably at larger rates. The
    range is scaled by sqrt(1e9 / parameters) for models below 1e9 parameters (a rule of thumb: the stable
    rate grows roughly with the inverse square root of the width), and left as it is above.
    """
    if not parameters or parameters >= LR_RANGE_MODEL_SIZE:
        return lr_range
    scale = math.sqrt(LR_RANGE_MODEL_SIZE / parameters)
    return lr_range[0] * scale, lr_range[1] * scale


def learning_rate_flag(
    learning_rate: float | None, lr_range: tuple[float, float] | None, parameters: int | None
) -> HealthFlag | None:
    """A flag when ``learning_rate`` is more than LR_FAR_OUTSIDE times outside the size-scaled range."""
    if not learning_rate or not lr_range:
        return None
    low, high = lr_range_for_size(lr_range, parameters)
    if learning_rate > high * LR_FAR_OUTSIDE:
        return HealthFlag(
            "lr_too_high",
            f"learning rate {learning_rate:.3g} is more than {LR_FAR_OUTSIDE:g}x "
            f"above the method's range for this model size ({low:.2g} to {high:.2g})",
            "lower the learning rate into the method's range (seed: SFT-like rates such as 2e-5 "
            "are too high for preference methods on billion-parameter models)",
        )
    if learning_rate < low / LR_FAR_OUTSIDE:
        return HealthFlag(
            "lr_too_low",
            f"learning rate {learning_rate:.3g} is more than {LR_FAR_OUTSIDE:g}x "
            f"below the method's range for this model size ({low:.2g} to {high:.2g})",
            "raise the learning rate into the method's range",
        )
    return None


def checkpoint_flags(
    metrics: Mapping[str, Any],
    reference: Mapping[str, Any] | None,
    history: Sequence[Mapping[str, Any]],
    *,
    final: bool,
) -> list[HealthFlag]:
    """Flags for one checkpoint's ``metrics``, given the reference's and the earlier checkpoints' metrics.

    ``history`` holds the metrics of the trial's earlier evaluated checkpoints, oldest first. Returns the
    raised flags (possibly none), in this order: kl_low, kl_high, reward_hacking, over_optimisation,
    mode_collapse, length_growth.
    """
    previous = history[-1] if history else reference
    flags = [
        _kl_low(metrics, reference, final),
        _kl_high(metrics),
        _reward_hacking(metrics, previous),
        *_over_optimisation(metrics, reference, history),
        _mode_collapse(metrics, reference),
        _length_growth(metrics, reference),
    ]
    return [flag for flag in flags if flag is not None]


def _kl_low(
    metrics: Mapping[str, Any], reference: Mapping[str, Any] | None, final: bool
) -> HealthFlag | None:
    """At the final checkpoint, KL below the band and no clear reward gain: the policy has barely moved."""
    kl = _get(metrics, KL)
    if kl is None or not final or kl >= KL_LOW or _clear_gain(metrics, reference):
        return None
    return HealthFlag(
        "kl_low",
        f"KL to the reference is {kl:.2f} nats at the end of training (< "
        f"{KL_LOW:g}) and the reward did not rise beyond its noise: the policy has "
        "barely moved",
        "raise the learning rate or lower beta, or train longer",
    )


def _kl_high(metrics: Mapping[str, Any]) -> HealthFlag | None:
    """KL above the band: the policy has drifted far from the reference."""
    kl = _get(metrics, KL)
    if kl is None or kl <= KL_HIGH:
        return None
    return HealthFlag(
        "kl_high",
        f"KL to the reference is {kl:.1f} nats (> {KL_HIGH:g}): the policy has "
        "drifted far from the reference",
        "raise beta (a stronger KL penalty) or lower the learning rate",
    )


def _reward_hacking(metrics: Mapping[str, Any], previous: Mapping[str, Any] | None) -> HealthFlag | None:
    """The reward (gold, else the reward model's score) rising while KL, above the healthy band, more than
    doubles since the ``previous`` checkpoint (or the reference)."""
    kl = _get(metrics, KL)
    reward_key = GOLD if _get(metrics, GOLD) is not None else RM
    reward, previous_reward = _get(metrics, reward_key), _get(previous, reward_key)
    previous_kl = _get(previous, KL)
    if (
        kl is None
        or previous_kl is None
        or reward is None
        or previous_reward is None
        or not kl > KL_HEALTHY_TOP
        or not kl > KL_EXPLOSION_FACTOR * max(previous_kl, 1e-9)
        or not reward > previous_reward
    ):
        return None
    return HealthFlag(
        "reward_hacking",
        f"reward rose ({previous_reward:.3f} -> {reward:.3f}) while KL "
        f"exploded ({previous_kl:.1f} -> {kl:.1f} nats)",
        "stop at an earlier checkpoint, raise beta, and check samples for exploits",
    )


def _mode_collapse(metrics: Mapping[str, Any], reference: Mapping[str, Any] | None) -> HealthFlag | None:
    """distinct-2 below DISTINCT_COLLAPSE of the reference's."""
    distinct, ref_distinct = _get(metrics, DISTINCT_2), _get(reference, DISTINCT_2)
    if distinct is None or not ref_distinct or not distinct < DISTINCT_COLLAPSE * ref_distinct:
        return None
    return HealthFlag(
        "mode_collapse",
        f"distinct-2 fell to {distinct:.2f} from the reference's "
        f"{ref_distinct:.2f}: samples are collapsing to a few modes",
        "raise beta or lower the learning rate; for online methods raise the "
        "sampling temperature or the entropy bonus",
    )


def _length_growth(metrics: Mapping[str, Any], reference: Mapping[str, Any] | None) -> HealthFlag | None:
    """Mean completion length above LENGTH_GROWTH times the reference's."""
    length, ref_length = _get(metrics, LENGTH), _get(reference, LENGTH)
    if length is None or not ref_length or not length > LENGTH_GROWTH * ref_length:
        return None
    return HealthFlag(
        "length_growth",
        f"mean completion length grew to {length:.1f} tokens from the "
        f"reference's {ref_length:.1f}: the method may be exploiting length",
        "use a length-normalised method (SimPO, IPO) or a length penalty, and check "
        "that chosen responses are not systematically longer",
    )


def _clear_gain(metrics: Mapping[str, Any], reference: Mapping[str, Any] | None) -> bool:
    """Whether the reward (gold, else the reward model's score) rose above the reference's by more than twice
    the standard error of the difference: a policy that did that has moved, whatever its KL. The seed's KL
    band is for LLM-length completions; a model with short completions (the toy world) can learn at a smaller
    KL."""
    for key, se_key in ((GOLD, GOLD_SE), (RM, RM_SE)):
        value, base = _get(metrics, key), _get(reference, key)
        if value is None or base is None:
            continue
        se = math.hypot(_get(metrics, se_key) or 0.0, _get(reference, se_key) or 0.0)
        return se > 0 and value - base > 2 * se
    return False


def _over_optimisation(
    metrics: Mapping[str, Any], reference: Mapping[str, Any] | None, history: Sequence[Mapping[str, Any]]
) -> list[HealthFlag]:
    """The reward-model score rising while the gold reward falls below its best so far (both must exist)."""
    gold, score = _get(metrics, GOLD), _get(metrics, RM)
    if gold is None or score is None:
        return []
    earlier = [
        m for m in [reference or {}, *history] if _get(m, GOLD) is not None and _get(m, RM) is not None
    ]
    if not earlier:
        return []
    best = max(earlier, key=lambda m: _get(m, GOLD))  # type: ignore[arg-type, return-value]
    best_gold, best_score = _get(best, GOLD), _get(best, RM)
    margin = 2 * (_get(metrics, GOLD_SE) or 0.0)
    if score > best_score and gold < best_gold - margin:  # type: ignore[operator]
        return [
            HealthFlag(
                "over_optimisation",
                f"reward-model score rose ({best_score:.3f} -> {score:.3f}) while "
                f"the gold reward fell ({best_gold:.3f} -> {gold:.3f})",
                "the policy is exploiting the reward model: stop earlier, raise the KL penalty, "
                "or improve the reward model",
            )
        ]
    return []


def annotate_trial(
    entries: list[Checkpoint], reference: Mapping[str, Any] | None, lr_flag: HealthFlag | None = None
) -> list[dict[str, Any]]:
    """Set ``entry.health`` (flag names) on every evaluated checkpoint of a trial, oldest first.

    Returns the trial's flags, one dict per distinct flag (flag, message and fix from its latest occurrence,
    and the steps at which it was raised); ``lr_flag`` (a trial-level flag) applies to every checkpoint.
    """
    raised: dict[str, dict[str, Any]] = {}
    history: list[Mapping[str, Any]] = []
    evaluated = [e for e in entries if e.metrics]
    for entry in evaluated:
        final = entry.final or entry is evaluated[-1]
        flags = checkpoint_flags(entry.metrics, reference, history, final=final)
        if lr_flag is not None:
            flags.append(lr_flag)
        entry.health = [f.flag for f in flags]
        for f in flags:
            steps = raised.get(f.flag, {}).get("steps", [])
            raised[f.flag] = {**f.to_dict(), "steps": [*steps, entry.step]}
        history.append(entry.metrics)
    if lr_flag is not None and lr_flag.flag not in raised:  # no checkpoint was evaluated: still a trial flag
        raised[lr_flag.flag] = {**lr_flag.to_dict(), "steps": []}
    return list(raised.values())
