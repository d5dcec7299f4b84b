"""Names of Optuna sweeps: whether a command line uses the harness's sweeper, and the sweep's default name.

The default name is a digest of the overrides that change what a study searches, so that running the same
command again finds (and resumes) the same study; overrides that only change how it runs (trial count,
parallelism, launcher, storage) are left out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

SWEEPER_GROUP = "hydra/sweeper"
# Overrides that do not change what a study searches: rerunning with other values resumes the same study.
_NOT_IN_STUDY_NAME = (
    "sweep_name",
    "hydra.sweeper.n_trials",
    "hydra.sweeper.n_jobs",
    "hydra/launcher",
    "hydra.launcher",
    "hydra.sweeper.storage",
    "verbose",
    "rerun",
    "tracking",
)


def default_sweep_name(overrides: Sequence[str]) -> str:
    """A stable sweep name for an Optuna sweep: ``optuna-<method(s)>-<digest of the overrides>``, so that
    running the same command again finds (and resumes) the same study."""
    kept = sorted(o for o in overrides if not o.lstrip("+~").startswith(_NOT_IN_STUDY_NAME))
    methods = next((o.split("=", 1)[1] for o in overrides if o.startswith("method=")), "dpo")
    label = "".join(c if c.isalnum() or c in "-_" else "-" for c in methods.replace(",", "-"))[:40]
    digest = hashlib.sha256("\n".join(kept).encode()).hexdigest()[:8]
    return f"optuna-{label}-{digest}"


def uses_optuna_sweeper(overrides: Sequence[str]) -> bool:
    """Whether the command line selects a harness sweeper built on an Optuna study
    (``hydra/sweeper=optuna...``, or the racing study: ``hydra/sweeper=race``)."""
    return any(o.startswith((f"{SWEEPER_GROUP}=optuna", f"{SWEEPER_GROUP}=race")) for o in overrides)
