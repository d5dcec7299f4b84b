"""The racing study's settings, declared: ``hydra.sweeper.*`` under ``hydra/sweeper=race``.

The race sweeper is the Optuna sweeper (its study, storage, workers, objectives, budget and liveness settings,
:mod:`harness.config.settings_sweeper`) with these keys added; its node is the Optuna node with these on top,
the sampler defaulting to ``random`` (the race enqueues its candidates; no sampler chooses them) and the
pruner to ``none``. The rules they set are :mod:`harness.race.rules`.
"""

from __future__ import annotations

from typing import Any

from harness.config.setting import Setting, SettingsGroup
from harness.config.settings_sweeper import sweeper_node

RACE_TARGET = "hydra_plugins.harness_optuna_sweeper.race_sweeper.HarnessRaceSweeper"


def _seed_list(value: Any) -> str | None:
    if not value or any(not isinstance(v, int) or isinstance(v, bool) for v in value):
        return f"{value!r} is not a list of integer seeds"
    if len(set(value)) != len(value):
        return f"{value!r} repeats a seed"
    return None


RACE = SettingsGroup(
    "hydra.sweeper",
    "A racing study: python -m harness -m hydra/sweeper=race method=dpo,simpo,orpo "
    "hydra.sweeper.budget_steps=N. Each method's settings are trained with the first seed, each method keeps "
    "its best, and the survivors get one more seed per round while a paired test on the selection prompts "
    "drops those behind the leader, until one is left, the rest are tied with it, the seeds run out or the "
    "budget is spent.",
    (
        Setting(
            "seeds",
            [1, 2, 3, 4, 5],
            "the training seeds, in the order the rounds use them (the first: the search round); their "
            "number caps the seeds any candidate gets",
            types=(list,),
            check=_seed_list,
            fix="give a list of distinct integer seeds, e.g. [1, 2, 3, 4, 5]",
        ),
        Setting(
            "settings_per_method",
            3,
            "settings per method in the search round: a grid space (choice/range dimensions only) runs "
            "every point; a continuous one this many points of a scrambled Sobol sequence (Optuna's QMC "
            "sampler, seeded by race_seed)",
            bounds="[1, inf)",
            fix="give at least 1 setting per method",
        ),
        Setting(
            "keep_per_method",
            1,
            "settings each method keeps after the search round (its best on the selection prompts)",
            bounds="[1, inf)",
            fix="keep at least 1 setting per method",
        ),
        Setting(
            "first_test",
            2,
            "seeds before candidates are first compared (the seed-to-seed spread needs two)",
            bounds="[2, inf)",
            fix="compare from 2 seeds on or later",
        ),
        Setting(
            "alpha",
            0.05,
            "a candidate is dropped when the Holm-adjusted p-value of the paired test against the leader is "
            "below this",
            types=(float,),
            bounds="(0, 1)",
            fix="give a test level in (0, 1), e.g. 0.05",
        ),
        Setting(
            "margin",
            0.2,
            "the race stops when every survivor is within this share of the leader's gain over the base "
            "model (two one-sided tests on the selection prompts); the verdict's margin is "
            "leaderboard.verdict_margin",
            types=(float,),
            bounds="(0, 1)",
            fix="give a share in (0, 1) of the leader's gain over the base model, e.g. 0.2",
        ),
        Setting("race_seed", 0, "seeds the Sobol points of continuous spaces"),
    ),
)


def race_defaults() -> dict[str, Any]:
    """``{setting: default}`` of the race's own keys."""
    return RACE.defaults()


def race_node() -> dict[str, Any]:
    """The ``hydra/sweeper/race`` config node: the Optuna sweeper's node, the race's class and keys, the
    random sampler and no pruner by default."""
    node = sweeper_node()
    return {
        **node,
        "defaults": [{"sampler": "random"}, {"pruner": "none"}, "_self_"],
        "_target_": RACE_TARGET,
        **race_defaults(),
    }
