"""``python -m harness.export PATH --out DIR``: a trial's checkpoint as a model directory you
can load anywhere.

``PATH`` is a trial directory (or its ``trial.json``): its final checkpoint is exported. Or it is a sweep's
directory (``multirun/<sweep>``): the leaderboard is built from its records and the trial ranked ``--rank``
(default 1) is exported at the checkpoint the leaderboard ranked it by (its ``step`` column: the final one
unless the KL budget chose an earlier one); ``--step final`` or ``--step N`` picks another saved checkpoint.

With ``--verdict`` (``python -m harness.export SWEEP... --verdict --out DIR``) the sweeps' verdict picks the
model: the recommended method's setting, its seed with the best selection value, at that seed's chosen
checkpoint (:mod:`harness.export.winner`), written with a model card (``README.md``,
:mod:`harness.export.model_card`) and ``verdict.json``; ``--require-decided`` refuses a verdict that is not
decided.

The output is what ``AutoModelForCausalLM.from_pretrained(DIR)`` and ``AutoTokenizer.from_pretrained(DIR)``
load: a full fine-tune's weights as they were saved, or a LoRA trial's adapter merged into its base weights
(``--merged``, the default); ``--adapter`` exports the adapter alone (load it with peft over the base model).
Every problem (no checkpoint saved, a rank that does not exist, an output directory in the way, nothing a
verdict can recommend) is one line and exit status 2.

Modules: :mod:`~harness.export.choose` (which checkpoint), :mod:`~harness.export.write` (the weights),
:mod:`~harness.export.winner` and :mod:`~harness.export.model_card` (``--verdict``),
:mod:`~harness.export.cli`.
"""

from harness.export.choose import Chosen, ExportError, choose, choose_checkpoint, choose_from_sweep
from harness.export.cli import main
from harness.export.write import export

__all__ = ["Chosen", "ExportError", "choose", "choose_checkpoint", "choose_from_sweep", "export", "main"]
