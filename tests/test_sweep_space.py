"""The Optuna search space: Hydra's sweep syntax, per-method conditional dimensions, grids and sampling."""

from __future__ import annotations

import optuna
import optuna.distributions as D
import pytest

from harness.errors import ConfigError, UnknownNameError
from harness.sweep.space import build_space, overrides_for, parse_dimension

CONFIGS = {
    "dpo": {"beta": 0.1, "learning_rate": 3e-4, "epochs": 3, "trl": {"loss_type": "sigmoid"}},
    "simpo": {"beta": 2.0, "gamma": 2.4, "learning_rate": 1e-4, "epochs": 3, "trl": {"loss_type": "simpo"}},
}
SUGGESTED = {
    "dpo": {"beta": "tag(log, interval(0.02, 0.5))", "learning_rate": "tag(log, interval(1e-5, 3e-4))"},
    "simpo": {"beta": "interval(1.0, 10.0)", "gamma": "interval(0.0, 1.5)"},
}


def space(overrides, params=None, method_params=None, use_suggested=True):
    return build_space(overrides, params, method_params, CONFIGS, SUGGESTED, "dpo", use_suggested)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("choice(a, b)", D.CategoricalDistribution(["a", "b"])),
        ("0.05,0.1", D.CategoricalDistribution([0.05, 0.1])),
        ("range(1, 10, 3)", D.IntDistribution(1, 7, step=3)),
        ("range(0.1, 0.5, 0.1)", D.FloatDistribution(0.1, 0.4, step=0.1)),
        ("interval(0.1, 0.5)", D.FloatDistribution(0.1, 0.5)),
        ("int(interval(1, 4))", D.IntDistribution(1, 4)),
        ("tag(log, interval(1e-5, 1e-3))", D.FloatDistribution(1e-5, 1e-3, log=True)),
    ],
)
def test_hydra_sweep_syntax_maps_to_optuna_distributions(text, expected):
    assert parse_dimension("x", text) == expected


@pytest.mark.unit
def test_a_fixed_value_is_no_dimension_and_bad_syntax_is_one_clear_error():
    assert parse_dimension("x", "0.3") is None
    for bad, words in [
        ("interval(0.5, 0.1)", "low < high"),
        ("tag(log, interval(0, 1))", "low > 0"),
        ("shuffle(1, 2)", "shuffle"),
        ("tag(log, range(1, 5))", "log"),
        ("interval(", "Cannot parse"),
    ]:
        with pytest.raises(ConfigError, match=words.replace("(", r"\(")):
            parse_dimension("x", bad)


@pytest.mark.unit
def test_one_method_searches_its_plugins_suggested_space():
    s = space(["method=dpo"])
    assert s.methods == ["dpo"] and not s.conditional
    assert s.distributions() == {
        "dpo.beta": D.FloatDistribution(0.02, 0.5, log=True),
        "dpo.learning_rate": D.FloatDistribution(1e-5, 3e-4, log=True),
    }


@pytest.mark.unit
def test_several_methods_bring_their_own_conditional_dimensions():
    s = space(["method=dpo,simpo", "method.learning_rate=tag(log, interval(1e-5, 1e-3))", "seed=1,2"])
    assert s.methods == ["dpo", "simpo"] and s.conditional
    # method.learning_rate applies to both methods; gamma is SimPO's only; seed is shared by every trial.
    assert set(s.distributions("dpo")) == {"method", "seed", "dpo.beta", "dpo.learning_rate"}
    assert set(s.distributions("simpo")) == {
        "method",
        "seed",
        "simpo.beta",
        "simpo.gamma",
        "simpo.learning_rate",
    }
    assert s.per_method["simpo"]["learning_rate"] == D.FloatDistribution(1e-5, 1e-3, log=True)

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(12):
        trial = study.ask()
        values = s.sample(trial)
        seen.add(values["method"])
        assert ("method.gamma" in values) == (values["method"] == "simpo")
        assert values["seed"] in (1, 2)
        assert set(trial.params) == set(s.distributions(values["method"]))
        study.tell(trial, 0.0)
    assert seen == {"dpo", "simpo"}


@pytest.mark.unit
def test_overrides_config_params_and_fixed_values_shape_the_space():
    s = space(
        ["method=dpo,simpo", "method.beta=0.2"],
        params={"method.epochs": "choice(1, 2)"},
        method_params={"simpo": {"gamma": "interval(0.5, 2.0)"}},
    )
    assert (
        "beta" not in s.per_method["dpo"] and "beta" not in s.per_method["simpo"]
    )  # fixed on the command line
    assert "method.beta=0.2" in s.fixed
    assert s.per_method["simpo"]["gamma"] == D.FloatDistribution(0.5, 2.0)
    assert s.per_method["dpo"]["epochs"] == D.CategoricalDistribution([1, 2])
    only_given = space(["method=dpo"], params={"method.beta": "choice(0.1, 0.2)"}, use_suggested=False)
    assert only_given.distributions() == {"dpo.beta": D.CategoricalDistribution([0.1, 0.2])}


@pytest.mark.unit
def test_method_prefixed_overrides_search_one_methods_parameter():
    s = space(["method=dpo,simpo", "dpo.beta=0.05,0.1", "simpo.beta=interval(1.0, 4.0)"])
    assert s.per_method["dpo"]["beta"] == D.CategoricalDistribution([0.05, 0.1])
    assert s.per_method["simpo"]["beta"] == D.FloatDistribution(1.0, 4.0)
    assert s.per_method["simpo"]["gamma"] == D.FloatDistribution(0.0, 1.5)  # the rest stays as suggested
    with pytest.raises(ConfigError, match="method simpo is not searched; add it: method=dpo,simpo"):
        space(["method=dpo", "simpo.gamma=interval(0.5, 1.0)"])


@pytest.mark.unit
def test_unknown_methods_and_options_stop_before_any_trial():
    with pytest.raises(UnknownNameError, match="Unknown method 'dop'.*Did you mean: dpo"):
        space(["method=dop,simpo"])
    with pytest.raises(ConfigError, match="None of the searched methods .* has the option method.gama"):
        space(["method=dpo,simpo", "method.gama=interval(0, 1)"])
    with pytest.raises(ConfigError, match="method dpo has no option gamma"):
        space(["method=dpo"], method_params={"dpo": {"gamma": "interval(0, 1)"}})
    with pytest.raises(ConfigError, match="search space is empty"):
        space(["method=dpo"], use_suggested=False)


@pytest.mark.unit
def test_grid_needs_discrete_unconditional_dimensions():
    s = space(
        ["method=dpo", "method.beta=0.05,0.1,0.3", "method.learning_rate=range(1, 4)"], use_suggested=False
    )
    assert s.grid() == {"dpo.beta": [0.05, 0.1, 0.3], "dpo.learning_rate": [1, 2, 3]}
    with pytest.raises(ConfigError, match="continuous"):
        space(["method=dpo"]).grid()
    with pytest.raises(ConfigError, match="conditional"):
        space(["method=dpo,simpo"]).grid()


@pytest.mark.unit
def test_sampled_values_become_hydra_overrides_that_round_trip():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    values = {
        "method": "dpo",
        "method.beta": 0.1,
        "method.trl.loss_type": "hinge",
        "method.epochs": 2,
        "data.path": "/tmp/a b.jsonl",
        "flag": True,
    }
    lines = overrides_for(values)
    assert "++method.trl.loss_type=hinge" in lines
    parsed = {o.key_or_group: o.value() for o in OverridesParser.create().parse_overrides(lines)}
    assert parsed == values


@pytest.mark.parametrize("sampler", ["tpe", "random", "grid", "cmaes", "nsga2"])
@pytest.mark.parametrize("pruner", ["median", "successive_halving", "hyperband", "none"])
def test_every_shipped_sampler_and_pruner_config_builds_its_optuna_object(sampler, pruner):
    from hydra import compose, initialize_config_module
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from harness.config.store import register_configs
    from harness.plugin.manager import get_plugin_manager

    register_configs(get_plugin_manager())  # the methods' config nodes, as python -m harness registers them
    with initialize_config_module(config_module="harness_conf", version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[
                "hydra/sweeper=optuna",
                f"hydra/sweeper/sampler={sampler}",
                f"hydra/sweeper/pruner={pruner}",
            ],
            return_hydra_config=True,
        )
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.startswith("hydra_plugins.harness_optuna_sweeper")
    assert sweeper.n_trials > 0 and sweeper.kl_budget == cfg.leaderboard.kl_budget
    extra = {"search_space": {"dpo.beta": [0.1, 0.3]}} if sampler == "grid" else {}
    built = instantiate(OmegaConf.to_container(sweeper.sampler), **extra)
    assert isinstance(built, optuna.samplers.BaseSampler)
    assert isinstance(instantiate(OmegaConf.to_container(sweeper.pruner)), optuna.pruners.BasePruner)
