"""MkDocs hook (``hooks:`` in mkdocs.yml): adds the generated reference pages and the repository's example
reports to the site at build time.

The reference pages (hooks, plugin API, methods, evaluators, settings) are written from the code on every
build, never stored, so they cannot drift from it. The committed reports under ``leaderboards/`` and the
example plugin's README are added as they are, so the manual links to real reports. This file is the only
MkDocs-specific part: the page generators (``api_pages``, ``plugin_pages``, ``settings_page``) are plain
functions the docs test calls.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from api_pages import (  # noqa: E402
    API_PAGE,
    HOOKS_PAGE,
    anchor,
    api_names,
    api_page,
    class_members,
    hook_specs,
    hooks_page,
)
from plugin_pages import EVALUATORS_PAGE, METHODS_PAGE, evaluators_page, methods_page  # noqa: E402
from settings_page import SETTINGS_PAGE, settings_page  # noqa: E402

# Repository files published with the site (relative to the repository root; a folder brings all its files).
ARTEFACTS = ["leaderboards", "examples/harness-dpop/README.md"]


def link_targets() -> dict[str, str]:
    """Name -> URL (relative to ``reference/``) of every name that has an entry in the generated reference."""
    import inspect

    import harness.plugin as api

    targets = {name: f"hooks.md#{anchor(name)}" for name, _, _ in hook_specs()}
    for name in api_names():
        targets[name] = f"plugin-api.md#{anchor(name)}"
        value = getattr(api, name)
        if inspect.isclass(value):
            for member, _ in class_members(value):
                targets[f"{name}.{member}"] = f"plugin-api.md#{anchor(f'{name}.{member}')}"
    return targets


def pages(repo: Path = REPO) -> dict[str, str]:
    """The generated pages: path under docs/ -> Markdown."""
    targets = link_targets()
    link = targets.get
    return {
        HOOKS_PAGE: hooks_page(link),
        API_PAGE: api_page(link),
        METHODS_PAGE: methods_page(repo),
        EVALUATORS_PAGE: evaluators_page(),
        SETTINGS_PAGE: settings_page(repo),
    }


def artefacts(repo: Path = REPO) -> dict[str, Path]:
    """The repository files the site publishes: path in the site -> file."""
    out: dict[str, Path] = {}
    for entry in ARTEFACTS:
        path = repo / entry
        for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if file.is_file():
                out[file.relative_to(repo).as_posix()] = file
    return out


def on_files(files, config):  # noqa: ANN001, ANN201 (MkDocs' event signature)
    """MkDocs event: add the generated reference pages and the published repository files."""
    from mkdocs.structure.files import File, InclusionLevel

    for uri, text in pages().items():
        files.append(File.generated(config, uri, content=text))
    for uri, path in artefacts().items():
        file = File.generated(config, uri, abs_src_path=str(path), inclusion=InclusionLevel.NOT_IN_NAV)
        files.append(file)
    return files
