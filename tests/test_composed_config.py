"""The config a user composes keeps its keys and values: today's ``--cfg`` outputs are the fixtures.

``tests/fixtures/composed/<case>.yaml`` holds what ``python -m harness <overrides> --cfg job`` (or
``--cfg hydra``) printed before the core settings were declared in Python (issue 28); composing the same
overrides must give the same values, of the same types (key order aside), and the same config hash, which
identifies a completed trial when a multirun is resumed (:func:`harness.sweep.resume.config_hash`): a changed
hash would run old sweeps' trials again.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from harness.config.compose import compose_job
from harness.sweep.resume import config_hash

FIXTURES = Path(__file__).parent / "fixtures" / "composed"

# case -> the overrides its fixture was printed with (the --cfg flag aside)
JOBS = {
    "toy": [],
    "hf": ["model=hf", "model.name_or_path=X"],
    "lora": ["model=lora"],
    "eval_fast": ["eval=fast"],
    "eval_full": ["eval=full"],
    "ppo": ["method=ppo"],
    "hf_simpo": ["model=hf", "model.name_or_path=X", "method=simpo"],
    "lora_kto": ["model=lora", "method=kto"],
}
SWEEPERS = {
    "optuna": ["hydra/sweeper=optuna"],
    "optuna_grid_halving": [
        "hydra/sweeper=optuna",
        "hydra/sweeper/sampler=grid",
        "hydra/sweeper/pruner=successive_halving",
    ],
}
# config_hash of the resolved config of these overrides. Issue 29 changed them on purpose: new settings
# (eval.judge.max_unusable, data.chat_template: never for the toy world's data) and a new default
# (eval.judge.min_label_prob 0 -> 0.5). A multirun started before it is not resumed silently: its completed
# trials are refused as another config, the message naming the keys that changed
# (harness.sweep.resume.config_changes). Issue 31 changed the toy world's ones on purpose: the toy defaults
# were tuned again (DPO lr 9e-4 and beta 0.5, KTO lr 6e-4: leaderboards/toy-defaults/).
HASHES = {
    (): "b1d7d5ce918dc95b",
    ("model=hf", "model.name_or_path=X"): "0d80ba56d3d7a4dd",
    ("model=lora", "method=kto"): "d4d90c20e46588f4",
    ("method=ppo", "eval=full"): "9d7e05af836fc960",
}


def _typed(node):
    """Plain values with their types made visible (``30`` and ``30.0``,
    ``1`` and ``true`` differ), keys sorted."""
    if isinstance(node, dict):
        return {str(k): _typed(v) for k, v in sorted(node.items(), key=lambda kv: str(kv[0]))}
    if isinstance(node, list):
        return [_typed(v) for v in node]
    return (type(node).__name__, node)


def _fixture(case: str) -> dict:
    return OmegaConf.to_container(OmegaConf.load(FIXTURES / f"{case}.yaml"), resolve=False)


@pytest.mark.parametrize("case", sorted(JOBS))
def test_the_composed_job_config_has_todays_values(case):
    composed = OmegaConf.to_container(compose_job(list(JOBS[case]), {}), resolve=False)
    assert _typed(composed) == _typed(_fixture(case))


@pytest.mark.parametrize("case", sorted(SWEEPERS))
def test_the_optuna_sweepers_config_has_todays_values(case):
    """``hydra.sweeper`` as Hydra passes it to the sweeper (``prune_warmup: 0.33`` among them)."""
    from hydra import compose, initialize_config_module

    compose_job([], {})  # registers the config nodes, as python -m harness does
    with initialize_config_module(config_module="harness_conf", version_base="1.3"):
        cfg = compose("config", overrides=SWEEPERS[case], return_hydra_config=True)
    composed = OmegaConf.to_container(cfg.hydra, resolve=False)
    expected = _fixture(case)["hydra"]
    assert _typed(composed["sweeper"]) == _typed(expected["sweeper"])
    for key in ("run", "sweep", "callbacks", "launcher", "job_logging", "hydra_logging"):
        assert _typed(composed[key]) == _typed(expected[key]), key


@pytest.mark.parametrize("overrides", sorted(HASHES))
def test_the_config_hash_that_resumes_a_multirun_is_unchanged(overrides):
    cfg = compose_job(list(overrides), {})
    assert config_hash(OmegaConf.to_container(cfg, resolve=True)) == HASHES[overrides]
