"""The configured loss is the loss actually computed.

For each method (and each loss variant a user can configure), the trainer the plugin builds computes its loss
on a fixed batch; the test recomputes that loss independently, from per-sequence log-probabilities taken with
plain ``model(...)`` calls and the plugin's documented formula. A configured ``hinge`` or ``ipo`` that
silently trained as sigmoid DPO would fail here (the negative control checks that the variants really differ).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from harness_plugins.methods.cpo import build_trainer as cpo_trainer
from harness_plugins.methods.cpo import cpo_loss
from harness_plugins.methods.dpo import build_trainer as dpo_trainer
from harness_plugins.methods.dpo import dpo_loss
from harness_plugins.methods.kto import build_trainer as kto_trainer
from harness_plugins.methods.kto import kto_loss
from harness_plugins.methods.orpo import build_trainer as orpo_trainer
from harness_plugins.methods.orpo import orpo_loss

from tests.helpers import train_context


def token_logps(model, input_ids, attention_mask, target_mask):
    """Per-token log-probability of each next token where ``target_mask`` (aligned with input_ids) is 1."""
    with torch.no_grad():
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1].float()
    logp = torch.log_softmax(logits, dim=-1).gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    mask = target_mask[:, 1:].float()
    return logp * mask, mask


def first_batch(trainer):
    batch = next(iter(trainer.get_train_dataloader()))
    return {k: (v.to(trainer.model.device) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}


def trainer_loss(trainer, batch):
    trainer.model.train()
    with torch.no_grad():
        return trainer.compute_loss(trainer.model, batch).item()


# --- DPO family (DPOTrainer: batch rows are [chosen..., rejected...]) --------------------------------------


def dpo_expected(trainer, batch, loss_type, beta):
    ids, attn, comp = batch["input_ids"], batch["attention_mask"], batch["completion_mask"]
    pol, mask = token_logps(trainer.model, ids, attn, comp)
    ref, _ = token_logps(trainer.ref_model, ids, attn, comp)
    lengths = mask.sum(dim=1)
    c, r = pol.sum(1).chunk(2)
    rc, rr = ref.sum(1).chunk(2)
    lc, lr = lengths.chunk(2)
    return dpo_loss(
        c, r, rc, rr, beta=beta, loss_type=loss_type, chosen_lengths=lc, rejected_lengths=lr
    ).item()


@pytest.mark.parametrize(
    ("method", "loss_type", "extra"),
    [
        ("dpo", "sigmoid", []),
        ("dpo", "hinge", ["method.trl.loss_type=hinge"]),
        ("ipo", "ipo", []),
    ],
)
def test_dpo_family_computes_the_configured_loss(tiny_world, tmp_path, method, loss_type, extra):
    ctx = train_context(tiny_world, tmp_path, [f"method={method}", "method.beta=0.3", *extra])
    trainer = dpo_trainer(ctx)
    # Move the policy away from the reference so that the losses are not all at their starting values.
    with torch.no_grad():
        for p in trainer.model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    batch = first_batch(trainer)
    got = trainer_loss(trainer, batch)
    assert got == pytest.approx(dpo_expected(trainer, batch, loss_type, 0.3), rel=1e-4, abs=1e-5)
    for other in {"sigmoid", "hinge", "ipo"} - {loss_type}:  # negative control: the variants differ
        assert got != pytest.approx(dpo_expected(trainer, batch, other, 0.3), rel=1e-3)


# --- KTO ---------------------------------------------------------------------------------------------------


def test_kto_computes_the_kto_loss(tiny_world, tmp_path):
    ctx = train_context(
        tiny_world, tmp_path, ["method=kto", "method.beta=0.3", "method.trl.desirable_weight=1.5"]
    )
    trainer = kto_trainer(ctx)
    with torch.no_grad():
        for p in trainer.model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    batch = first_batch(trainer)
    got = trainer_loss(trainer, batch)
    pol, _ = token_logps(trainer.model, batch["input_ids"], batch["attention_mask"], batch["completion_mask"])
    ref, _ = token_logps(
        trainer.ref_model, batch["input_ids"], batch["attention_mask"], batch["completion_mask"]
    )
    kl_pol, _ = token_logps(
        trainer.model, batch["KL_input_ids"], batch["KL_attention_mask"], batch["KL_completion_mask"]
    )
    kl_ref, _ = token_logps(
        trainer.ref_model, batch["KL_input_ids"], batch["KL_attention_mask"], batch["KL_completion_mask"]
    )
    kl = (kl_pol.sum(1) - kl_ref.sum(1)).mean().clamp(min=0)
    ratios = pol.sum(1) - ref.sum(1)
    labels = torch.as_tensor(batch["label"], dtype=torch.bool)
    assert labels.any() and (~labels).any(), "the batch must mix desirable and undesirable examples"
    expected = kto_loss(ratios[labels], ratios[~labels], kl, beta=0.3, desirable_weight=1.5).item()
    assert got == pytest.approx(expected, rel=1e-4, abs=1e-5)
    assert got != pytest.approx(kto_loss(ratios[labels], ratios[~labels], kl, beta=0.3).item(), rel=1e-3)


# --- CPO / SimPO / ORPO (chosen_* and rejected_* tensors, labels -100 on the prompt) ------------------------


def pair_logps(model, batch, average):
    out = []
    for side in ("chosen", "rejected"):
        labels = batch[f"{side}_labels"]
        logp, mask = token_logps(
            model, batch[f"{side}_input_ids"], batch[f"{side}_attention_mask"], (labels != -100).long()
        )
        total = logp.sum(1)
        out.append(total / mask.sum(1) if average else total)
    return out


def chosen_nll(model, batch, include_prompt=False):
    labels = batch["chosen_labels"]
    if include_prompt:  # TRL's ORPO: NLL over prompt and completion (see harness_plugins.methods.orpo)
        labels = batch["chosen_input_ids"].masked_fill(batch["chosen_attention_mask"] == 0, -100)
    with torch.no_grad():
        logits = model(
            input_ids=batch["chosen_input_ids"], attention_mask=batch["chosen_attention_mask"]
        ).logits
    return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), ignore_index=-100)


@pytest.mark.parametrize(
    ("method", "loss_type", "extra"),
    [
        ("cpo", "sigmoid", []),
        ("cpo", "hinge", ["method.trl.loss_type=hinge"]),
        ("simpo", "simpo", []),
    ],
)
def test_cpo_family_computes_the_configured_loss(tiny_world, tmp_path, method, loss_type, extra):
    ctx = train_context(tiny_world, tmp_path, [f"method={method}", *extra])
    trainer = cpo_trainer(ctx)
    batch = first_batch(trainer)
    got = trainer_loss(trainer, batch)
    m = ctx.method_cfg
    alpha, gamma = m.trl.cpo_alpha, m.get("gamma", 0.0)
    c, r = pair_logps(trainer.model, batch, average=loss_type == "simpo")
    nll = chosen_nll(trainer.model, batch)
    expected = cpo_loss(
        c, r, nll, beta=m.beta, loss_type=loss_type, cpo_alpha=alpha, simpo_gamma=gamma
    ).item()
    assert got == pytest.approx(expected, rel=1e-4, abs=1e-5)
    if loss_type != "simpo":  # negative control: sigmoid and hinge really differ on this batch
        other = "hinge" if loss_type == "sigmoid" else "sigmoid"
        assert got != pytest.approx(
            cpo_loss(c, r, nll, beta=m.beta, loss_type=other, cpo_alpha=alpha).item(), rel=1e-3
        )


def test_orpo_computes_the_odds_ratio_loss(tiny_world, tmp_path):
    ctx = train_context(tiny_world, tmp_path, ["method=orpo", "method.beta=0.5"])
    trainer = orpo_trainer(ctx)
    batch = first_batch(trainer)
    got = trainer_loss(trainer, batch)
    c, r = pair_logps(trainer.model, batch, average=True)
    expected = orpo_loss(c, r, chosen_nll(trainer.model, batch, include_prompt=True), beta=0.5).item()
    assert got == pytest.approx(expected, rel=1e-4, abs=1e-5)
    # The paper's NLL covers the completion only; TRL's also covers the prompt. Pin the difference.
    paper = orpo_loss(c, r, chosen_nll(trainer.model, batch), beta=0.5).item()
    assert got != pytest.approx(paper, rel=1e-4)
