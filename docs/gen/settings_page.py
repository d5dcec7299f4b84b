"""The settings page of the reference: every core setting,
generated from its declaration when the site is built.

The core settings (train, eval, leaderboard, the Optuna sweeper, ...) are declared like plugin options, each
with its default, type, check and meaning, and listed by ``harness.config.declared.core_settings()``; the
racing study's (``hydra/sweeper=race``) by ``harness.config.settings_race.RACE``. The model, data and
toy-world keys, and any key a declaration does not cover, come from the comments of their ``conf/`` files
(every key there has one). Each setting has an anchor named after its dotted key
(``settings.md#eval.selection.num_prompts``), so the rest of the manual links to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conf_comments import ConfKey, flatten, read_conf
from plugin_pages import accepts, cell, value

SETTINGS_PAGE = "reference/settings.md"

# Config files whose keys no declaration covers (the data sources' and the toy world's), listed from their
# comments: (file under conf/, key prefix, section title). Files of one title are merged.
CONF_FILES = [
    ("data/files.yaml", "data", "Data files (`data=files`)"),
    ("data/toy.yaml", "data", "Toy-world data (`data=toy`)"),
    ("toyworld/default.yaml", "toyworld", "Toy world (`toyworld.*`)"),
]


def declared_groups() -> list[Any]:
    """The declared core settings (:func:`harness.config.declared.core_settings`), then the racing study's
    keys added to the Optuna sweeper's (:data:`harness.config.settings_race.RACE`, ``hydra/sweeper=race``)."""
    from harness.config.declared import core_settings
    from harness.config.settings_race import RACE

    return [*core_settings(), RACE]


def _walk(groups: list[Any]) -> list[Any]:
    out = []
    for group in groups:
        out.append(group)
        out.extend(_walk(list(group.groups)))
    return out


def declared_keys(groups: list[Any]) -> list[str]:
    """Every declared setting's dotted key."""
    return [f"{g.key}.{o.name}" if g.key else o.name for g in _walk(groups) for o in g.options]


def _row(key: str, default: Any, meaning: str, accepts_text: str | None = None) -> str:
    cells = [f'<a id="{key}"></a>`{key}`', value(default)]
    cells += [cell(accepts_text)] if accepts_text is not None else []
    return "| " + " | ".join(cells + [cell(meaning)]) + " |"


def _header(with_accepts: bool) -> list[str]:
    if with_accepts:
        return ["| setting | default | accepts | meaning |", "|---|---|---|---|"]
    return ["| setting | default | meaning |", "|---|---|---|"]


def declared_section(groups: list[Any]) -> list[str]:
    """One section per declared group (nested groups too), each a table of its options."""
    out: list[str] = []
    for group in _walk(groups):
        if not group.options:
            continue
        out += [
            f"## `{group.key}`" if group.key else "## Top level",
            "",
            cell(group.help) if group.help else "",
            "",
        ]
        out += _header(with_accepts=True)
        for option in group.options:
            key = f"{group.key}.{option.name}" if group.key else option.name
            out.append(_row(key, option.default, option.help, accepts(option)))
        out.append("")
    return out


def _key_table(keys: list[ConfKey], skip: set[str]) -> list[str]:
    rows = [_row(k.key, k.default, k.help) for k in keys if not k.is_group and k.key not in skip]
    return _header(with_accepts=False) + rows + [""] if rows else []


def conf_section(title: str, intro: str, keys: list[ConfKey], skip: set[str]) -> list[str]:
    """A section listing a config file's keys (those not in ``skip``) from their comments: the file's own
    keys, then one subsection per group of keys."""
    body = _key_table(keys, skip)
    for group in (k for k in flatten(keys) if k.is_group):
        table = _key_table(group.children, skip)
        if table:
            notes = [cell(group.help)] if group.help else []
            notes += [cell(" ".join(group.notes))] if group.notes else []
            body += [f"### `{group.key}`", ""] + [line for n in notes for line in (n, "")] + table
    return [f"## {title}", "", cell(intro), ""] + body if body else []


def _conf_sections(
    repo: Path, files: list[tuple[str, str, str]], skip: set[str]
) -> tuple[list[str], list[str]]:
    """Sections for config files (the files of one title merged, the first file's comment winning); the keys
    they list."""
    out: list[str] = []
    listed: list[str] = []
    for title in dict.fromkeys(t for _, _, t in files):
        intro, keys, seen = "", [], set()
        for relative, prefix, _ in (f for f in files if f[2] == title):
            path = repo / "conf" / relative
            if not path.exists():
                continue
            file_intro, file_keys = read_conf(path, prefix)
            intro = intro or file_intro
            keys += [k for k in file_keys if k.key not in seen]
            seen |= {k.key for k in file_keys}
        out += conf_section(title, intro, keys, skip)
        listed += [k.key for k in flatten(keys) if not k.is_group and k.key not in skip]
    return out, listed


def settings_page(repo: Path) -> str:
    """The Markdown of the settings reference page: the declared settings, then the keys of the config files
    that no declaration covers (the data sources' and the toy world's)."""
    groups = declared_groups()
    out = [
        "# Settings",
        "",
        "Every setting of the harness's own config, generated from its declaration (or, for a key without "
        "one, its config file's comment) when this site was built. Set any of them on the command line "
        "(`key=value`), sweep them with `-m key=a,b`, and see a trial's composed config with `python -m "
        "harness --cfg job`. A method's keys (`method.*`) are listed with each method under "
        "[Methods](methods.md), an evaluator's (`eval.<evaluator>.*`) under [Evaluators](evaluators.md).",
        "",
    ]
    rest, _ = _conf_sections(repo, CONF_FILES, set(declared_keys(groups)))
    return "\n".join(out + declared_section(groups) + rest)


def listed_settings(repo: Path) -> list[str]:
    """Every dotted key the settings page lists (for the docs test)."""
    keys = declared_keys(declared_groups())
    _, rest = _conf_sections(repo, CONF_FILES, set(keys))
    return keys + rest
