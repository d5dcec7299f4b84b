"""The model side of a user's own model: ``model.*`` settings, LoRA on any model, quantization refused where
it cannot run, every end-of-sequence id honoured in sampling, and the export of a trained model.

The trials train two steps on the ``real_world`` fixture (tests/realworld.py: tiny random GPT-2 and Qwen2 with
a ChatML byte-level BPE tokenizer whose generation config declares two end ids, UltraFeedback-format data).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from harness.config import model_settings
from harness.config.compose import compose_job, validate_jobs
from harness.errors import ConfigError, UserError
from harness.evaluation.sampling import _completion_mask, end_of_sequence_ids, sample, token_logprobs
from harness.trial import models
from tests.conftest import REPO

CONF = REPO / "conf" / "model"


def model_config(name: str):
    """``model=<name>`` as Hydra composes it: model/base (the declared ``model.*`` settings) under the file's
    own values, through the configs it extends (``lora`` extends ``toy``)."""
    from harness.config.settings_model import MODEL

    own = OmegaConf.load(CONF / f"{name}.yaml")
    parents = [d for d in own.pop("defaults", []) if d != "_self_"]
    base = model_config(parents[0]) if parents != ["base"] else OmegaConf.create(MODEL.defaults())
    return OmegaConf.merge(base, own)


def real(rw, model: str = "gpt2", extra: tuple[str, ...] = ()) -> list[str]:
    """Overrides for a two-step trial on the fixture's ``model`` and UltraFeedback data."""
    return [
        "model=hf",
        f"model.name_or_path={getattr(rw, model)}",
        "data=files",
        f"data.path={rw.ultrafeedback}",
        "data.split=train_prefs",
        "data.eval_split=test_prefs",
        "method.max_steps=2",
        "method.batch_size=4",
        "method.grad_accum=1",
        "method.learning_rate=1e-3",
        "method.warmup=0",
        "train.num_checkpoints=1",
        "eval.num_prompts=4",
        "eval.max_new_tokens=8",
        "eval.evaluators=[kl]",
        "eval.cache=false",
        *extra,
    ]


def run_capturing(cfg, trial_dir: Path):
    """Run a trial through the real runner; returns its record and the model its method returned."""
    from harness.trial.runner import TrialRun

    run = TrialRun(cfg, trial_dir)
    trained: dict[str, torch.nn.Module] = {}
    train = run.spec.train

    def capture(ctx):
        trained["model"] = train(ctx)
        return trained["model"]

    run.spec = dataclasses.replace(run.spec, train=capture)
    record = run.run()
    assert record["status"] == "completed", record["error"]
    return record, trained["model"]


def logits(model: torch.nn.Module) -> torch.Tensor:
    ids = torch.tensor([[5, 17, 42, 99, 7, 250, 3, 11]])
    model.eval()
    with torch.no_grad():
        return model(input_ids=ids).logits.float()


# --- the settings (pure) ------------------------------------------------------------------------------------


@pytest.mark.unit
def test_every_model_config_extends_the_declared_settings_and_holds_only_its_differences():
    from harness.config.settings_model import MODEL

    base = OmegaConf.create(MODEL.defaults())
    for name in ("toy", "hf", "lora"):
        cfg = model_config(name)
        assert tuple(cfg) == model_settings.MODEL_KEYS, name
        assert tuple(cfg.lora) == model_settings.LORA_KEYS and cfg.lora.r == (16 if name == "lora" else 0), (
            name
        )
        assert cfg.lora.target_modules == "all-linear" and cfg.sft is None and cfg.quantization is None
        assert tuple(cfg.bnb_4bit) == model_settings.BNB_4BIT_KEYS
        own = OmegaConf.load(CONF / f"{name}.yaml")
        assert own.pop("defaults") == [("toy" if name == "lora" else "base"), "_self_"], name
        for key, value in own.items():  # a model config holds only what differs from what it extends
            assert value != (model_config("toy") if name == "lora" else base).get(key), f"{name}.yaml: {key}"
        text = (CONF / f"{name}.yaml").read_text()
        uncommented = [
            line
            for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith(("#", "-", "defaults:")) and "#" not in line
        ]
        assert not uncommented, f"{name}.yaml keys without a comment: {uncommented}"
    assert OmegaConf.is_missing(model_config("hf"), "name_or_path")  # model=hf: the user names the model
    assert model_config("toy").profile == model_config("lora").profile == "toy"
    assert all(option.help for _, option in MODEL.walk())  # every model.* key documented where it is declared
    assert OmegaConf.to_container(OmegaConf.load(CONF / "lora.yaml").lora) == {"r": 16}  # toy + LoRA


@pytest.mark.unit
def test_lora_is_on_with_a_positive_rank_and_targets_all_linear_layers_by_default():
    assert not model_settings.lora_enabled(OmegaConf.create({"lora": None}))
    assert not model_settings.lora_enabled(OmegaConf.create({"lora": {"r": 0}}))
    assert model_settings.lora_enabled(OmegaConf.create({"lora": {"r": 8}}))
    hf = model_config("hf")
    assert models.lora_config(hf) is None
    hf.lora.r = 8
    config = models.lora_config(hf)
    assert (
        config is not None and config.r == 8 and config.target_modules == "all-linear"
    )  # not split into letters
    hf.lora.target_modules = ["c_attn", "c_fc"]
    assert set(models.lora_config(hf).target_modules) == {"c_attn", "c_fc"}


@pytest.mark.unit
def test_unknown_and_invalid_model_keys_are_refused_with_the_closest_key():
    hf = model_config("hf")
    cpu = torch.device("cpu")
    model_settings.check_model_settings(hf, cpu)
    cases = [
        (
            "attn_implementaton",
            "eager",
            "Unknown model option 'model.attn_implementaton'. Did you mean: model.attn_implementation?",
        ),
        ("quantization_config", {}, "Did you mean: model.quantization?"),
        ("device_map", "everywhere", "model.device_map='everywhere' is invalid"),
        ("dtype", "float8", "model.dtype='float8' is invalid"),
        ("attn_implementation", "flash_attention_2", "needs a CUDA GPU"),
    ]
    for key, value, expected in cases:
        bad = model_config("hf")
        bad[key] = value  # what +model.<key>=<value> leaves in the composed config
        with pytest.raises(ConfigError) as caught:
            model_settings.check_model_settings(bad, cpu)
        assert expected in str(caught.value) and "\n" not in str(caught.value)
    bad = model_config("hf")
    bad.lora.r = 8
    bad.lora.use_rslor = True
    with pytest.raises(ConfigError, match="Did you mean: use_rslora"):
        model_settings.check_model_settings(bad, cpu)


@pytest.mark.unit
def test_quantization_is_refused_without_a_gpu_bitsandbytes_or_lora(monkeypatch):
    cfg = model_config("hf")
    cfg.quantization = "4bit"
    with pytest.raises(ConfigError, match="needs a CUDA GPU, and this trial runs on cpu"):
        model_settings.check_model_settings(cfg, torch.device("cpu"))
    cuda = torch.device("cuda")  # only a device object: nothing runs on it
    real_find_spec = model_settings.importlib.util.find_spec
    monkeypatch.setattr(
        model_settings.importlib.util,
        "find_spec",
        lambda name: None if name == "bitsandbytes" else real_find_spec(name),
    )
    with pytest.raises(ConfigError, match="needs the bitsandbytes package; pip install bitsandbytes"):
        model_settings.check_model_settings(cfg, cuda)
    monkeypatch.setattr(model_settings.importlib.util, "find_spec", lambda name: object())
    with pytest.raises(ConfigError, match="add a LoRA adapter"):
        model_settings.check_model_settings(cfg, cuda)
    cfg.lora.r = 16
    model_settings.check_model_settings(cfg, cuda)  # QLoRA: fine
    cfg.quantization = "3bit"
    with pytest.raises(ConfigError, match="use null .*, 4bit or 8bit"):
        model_settings.check_model_settings(cfg, cuda)


@pytest.mark.unit
def test_qlora_decision_and_loading_arguments():
    cfg = model_config("hf")
    assert not model_settings.needs_kbit_preparation(cfg)
    cfg.quantization = "4bit"
    assert not model_settings.needs_kbit_preparation(cfg)  # (refused before compute: no LoRA)
    cfg.lora.r = 16
    assert model_settings.needs_kbit_preparation(cfg)
    kwargs = models.from_pretrained_kwargs(cfg, torch.float32, torch.device("cuda", 1))
    bnb = kwargs["quantization_config"]
    assert bnb.load_in_4bit and bnb.bnb_4bit_quant_type == "nf4" and bnb.bnb_4bit_use_double_quant
    assert kwargs["device_map"] == {"": 1}  # quantized weights load straight onto the trial's GPU
    cfg.quantization, cfg.attn_implementation, cfg.device_map = None, "eager", "auto"
    kwargs = models.from_pretrained_kwargs(cfg, torch.bfloat16, torch.device("cpu"))
    assert kwargs["attn_implementation"] == "eager" and kwargs["device_map"] == "auto"
    assert "quantization_config" not in kwargs and kwargs["dtype"] == torch.bfloat16


@pytest.mark.unit
def test_the_completion_ends_at_the_first_of_any_end_id():
    generated = torch.tensor([[5, 9, 0, 7, 2], [5, 2, 0, 0, 0], [5, 6, 7, 8, 9]])
    mask, finished = _completion_mask(generated, [2, 0])
    assert mask.tolist() == [[1, 1, 1, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 1, 1]]
    assert finished.tolist() == [True, True, False]
    assert _completion_mask(generated, 2)[1].tolist() == [True, True, False]  # one id, as before


# --- on the real-world fixture ------------------------------------------------------------------------------


def test_sampling_stops_at_every_end_id_the_model_declares(real_world):
    """The fixture's tokenizer EOS is <|im_end|>; its generation config also declares <|endoftext|>. A model
    that says <|endoftext|> often must have those completions finished, and nothing after it counted."""
    from transformers import AutoModelForCausalLM

    tokenizer = models.load_tokenizer(str(real_world.gpt2), model_config("hf"))
    model = AutoModelForCausalLM.from_pretrained(real_world.gpt2)
    end_of_text = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    assert end_of_sequence_ids(model, tokenizer) == [tokenizer.eos_token_id, end_of_text]
    with (
        torch.no_grad()
    ):  # every position's hidden state is e_0; <|endoftext|> has logit 6, the others 0 (p = 1/2)
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.zero_()
        model.transformer.ln_f.bias[0] = 1.0
        model.lm_head.weight.zero_()
        model.lm_head.weight[end_of_text, 0] = 6.0
    samples = sample(model, tokenizer, ["How do I fix a roof?"] * 16, max_new_tokens=16, seed=3)
    ids = samples.completion_token_ids()
    assert samples.finished.all() and all(row[-1] == end_of_text for row in ids)
    assert any(len(row) > 1 for row in ids)  # some end later, after other tokens
    assert all(end_of_text not in row[:-1] for row in ids)  # nothing after the first end id
    assert samples.completion_lengths.tolist() == [len(row) for row in ids]
    scored = token_logprobs(model, samples)
    assert scored.mask.sum(dim=1).tolist() == [len(row) for row in ids]  # KL sums over exactly these tokens


def test_a_lora_target_module_the_model_lacks_is_refused_before_compute(real_world):
    with pytest.raises(ConfigError) as caught:
        validate_jobs(
            real(real_world, extra=("model.lora.r=8", "model.lora.target_modules=[q_proj,c_fc]")), {}, False
        )
    message = str(caught.value)
    assert message.startswith("LoRA target module 'q_proj' is not in gpt2") and "\n" not in message
    assert "its linear modules are c_attn, c_proj, c_fc" in message
    validate_jobs(
        real(real_world, extra=("model.lora.r=8", "model.lora.target_modules=[c_attn,mlp.c_proj]")), {}, False
    )


def test_a_plus_key_hydra_accepts_is_refused_on_the_command_line(tmp_path, real_world, monkeypatch, capsys):
    from harness.cli.app import main

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main([*real(real_world), "+model.attn_implementaton=eager"])
    stderr = capsys.readouterr().err
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert exited.value.code == 2 and len(lines) == 1, stderr
    assert "Did you mean: model.attn_implementation?" in lines[0]
    assert not (tmp_path / "outputs").exists()


def test_a_quantized_lora_policy_is_prepared_for_kbit_training(real_world, monkeypatch):
    """The QLoRA path on the CPU: bitsandbytes' part (the quantization config) left out,
    peft's preparation runs."""
    cfg = model_config("hf")
    cfg.quantization, cfg.lora.r = "4bit", 8
    monkeypatch.setattr(models, "quantization_config", lambda model_cfg: None)
    calls = []
    import peft

    real_prepare = peft.prepare_model_for_kbit_training
    monkeypatch.setattr(
        peft,
        "prepare_model_for_kbit_training",
        lambda model, **kw: calls.append(kw) or real_prepare(model, **kw),
    )
    model = models.load_causal_lm(str(real_world.gpt2), cfg, torch.float32, torch.device("cpu"))
    assert calls == [
        {"use_gradient_checkpointing": False}
    ]  # checkpointing stays train.gradient_checkpointing's
    assert not any(p.requires_grad for p in model.parameters())  # the base is frozen; the adapter will train


@pytest.fixture(scope="module")
def lora_trial(real_world, tmp_path_factory):
    """DPO with LoRA (all-linear) on GPT-2 with gradient checkpointing: its record,
    trained model and directory."""
    trial_dir = tmp_path_factory.mktemp("sweep") / "0"
    cfg = compose_job(real(real_world, extra=("model.lora.r=8", "train.gradient_checkpointing=true")), {})
    record, trained = run_capturing(cfg, trial_dir)
    return record, trained, trial_dir


def test_lora_on_gpt2_adapts_every_linear_layer_with_gradient_checkpointing(lora_trial):
    record, trained, trial_dir = lora_trial
    targets = {name.rsplit(".", 1)[-1] for name in trained.peft_config["default"].target_modules}
    assert targets == {"c_attn", "c_proj", "c_fc"}  # all-linear: GPT-2's Conv1D layers, not the output head
    base = trained.get_base_model()
    assert getattr(base, "is_activation_checkpointing", None) or base.is_gradient_checkpointing  # TRL also
    # enables the input embeddings' gradients, which peft needs to train an adapter under checkpointing
    moved = [name for name, p in trained.named_parameters() if "lora_B" in name and p.abs().sum() > 0]
    assert len(moved) == 4  # c_attn, attn.c_proj, c_fc, mlp.c_proj of the one layer: the adapter trained
    assert all(not p.requires_grad for name, p in trained.named_parameters() if "lora_" not in name)
    final = record["checkpoints"][-1]
    assert (trial_dir / "checkpoints" / f"step-{final['step']}" / "adapter_config.json").is_file()
    assert (
        math.isfinite(final["metrics"]["kl"]) and final["metrics"]["kl"] != 0.0
    )  # against the adapter-disabled base
    assert record["models_in_memory"] == 1


def test_export_merges_the_adapter_into_a_model_that_gives_the_trained_logits(lora_trial, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.export import main

    record, trained, trial_dir = lora_trial
    assert main([str(trial_dir.parent), "--out", str(tmp_path / "best")]) == 0  # the sweep's rank 1
    exported = AutoModelForCausalLM.from_pretrained(tmp_path / "best")
    assert not any("lora" in name for name, _ in exported.named_parameters())
    torch.testing.assert_close(logits(exported), logits(trained), atol=1e-5, rtol=1e-5)
    assert AutoTokenizer.from_pretrained(tmp_path / "best").chat_template  # with its tokenizer
    assert main([str(trial_dir), "--out", str(tmp_path / "adapter"), "--adapter"]) == 0
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    assert not (tmp_path / "adapter" / "model.safetensors").exists()


def test_export_errors_are_one_line(lora_trial, tmp_path, capsys):
    from harness.export import main
    from harness.records import write_record
    from tests.helpers import make_record

    _, _, trial_dir = lora_trial
    failed = tmp_path / "failed"
    write_record(
        failed / "trial.json",
        make_record(trial_id="s/3", status="failed", error={"message": "loss became nan"}),
    )
    cases = [
        (
            [str(failed), "--out", str(tmp_path / "x")],
            "trial s/3 has no saved checkpoint to export (status failed: loss became nan)",
        ),
        ([str(trial_dir.parent), "--out", str(tmp_path / "x"), "--rank", "2"], "--rank 2 does not exist"),
        ([str(trial_dir), "--out", str(tmp_path / "x"), "--step", "7"], "no saved checkpoint at step 7"),
        ([str(tmp_path / "nothing"), "--out", str(tmp_path / "x")], "no such file or directory"),
    ]
    for argv, expected in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and err.startswith("harness.export: error: ") and expected in err, err
    assert not (tmp_path / "x").exists()


def test_a_full_fine_tune_exports_its_weights_as_trained(real_world, tmp_path):
    from transformers import AutoModelForCausalLM

    from harness.export import main

    record, trained = run_capturing(compose_job(real(real_world, "qwen2"), {}), tmp_path / "trial")
    assert main([str(tmp_path / "trial"), "--out", str(tmp_path / "model")]) == 0
    torch.testing.assert_close(
        logits(AutoModelForCausalLM.from_pretrained(tmp_path / "model")), logits(trained)
    )
    with pytest.raises(UserError, match="trained all weights"):
        from harness.export import choose, export

        export(choose(tmp_path / "trial"), tmp_path / "adapter", adapter=True)


@pytest.mark.unit
def test_a_full_fine_tune_holds_its_own_reference():
    from harness.plugin import separate_reference

    assert separate_reference(OmegaConf.create({"model": model_config("hf")})) == 1
    assert separate_reference(OmegaConf.create({"model": {"lora": {"r": 8}}})) == 0


@pytest.mark.parametrize("method", ["kto", "grpo", "ppo"])
def test_the_adapter_disabled_reference_works_for_other_methods(real_world, tmp_path, method):
    online = {
        "grpo": ("method.trl.max_completion_length=8", "method.trl.num_generations=2"),
        "ppo": ("method.response_length=8", "method.mini_batch_size=4"),
    }.get(method, ())
    reward = (f"method.reward={real_world.reward_model}",) if online else ()
    cfg = compose_job(real(real_world, extra=(f"method={method}", "model.lora.r=4", *online, *reward)), {})
    record, trained = run_capturing(cfg, tmp_path)
    assert hasattr(trained, "disable_adapter")
    assert math.isfinite(record["checkpoints"][-1]["metrics"]["kl"])
