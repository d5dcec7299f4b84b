"""The methods page and the evaluators page of the reference, generated from what the plugins register.

Each registered method (``get_plugin_manager().methods``) is listed with its hyperparameters, its defaults for
real models, its profiles and its suggested search space; each evaluator with its metrics and its options. A
plugin installed where the site is built (a third-party one too) is listed the same way as the built-in ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from conf_comments import read_conf

METHODS_PAGE = "reference/methods.md"
EVALUATORS_PAGE = "reference/evaluators.md"


def value(v: Any) -> str:
    """A config value as a code span, in the YAML the command line takes (``null``, ``true``, ``[a, b]``)."""
    if isinstance(v, tuple):
        v = list(v)
    if isinstance(v, (dict, list)):
        text = yaml.safe_dump(v, default_flow_style=True, sort_keys=False, width=10_000).strip()
    elif v is None:
        text = "null"
    elif isinstance(v, bool):
        text = "true" if v else "false"
    else:
        text = str(v)
    return f"`{text}`"


def cell(text: Any) -> str:
    """Text for a Markdown table cell: pipes escaped, lines joined, ``<`` escaped outside code."""
    text = " ".join(str(text).split()).replace("|", r"\|")
    parts = text.split("`")
    return "`".join(p.replace("<", "&lt;") if i % 2 == 0 else p for i, p in enumerate(parts))


def accepts(option: Any) -> str:
    """What values an Option takes, in words: its type, bounds, choices and whether null is allowed."""
    said = []
    if getattr(option, "choices", None):
        said.append("one of " + ", ".join(f"`{c}`" for c in option.choices))
    else:
        types = getattr(option, "types", None) or (
            (type(option.default),) if option.default is not None else ()
        )
        names = {
            bool: "true/false",
            int: "integer",
            float: "number",
            str: "string",
            list: "list",
            dict: "mapping",
        }
        kinds = sorted({names.get(t, t.__name__) for t in types})
        if "number" in kinds:
            kinds = [k for k in kinds if k != "integer"]
        said.append(" or ".join(kinds) or "any")
    if getattr(option, "bounds", None):
        said.append(f"in `{option.bounds}`")
    if getattr(option, "nullable", False) or (
        option.default is None and getattr(option, "types", None) is None
    ):
        said.append("or `null`")
    return " ".join(said)


def _flat(mapping: Any, prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for key, v in dict(mapping).items():
        if isinstance(v, dict) and v:
            out += _flat(v, f"{prefix}{key}.")
        else:
            out.append((f"{prefix}{key}", v))
    return out


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    if not rows:
        return []
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows] + [""]


def _models(spec: Any) -> str:
    held = spec.models_in_memory
    return str(held) if isinstance(held, int) else f"depends on the trial's config (`{held.__name__}`)"


def common_knobs_table(repo: Path) -> list[str]:
    """The knobs every method has (``conf/method/base.yaml`` with their checks from ``COMMON_KNOBS``)."""
    from harness.plugin.settings import COMMON_KNOBS

    _, keys = read_conf(repo / "conf" / "method" / "base.yaml", "method")
    rows = []
    for key in keys:
        name = key.key.split(".", 1)[1]
        check = COMMON_KNOBS.get(name)
        rows.append([f"`{key.key}`", value(key.default), accepts(check) if check else "", key.help])
    return _table(["key", "default (real models)", "accepts", "meaning"], rows)


def method_section(name: str, spec: Any) -> list[str]:
    """One method's entry: what it is, its knobs, its defaults and profiles, its search space, its loss."""
    out = [f"## `{name}`", "", (spec.description or "(no description)") + "", ""]
    facts = [
        f"registered by {spec.origin}",
        f"trainer `{getattr(spec.trainer, '__name__', spec.trainer)}`"
        if spec.trainer
        else "its own training loop",
        f"data: `{spec.data_kind}`",
        f"produces a `{spec.produces}`",
        f"models in memory: {_models(spec)}",
        "learning-rate range for real models (about 1e9 "
        f"parameters): {spec.lr_range[0]:g} to {spec.lr_range[1]:g}",
    ]
    out += [f"- {f}" for f in facts] + [""]
    rows = [
        [
            f"`method.{h.name}`",
            value(h.default),
            accepts(h),
            f"`{h.field}`" if h.field else "",
            h.paper_name or "",
            h.help,
        ]
        for h in spec.hyperparameters
    ]
    if rows:
        out += ["**Hyperparameters**", ""]
        out += _table(["key", "default", "accepts", "trainer field", "paper name", "meaning"], rows)
    if spec.defaults:
        out += ["**Defaults for real models**", ""]
        out += _table(["key", "value"], [[f"`method.{k}`", value(v)] for k, v in _flat(spec.defaults)])
    for profile_name, profile in dict(spec.profiles).items():
        out += [
            f"**Profile `{profile_name}`** (replaces the defaults when `model.profile={profile_name}`)",
            "",
        ]
        out += _table(["key", "value"], [[f"`method.{k}`", value(v)] for k, v in _flat(profile.defaults)])
        if profile.search_space:
            space = ", ".join(f"`{k}`: `{v}`" for k, v in dict(profile.search_space).items())
            out += [f"Its search ranges: {cell(space)}", ""]
    if spec.search_space:
        out += ["**Suggested search space** (Optuna sweeps)", ""]
        out += _table(
            ["key", "space"], [[f"`method.{k}`", f"`{v}`"] for k, v in dict(spec.search_space).items()]
        )
    if getattr(spec, "loss_notes", ""):
        out += ["**Loss**: " + cell(spec.loss_notes), ""]
    return out


def methods_page(repo: Path) -> str:
    """The Markdown of the methods reference page."""
    from harness.plugin.manager import get_plugin_manager

    methods = get_plugin_manager().methods
    out = [
        "# Methods",
        "",
        "Every method registered where this site was built, generated from its plugin's "
        "`MethodSpec`. `method=<name>` composes the common knobs below, then the method's "
        "hyperparameters and defaults, then (when `model.profile` names one) its profile; see a "
        "trial's full config with `python -m harness method=<name> --cfg job`. Any field of the "
        "method's trainer config can be set under `method.trl.*`.",
        "",
        "## Common knobs",
        "",
    ]
    out += common_knobs_table(repo)
    for name, spec in methods.items():
        out += method_section(name, spec)
    return "\n".join(out)


def evaluator_section(name: str, spec: Any) -> list[str]:
    """One evaluator's entry: what it is, its metrics and its options."""
    out = [f"## `{name}`", "", spec.description or "(no description)", ""]
    out += [f"- registered by {spec.origin}", f"- evaluates a `{spec.applies_to}`", ""]
    rows = [
        [
            f"`{m.name}`",
            f"`{m.label}`",
            m.direction or "",
            "yes" if m.headline else "",
            f"`{m.se}`" if m.se else "",
            "" if m.objective_priority is None else str(m.objective_priority),
            m.help,
        ]
        for m in spec.metrics
    ]
    if rows:
        out += ["**Metrics**", ""]
        header = ["metric", "column", "better", "headline", "standard error", "auto priority", "meaning"]
        out += _table(header, rows)
    rows = [[f"`eval.{name}.{o.name}`", value(o.default), accepts(o), o.help] for o in spec.options]
    if rows:
        out += ["**Options**", ""]
        out += _table(["key", "default", "accepts", "meaning"], rows)
    return out


def evaluators_page() -> str:
    """The Markdown of the evaluators reference page."""
    from harness.plugin.manager import get_plugin_manager

    out = [
        "# Evaluators",
        "",
        "Every evaluator registered where this site was built, generated from its plugin's `EvaluatorSpec`. "
        "`eval.evaluators` lists those that run (`eval.extra` adds to the list); an evaluator's options are "
        "`eval.<evaluator>.<option>`. A metric with a direction may be the leaderboard's objective "
        "(`leaderboard.objective`) or an Optuna objective; with `auto`, the metric with the lowest *auto "
        "priority* among those the checkpoints have is the objective. *Headline* metrics are columns of the "
        "ranked tables; every metric is in `checkpoints.csv`.",
        "",
    ]
    for name, spec in get_plugin_manager().evaluators.items():
        out += evaluator_section(name, spec)
    return "\n".join(out)
