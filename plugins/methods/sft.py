"""Supervised fine-tuning: ``method=sft`` on the chosen completions,
and the SFT stage before a preference method.

``method=sft`` trains the policy on each pair's prompt and chosen completion with TRL's SFTTrainer, the loss
on the completion's tokens only (TRL's ``completion_only_loss`` for prompt/completion rows; conversational
rows are rendered with the tokenizer's chat template, the prompt with the assistant turn opened). Its
checkpoints are policies, evaluated like any method's (gold reward, KL to the reference, ...).

``model.sft={...}`` puts an SFT stage before any method, as the usual recipe has it (SFT, then DPO or RLHF):
``method=sft`` on the same model and data, its settings the sft defaults updated by the mapping (``{}``: the
defaults), trained once per model, data and settings in a process of its own, cached under
``$HARNESS_CACHE_DIR/sft_models/`` and shared by every trial of a sweep (:class:`harness.plugin.Stage`). The
trial's policy and reference then both start from the stage's final checkpoint; with LoRA the stage's adapter
is merged into its base first, so the trial trains an adapter of its own on the SFT model. The trial record
names the stage (``stages.sft``: key, directory, model, settings), and the leaderboard keeps trials of
different stages apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from harness.plugin import MethodSpec, Profile, Stage, file_lock, hookimpl

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import PreTrainedModel

    from harness.plugin import TrainContext, TrialRecord

NAME = "sft"
STAGE_FOLDER = "sft_models"  # under the harness cache


def sft_dataset(pairs: Dataset) -> Dataset:
    """Prompt/completion rows (what SFTTrainer takes, with the loss on the completion) from pairwise rows:
    each pair's prompt and its chosen completion; strings or message lists alike."""
    return pairs.select_columns(["prompt", "chosen"]).rename_column("chosen", "completion")


def build_trainer(ctx: TrainContext) -> Any:
    """TRL's SFTTrainer on the chosen completions of ``ctx.train_data`` (policy only)."""
    return ctx.trl_trainer(train_dataset=sft_dataset(ctx.train_data))


def train(ctx: TrainContext) -> PreTrainedModel:
    """Train with SFTTrainer; returns the trained model."""
    return ctx.run_trainer(build_trainer(ctx))


@hookimpl
def harness_methods_register() -> list[MethodSpec]:
    """SFT on the chosen completions (TRL SFTTrainer)."""
    return [
        MethodSpec(
            name=NAME,
            train=train,
            data_kind="pairwise",
            models_in_memory=1,
            needs_reference=False,
            trainer="trl:SFTTrainer",
            lr_range=(1e-5, 2e-5),  # full fine-tuning of ~1B-7B models (Zephyr, Tulu 2: 2e-5)
            description="Supervised fine-tuning on the chosen "
            "completions (TRL SFTTrainer, loss on completions only)",
            # Real models (common practice: TRL's default rate, cosine decay after 10% warm-up,
            # one or two epochs).
            defaults={
                "learning_rate": 2e-5,
                "scheduler": "cosine",
                "trl": {"max_length": 1024, "completion_only_loss": True},
            },
            profiles={
                "toy": Profile(
                    {"learning_rate": 1e-3, "batch_size": 16, "grad_accum": 1, "trl": {"max_length": 64}},
                    {"learning_rate": "tag(log, interval(1e-4, 3e-3))"},
                )
            },
            search_space={"learning_rate": "tag(log, interval(5e-6, 5e-5))", "epochs": "choice(1, 2, 3)"},
            loss_notes="SFTTrainer, completion_only_loss=true: NLL of the chosen completion's tokens "
            "(prompt masked), a per-token mean over the batch.",
        )
    ]


# ---------------------------------------------------------------------------------------------------
# The SFT stage: model.sft={...}.
# ---------------------------------------------------------------------------------------------------


def sft_stage(cfg: DictConfig) -> Stage | None:
    """The SFT stage the trial ``cfg`` asks for with ``model.sft`` (None when it is null or absent):
    ``method=sft`` on the same model (without ``model.sft``) and data, at its defaults updated by
    ``model.sft``."""
    settings = (cfg.get("model") or {}).get("sft")
    if settings is None:
        return None
    return Stage.of(
        cfg, NAME, settings, folder=STAGE_FOLDER, where="model.sft", label="SFT stage", without=("model.sft",)
    )


def full_model(checkpoint: str | Path, merge: bool = True) -> str:
    """A directory ``from_pretrained`` loads as a whole model: the checkpoint itself, or, for a LoRA adapter,
    the adapter merged into its base (once, beside the checkpoints: ``<stage>/merged``; with ``merge=False``
    only if that exists already)."""
    checkpoint = Path(checkpoint)
    if not (checkpoint / "adapter_config.json").is_file() or (checkpoint / "config.json").is_file():
        return str(checkpoint)
    merged = checkpoint.parent.parent / "merged"
    if not merge:
        return str(merged) if (merged / "config.json").is_file() else str(checkpoint)
    with file_lock(merged.parent / "merged.lock"):
        if not (merged / "config.json").is_file():
            from peft import AutoPeftModelForCausalLM
            from transformers import AutoTokenizer

            print(f"[harness] merging the SFT adapter into its base ({merged})", flush=True)
            model = AutoPeftModelForCausalLM.from_pretrained(str(checkpoint), dtype="auto").merge_and_unload()
            tmp = merged.with_name(".merged.tmp")
            model.save_pretrained(tmp)
            AutoTokenizer.from_pretrained(str(checkpoint)).save_pretrained(tmp)
            tmp.replace(merged)
    return str(merged)


@hookimpl(tryfirst=True)  # before the plugin that owns the base model's name (the toy world)
def harness_model_resolve(cfg: DictConfig, dry_run: bool) -> str | None:
    """With ``model.sft`` set: the SFT stage's final model, training the stage first unless it is cached. A
    dry run validates the stage's settings and trains nothing (it answers with the base model, which the stage
    shares its architecture with)."""
    stage = sft_stage(cfg)
    if stage is None:
        return None
    if dry_run:
        stage.check()
        return stage.model_path(dry_run=True)
    final = stage.final_checkpoint(stage.train())
    return full_model(str(final.path))


@hookimpl
def harness_trial_end(record: TrialRecord) -> None:
    """Name the trial's SFT stage in its record (``stages.sft``), so the leaderboard keeps stages apart."""
    config = record.config or {}
    if (config.get("model") or {}).get("sft") is None:
        return
    try:
        stage = sft_stage(OmegaConf.create(config))
    except Exception:  # a stage that cannot even be configured failed the trial already, with its reason
        return
    if stage is not None:
        done = stage.completed_record()
        model = full_model(str(stage.final_checkpoint(done).path), merge=False) if done else None
        stage.note_in(record, NAME, model=model)
