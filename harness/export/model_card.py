"""The model card of a verdict's export (``DIR/README.md``), in the Hugging Face convention: YAML metadata
(``base_model``, ``datasets``, ``library_name``, ``tags``, ``pipeline_tag`` and a ``model-index`` with the
objective's test value), written with ``huggingface_hub``'s :class:`~huggingface_hub.ModelCardData` (installed
with transformers), then the evidence: the verdict first (plainly not a decision when it is not one), the
method and its setting, the objective with its interval and the gain over the base model with its interval,
every other method's status, what it was chosen on and reported on, seeds, budget and data, the commands that
reproduce the trial and the sweep, and the library versions."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.export.winner import Winner, finite, row_of
from harness.leaderboard.analysis.frames import ONE_SETTING

TOY_MODEL = "toyworld"
_STATE_WORDS = {
    "decided": "**Verdict: decided.** Every other method is behind, tied within the margin or diverged.",
    "undecided": "**Verdict: undecided. This is the leading candidate, not a proven winner**: some methods "
    "could not be told apart from it with these seeds and prompts.",
    "one seed": "**Verdict: one seed. This ranks trials, not methods**: one seed per method cannot say which "
    "method is better; the seed-to-seed spread is unmeasured.",
    "one method": "**Verdict: one method.** Only one method was run: there is nothing it was compared with.",
}


def _num(value: Any) -> str:
    number = finite(value)
    return "n/a" if number is None else f"{number:.4g}"


def _interval(low: Any, high: Any) -> str:
    return f" [{_num(low)}, {_num(high)}] (95%)" if finite(low) is not None else ""


def base_model(config: dict[str, Any]) -> str:
    """The base model's name or path as the trial's config gives it (``model.name_or_path``)."""
    return str((config.get("model") or {}).get("name_or_path") or "unknown")


def datasets(config: dict[str, Any]) -> list[str]:
    """The training data as the config names it: ``data.path`` (a file, directory or Hub id), else the data
    source's name (``toyworld``)."""
    data = config.get("data") or {}
    return [str(data.get("path") or data.get("source") or "unknown")]


def card_data(winner: Winner, adapter_only: bool = False) -> Any:
    """The card's metadata (:class:`huggingface_hub.ModelCardData`); ``library_name`` is ``peft`` for an
    adapter exported alone, else ``transformers``."""
    from huggingface_hub import EvalResult, ModelCardData

    config = winner.chosen.record.config or {}
    verdict, rec = winner.verdict, winner.verdict.recommended
    results = []
    if rec is not None and finite(rec.test_mean) is not None:
        results.append(
            EvalResult(
                task_type="text-generation",
                dataset_type=datasets(config)[0],
                dataset_name=datasets(config)[0],
                dataset_split="test prompts",
                metric_type=str(verdict.objective),
                metric_value=round(float(rec.test_mean), 6),
                metric_name=f"{verdict.objective} (test, mean of {rec.n_seeds} seed(s))",
            )
        )
    method = str(winner.chosen.record.method)
    return ModelCardData(
        base_model=base_model(config),
        datasets=datasets(config),
        library_name="peft" if adapter_only else "transformers",
        pipeline_tag="text-generation",
        tags=["harness", method, "preference-alignment"],
        model_name=f"{method} ({winner.board.title})",
        eval_results=results or None,
    )


def _opening(winner: Winner, merged: bool) -> list[str]:
    verdict, chosen = winner.verdict, winner.chosen
    weights = (
        "a LoRA adapter merged into the base weights"
        if merged
        else (
            "a LoRA adapter (load it with peft over the base model)" if chosen.is_adapter else "all weights"
        )
    )
    return [
        f"# {chosen.record.method}: the harness verdict's recommendation ({verdict.state})",
        "",
        _STATE_WORDS.get(verdict.state, f"**Verdict: {verdict.state}.**"),
        "",
        verdict.headline,
        "",
        f"This is trial `{chosen.name}` of {chosen.record.method}'s chosen setting, at "
        f"checkpoint step {chosen.step}: {weights}. It was picked by {winner.picked}.",
        "",
    ]


def _method(winner: Winner) -> list[str]:
    record, rec = winner.chosen.record, winner.verdict.recommended
    params = ", ".join(f"{k}={v}" for k, v in (record.hyperparameters or {}).items())
    lines = ["## Method and settings", "", f"- method: `{record.method}`"]
    if record.method_description:
        lines.append(f"- what it is: {record.method_description}")
    if rec is not None:
        setting = "its only setting run" if rec.setting == ONE_SETTING else rec.setting
        lines.append(f"- chosen setting: {setting} (chosen on the {rec.selected_on})")
    lines += [f"- the exported trial's hyperparameters: {params or 'n/a'}", ""]
    return lines


def _objective(winner: Winner) -> list[str]:
    verdict, rec = winner.verdict, winner.verdict.recommended
    if rec is None:
        return []
    row = row_of(winner)
    obj = verdict.objective
    lines = [
        "## Objective",
        "",
        f"- `{obj}` ({'higher' if verdict.direction == 'maximize' else 'lower'} is better), test prompts: "
        f"{_num(rec.test_mean)}{_interval(rec.test_low, rec.test_high)}, mean of {rec.n_seeds} seed(s)"
        + (f" ({rec.diverged} diverged)" if rec.diverged else ""),
        f"- the base model: {_num(verdict.base)}; gain over it: {_num(verdict.gain)}"
        f"{_interval(verdict.gain_low, verdict.gain_high)}",
        f"- the exported trial alone: selection value {_num(winner.selection)}, test value "
        f"{_num(row.get('objective'))} (reported, never used to choose)",
        "",
    ]
    return lines


def _verdict(winner: Winner) -> list[str]:
    verdict = winner.verdict
    lines = ["## Verdict", "", f"State: **{verdict.state}**. Comparisons: {verdict.test or 'n/a'}.", ""]
    lines += [
        "| method | status | setting | seeds | selection | test (95%) | behind by | Holm p | P(best) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for m in verdict.methods:
        lines.append(
            f"| {m.method} | {m.status} | {m.setting} | {m.n_seeds} | {_num(m.selection_mean)} | "
            f"{_num(m.test_mean)}{_interval(m.test_low, m.test_high).replace(' (95%)', '')} | "
            f"{_num(m.diff)} | "
            f"{_num(m.p_holm)} | {_num(m.p_best)} |"
        )
    lines += [
        "",
        f"- margin of a tie: {_num(verdict.margin)} ({verdict.margin_share:g} x the gain over the base)",
        f"- smallest difference these seeds and prompts detect (80% power): {_num(verdict.detectable)}",
        f"- confidence that it is best or within the margin of the best: {_num(verdict.confidence)}",
    ]
    lines += [f"- {d}" for d in verdict.details]
    if verdict.commands:
        lines += ["", "What would settle it:", "", "```bash", *verdict.commands, "```"]
    return [*lines, ""]


def _evaluation(winner: Winner) -> list[str]:
    record = winner.chosen.record
    plan, data = record.selection, record.data
    chosen_on = (
        f"{plan.num_prompts} selection prompts ({plan.source or 'the data'}, "
        f"{'disjoint from' if plan.disjoint else 'not disjoint from'} the test prompts)"
        if plan is not None and plan.num_prompts
        else "no selection prompts (the checkpoint and setting were chosen on the test prompts)"
    )
    rec = winner.verdict.recommended
    seeds = (record.hyperparameters or {}).get("seed")
    data_line = (
        f"{data.source or datasets(record.config or {})[0]}: {data.train_examples} training examples"
        f" ({data.format}), {data.eval_prompts} held-out prompts"
        if data is not None
        else datasets(record.config or {})[0]
    )
    return [
        "## Evidence",
        "",
        f"- chosen on: {chosen_on}",
        f"- reported on: {record.eval_prompts or 'n/a'} test prompts",
        f"- seeds: {rec.n_seeds if rec else 1} of the chosen setting; this trial's seed: {seeds}",
        f"- budget: {record.train.steps} training steps in this trial",
        f"- data: {data_line}",
        f"- sweeps: {', '.join(f'`{p}`' for p in winner.paths)} ({len(winner.board.records)} trial records)",
        "",
    ]


def sweep_command(record_paths: Sequence[Path]) -> str | None:
    """The command that ran a sweep, from its ``multirun.yaml`` (Hydra's task and hydra overrides) beside the
    trial directories; None when none is found."""
    import yaml

    for path in record_paths:
        found = path.parent.parent / "multirun.yaml"
        if found.is_file():
            overrides = (yaml.safe_load(found.read_text()) or {}).get("hydra", {}).get("overrides", {})
            extra = [o for o in overrides.get("hydra") or [] if o != "hydra.mode=MULTIRUN"]
            return shlex.join(["python", "-m", "harness", "-m", *(overrides.get("task") or []), *extra])
    return None


def _reproduce(winner: Winner) -> list[str]:
    record = winner.chosen.record
    lines = ["## Reproduce", "", "The exported trial:", "", "```bash"]
    lines += [shlex.join(["python", "-m", "harness", *(record.overrides or [])]), "```", ""]
    sweep = sweep_command([winner.chosen.record_path])
    if sweep:
        lines += ["The sweep it came from:", "", "```bash", sweep, "```", ""]
    board = shlex.join(["python", "-m", "harness.leaderboard", *map(str, winner.paths)])
    lines += ["Its leaderboard and verdict:", "", "```bash", board, "```", ""]
    return lines


def _versions(winner: Winner) -> list[str]:
    versions = winner.chosen.record.versions or {}
    if not versions:
        return []
    rows = [f"| {name} | {version or 'n/a'} |" for name, version in versions.items()]
    return ["## Library versions", "", "| library | version |", "|---|---|", *rows, ""]


def model_card(winner: Winner, merged: bool) -> str:
    """The text of ``README.md`` for ``winner`` (``merged``: the adapter is merged into the base weights)."""
    from huggingface_hub import ModelCard

    body = [
        *_opening(winner, merged),
        *_method(winner),
        *_objective(winner),
        *_verdict(winner),
        *_evaluation(winner),
        *_reproduce(winner),
        *_versions(winner),
    ]
    if base_model(winner.chosen.record.config or {}) == TOY_MODEL:
        body.append(
            "The base model `toyworld` is the harness's toy world model (python -m harness.toyworld), not a "
            "Hub model."
        )
    card = ModelCard(
        f"---\n{card_data(winner, winner.chosen.is_adapter and not merged).to_yaml()}\n---\n\n"
        + "\n".join(body).rstrip()
        + "\n"
    )
    return str(card)


__all__ = ["base_model", "card_data", "datasets", "model_card", "sweep_command"]
