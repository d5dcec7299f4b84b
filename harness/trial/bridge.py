"""The bridge from transformers/TRL trainers to the harness: a callback and a runner.

Imported only when a trainer runs (transformers' trainer modules are slow to import), so that config errors
are reported quickly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from harness.config import distributed

if TYPE_CHECKING:  # the plugin API's protocol, which the trial's context satisfies (no import circle)
    from transformers import Trainer

    from harness.plugin.contexts import TrainContext


class HarnessCallback(TrainerCallback):
    """Connects a transformers Trainer to the harness: loss checks, log history, checkpoints, progress bar.

    The progress bar replaces transformers' own, which prints every log dict as a line; here the latest
    loss goes into the bar instead, so a sweep's output stays readable.
    """

    def __init__(self, ctx: TrainContext) -> None:
        self.ctx = ctx
        self.bar: Any = None

    def on_train_begin(self, args, state, control, **kwargs):  # noqa: D102 (transformers hook)
        from tqdm.auto import tqdm

        self.ctx.checkpointer.plan(state.max_steps)
        self.bar = tqdm(
            total=state.max_steps,
            desc=f"train {self.ctx.spec.name}",
            unit="step",
            leave=False,
            disable=not distributed.is_main(),
        )  # one bar for a multi-process trial

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: D102 (transformers hook)
        if logs:
            entry = {
                "step": state.global_step,
                **{k: v for k, v in logs.items() if isinstance(v, (int, float))},
            }
            self.ctx.log_history.append(entry)
            if self.bar is not None and "loss" in logs:
                self.bar.set_postfix(loss=f"{logs['loss']:.4g}", refresh=False)
            self.ctx.checkpointer.check_loss(state.global_step, logs.get("loss"))

    def on_step_end(self, args, state, control, model=None, **kwargs):  # noqa: D102 (transformers hook)
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)
        self.ctx.steps_done = state.global_step
        self.ctx.checkpointer.step(state.global_step, model)

    def on_train_end(self, args, state, control, **kwargs):  # noqa: D102 (transformers hook)
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def run_trainer(ctx: TrainContext, trainer: Trainer) -> torch.nn.Module:
    """Train ``trainer`` under the harness (see :meth:`harness.trial.context.TrainContext.run_trainer`)."""
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    if not any(isinstance(cb, HarnessCallback) for cb in trainer.callback_handler.callbacks):
        trainer.add_callback(HarnessCallback(ctx))
    trainer.train()
    return trainer.model
