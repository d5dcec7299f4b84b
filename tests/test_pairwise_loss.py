"""The pairwise-loss extension point (:mod:`harness.plugin.pairwise`, :mod:`harness.trial.pairwise_loss`).

Unit tests: the declaration (what ``pairwise_loss_method`` builds, what it refuses), the batch container, the
checks before any compute. On the tiny toy world: DPO's sigmoid loss declared as a pairwise loss trains
exactly like the built-in ``method=dpo`` (the override changes nothing but the loss), with the reference's
log-probabilities precomputed, computed in the loss under bf16, and with LoRA (the adapter-disabled policy as
the reference); the trainer's per-pair inputs are the plain forward pass's; a loss that returns a scalar is
refused.
The example plugin's R-DPO is checked end to end in ``tests/test_example_plugin.py``.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from harness.errors import ConfigError, PluginError
from harness.plugin import Hyperparameter, PairwiseBatch, Profile, pairwise_loss_method
from harness.plugin.pairwise import REPLACED_FIELDS, TRL_DEFAULTS, PairwiseLossTraining, pairwise_loss_of
from tests.conftest import REPO
from tests.helpers import TRAIN_ONLY_EVAL, compose, dpo_trial, logged_losses

FIXTURES = REPO / "tests" / "fixtures"
PLUGIN = "plugins=[pairwise_plugin]"


def _sigmoid(batch: PairwiseBatch, settings) -> torch.Tensor:
    return -F.logsigmoid(settings["beta"] * (batch.chosen_logratios - batch.rejected_logratios))


BETA = Hyperparameter("beta", 0.1, "KL strength", bounds="(0, inf)", field="beta")


@pytest.fixture
def plugin(monkeypatch: pytest.MonkeyPatch) -> str:
    """``plugins=[pairwise_plugin]`` (tests/fixtures/pairwise_plugin.py) importable in this process."""
    monkeypatch.syspath_prepend(str(FIXTURES))
    return PLUGIN


# ---------------------------------------------------------------------------------------------------
# Unit tests: no model, no training.
# ---------------------------------------------------------------------------------------------------


@pytest.mark.unit
def test_the_declaration_is_a_dpo_trainer_method_with_the_loss_as_its_train():
    spec = pairwise_loss_method(
        name="mine",
        loss=_sigmoid,
        hyperparameters=[BETA],
        defaults={"learning_rate": 1e-6, "trl": {"max_length": 512}},
        profiles={"toy": Profile({"learning_rate": 3e-4, "trl": {"max_length": 64}})},
        search_space={"beta": "interval(0.05, 0.5)", "trl.max_length": "choice(256, 512)"},
        description="d",
        loss_notes="n",
    )
    assert (spec.data_kind, spec.needs_reference, spec.produces) == ("pairwise", True, "policy")
    assert spec.trainer == "harness.trial.pairwise_loss:PairwiseLossTrainer"
    assert spec.config_class == "trl:DPOConfig"
    assert isinstance(spec.train, PairwiseLossTraining) and pairwise_loss_of(spec) is _sigmoid
    # DPO's trainer defaults, under the plugin's own; a profile's trl values are its own.
    assert spec.defaults == {"learning_rate": 1e-6, "trl": {**TRL_DEFAULTS, "max_length": 512}}
    assert spec.profiles["toy"].defaults == {"learning_rate": 3e-4, "trl": {"max_length": 64}}
    assert (spec.description, spec.loss_notes) == ("d", "n")
    assert (
        spec.count_models(OmegaConf.create({"model": {"lora": None}})) == 2
        and spec.count_models(OmegaConf.create({"model": {"lora": {"r": 8}}})) == 1
    )


@pytest.mark.unit
def test_the_fields_of_trls_own_loss_and_a_non_function_are_refused_at_declaration():
    with pytest.raises(PluginError, match=r"MethodSpec 'x': loss must be a function"):
        pairwise_loss_method(name="x", loss=0.5)
    for field in ("loss_type", "ld_alpha", "use_weighting"):
        with pytest.raises(PluginError, match=rf"defaults\['trl'\]\['{field}'\] chooses TRL's own DPO loss"):
            pairwise_loss_method(name="x", loss=_sigmoid, defaults={"trl": {field: 1}})
    with pytest.raises(PluginError, match=r"profiles\['toy'\]\['trl'\]\['label_smoothing'\]"):
        pairwise_loss_method(
            name="x", loss=_sigmoid, profiles={"toy": Profile({"trl": {"label_smoothing": 0.1}})}
        )
    with pytest.raises(
        PluginError, match="hyperparameter names repeat"
    ):  # MethodSpec's own checks still apply
        pairwise_loss_method(name="x", loss=_sigmoid, hyperparameters=[BETA, BETA])


@pytest.mark.unit
def test_the_batch_gives_log_ratios_and_its_size():
    batch = PairwiseBatch(
        *(torch.tensor([v, v + 1.0]) for v in (-3.0, -5.0, -4.0, -4.5)), *(torch.tensor([2, 3]),) * 2
    )
    assert batch.size == 2
    assert torch.equal(batch.chosen_logratios, torch.tensor([1.0, 1.0]))
    assert torch.equal(batch.rejected_logratios, torch.tensor([-0.5, -0.5]))


@pytest.mark.unit
def test_settings_that_choose_trls_own_loss_stop_before_any_compute(plugin):
    from harness.config.validation import validate_trial_config
    from harness.plugin.manager import get_plugin_manager

    pm = get_plugin_manager(["pairwise_plugin"])
    cfg = compose_job_for([plugin, "method=pairwise_dpo"])
    validate_trial_config(cfg, pm)  # valid as declared
    # The extension point's trainer defaults, under the toy profile's max_length
    # (the default model is the toy's).
    assert cfg.method.trl == {"precompute_ref_log_probs": True, "max_length": 64}
    for field in ("loss_type=ipo", "ld_alpha=0.5", "use_weighting=true"):
        with pytest.raises(
            ConfigError, match=rf"method.trl.{field.split('=')[0]} chooses TRL's own DPO loss"
        ):
            validate_trial_config(compose_job_for([plugin, "method=pairwise_dpo", f"method.trl.{field}"]), pm)
    assert set(REPLACED_FIELDS) >= {"loss_type", "ld_alpha", "use_weighting", "f_divergence_type"}


@pytest.mark.unit
def test_a_trl_without_the_fused_lm_head_is_refused_in_one_line(plugin, monkeypatch):
    from trl.trainer import utils

    from harness.config.validation import validate_trial_config
    from harness.plugin.manager import get_plugin_manager

    pm = get_plugin_manager(["pairwise_plugin"])
    monkeypatch.delattr(utils, "add_fused_lm_head")
    with pytest.raises(ConfigError) as error:
        validate_trial_config(compose_job_for([plugin, "method=pairwise_dpo"]), pm)
    message = str(error.value)
    assert "\n" not in message and "lacks trl.trainer.utils.add_fused_lm_head" in message
    assert message.startswith("method pairwise_dpo trains on the pairwise-loss extension point")


def compose_job_for(overrides: list[str]):
    from harness.config.compose import compose_job

    return compose_job(overrides, {})


# ---------------------------------------------------------------------------------------------------
# On the tiny toy world.
# ---------------------------------------------------------------------------------------------------


def _trial(world: list[str], directory, method: str, *overrides: str) -> dict:
    from harness.trial import run_trial

    record = run_trial(compose(world, [PLUGIN, f"method={method}", *TRAIN_ONLY_EVAL, *overrides]), directory)
    assert record["status"] == "completed", record["error"]
    return record


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["method.trl.precompute_ref_log_probs=false", "train.precision=bf16"],
        ["model=lora", "method.trl.precompute_ref_log_probs=false"],
    ],
    ids=[
        "precomputed-reference",
        "reference-in-the-loss-bf16",
        "lora-adapter-disabled-reference-in-the-loss",
    ],
)
def test_dpos_loss_as_a_pairwise_loss_trains_exactly_like_builtin_dpo(
    plugin, tiny_world, tmp_path, overrides
):
    """Bit-identical logged losses and metrics, step for step: the override sums TRL's own per-token
    log-probabilities in TRL's order and the loss repeats TRL's operations, so nothing but where the loss is
    computed differs."""
    beta = "method.beta=0.3"
    lr = "method.learning_rate=3e-4"  # both set alike: the built-in's toy default is not the fixture's
    dpo = dpo_trial(tiny_world, tmp_path / "dpo", beta, lr, *overrides)
    ours = _trial(tiny_world, tmp_path / "ours", "pairwise_dpo", beta, lr, *overrides)
    assert len(logged_losses(dpo)) == 4 and logged_losses(ours) == logged_losses(dpo)
    keys = ("loss", "rewards/margins", "rewards/accuracies", "logps/chosen", "logps/rejected", "entropy")
    for a, b in zip(dpo["train"]["log_history"], ours["train"]["log_history"], strict=True):
        assert {k: a.get(k) for k in keys} == {k: b.get(k) for k in keys}  # TRL's metrics logged as for dpo
    assert ours["models_in_memory"] == dpo["models_in_memory"]
    precision = "bf16" if "train.precision=bf16" in overrides else "fp32"
    assert ours["host"]["precision"] == dpo["host"]["precision"] == precision


def test_the_trainers_inputs_are_the_plain_forward_pass_and_a_scalar_loss_is_refused(
    plugin, tiny_world, tmp_path
):
    from harness.plugin import check_pairwise_loss
    from harness.plugin.manager import get_plugin_manager
    from tests.helpers import train_context

    ctx = train_context(tiny_world, tmp_path, [PLUGIN, "method=pairwise_dpo"])
    pairs = [ctx.train_data[i] for i in range(6)]
    spec = get_plugin_manager(["pairwise_plugin"]).method("pairwise_dpo")
    for trl in ({}, {"precompute_ref_log_probs": False}):
        got, want = check_pairwise_loss(spec, ctx.policy, ctx.tokenizer, pairs, {"beta": 0.3}, trl=trl)
        assert got == pytest.approx(want, rel=1e-4, abs=1e-5) and got != pytest.approx(0.6931, abs=1e-3)
    with pytest.raises(
        TypeError, match=r"the loss of method pairwise_scalar returned shape \(\); .* shape \[6\]"
    ):
        check_pairwise_loss("pairwise_scalar", ctx.policy, ctx.tokenizer, pairs)
