"""The manual: its reference covers the code, the site builds strictly,
and every snippet is run or says why not.

The reference pages are generated from the code (docs/gen/); these tests fail when a hook, a public API name,
a method's knob, an evaluator's option or metric, or a setting has no entry, and when
``mkdocs build --strict`` fails. The snippet rule (docs/contributing.md): every fenced shell, console or
Python block of ``docs/`` and ``README.md`` is run here (the default tier, or the slow tier when marked so),
or names an existing test that runs it, or says why it cannot run here. Blocks run in a fresh directory, on
the tiny toy world, beside two fixture sweeps.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, TINY_SPEC
from tests.warm_python import WarmPython

GEN = REPO / "docs" / "gen"
if str(GEN) not in sys.path:
    sys.path.insert(0, str(GEN))

import mkdocs_hooks  # noqa: E402
from api_pages import API_PAGE, HOOKS_PAGE, api_names, hook_specs  # noqa: E402
from conf_comments import flatten, read_conf  # noqa: E402
from doc_snippets import (  # noqa: E402
    Snippet,
    console_commands,
    manual_snippets,
    override_key,
    shell_commands,
)
from plugin_pages import EVALUATORS_PAGE, METHODS_PAGE  # noqa: E402
from settings_page import (  # noqa: E402
    SETTINGS_PAGE,
    declared_groups,
    declared_keys,
    listed_settings,
    settings_page,
)

SNIPPETS = manual_snippets(REPO)
GOVERNED = [s for s in SNIPPETS if s.governed]
# What keeps a documented training command to seconds on the tiny world (for the keys it does not set itself).
SNIPPET_FAST = [
    "method.max_steps=4",
    "train.num_checkpoints=1",
    "eval.num_prompts=8",
    "eval.max_new_tokens=12",
    "eval.selection.num_prompts=8",
    "train.num_threads=0",
]
INSPECT = {"--cfg", "-c", "--help", "-h", "--info", "-i", "--hydra-help"}
RUNNABLE_MODULES = ("harness", "harness.leaderboard", "harness.export", "harness.toyworld", "harness.trial")


# ----------------------------------------------------------------------------------------------------------
# The generated reference and the site.
# ----------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pages() -> dict[str, str]:
    return mkdocs_hooks.pages(REPO)


def entry(page: str, heading: str) -> str:
    """The text under ``heading`` (a whole heading line) up to the next heading of the same or
    a higher level."""
    level = heading.split(" ", 1)[0]
    match = re.search(
        rf"^{re.escape(heading)}$(.*?)(?=^#{{1,{len(level)}}} |\Z)", page, re.MULTILINE | re.DOTALL
    )
    assert match, f"no entry {heading!r}"
    return match[1]


def test_every_hook_has_an_entry_with_its_docstring(pages):
    specs = hook_specs()
    assert {"harness_methods_register", "harness_trial_end"} <= {name for name, _, _ in specs}
    for name, function, _ in specs:
        text = entry(pages[HOOKS_PAGE], f"### `{name}`")
        assert f"def {name}(" in text
        assert (function.__doc__ or "").strip(), f"hook {name} has no docstring"
        assert function.__doc__.strip().splitlines()[0].strip("` ")[:20] in text.replace("`", "")


def test_every_public_api_name_has_an_entry_that_says_what_it_is(pages):
    names = api_names()
    assert {"MethodSpec", "hookimpl", "TrainContext"} <= set(names)
    for name in names:
        text = entry(pages[API_PAGE], f"### `{name}`")
        prose = re.sub(r"```.*?```", "", text, flags=re.DOTALL).replace(
            f"from harness.plugin import {name}", ""
        )
        assert len(prose.split()) >= 5, f"the entry of {name} says nothing: {text!r}"


def test_every_method_knob_and_evaluator_option_and_metric_has_an_entry(pages):
    from harness.plugin.manager import get_plugin_manager

    pm = get_plugin_manager()
    for name, spec in pm.methods.items():
        text = entry(pages[METHODS_PAGE], f"## `{name}`")
        for knob in spec.hyperparameters:
            assert f"`method.{knob.name}`" in text, f"{name}: no entry for method.{knob.name}"
        for key in (*spec.defaults, *(k for p in spec.profiles.values() for k in p.defaults)):
            assert f"`method.{key}" in text, f"{name}: its default {key} is not listed"
    for name, spec in pm.evaluators.items():
        text = entry(pages[EVALUATORS_PAGE], f"## `{name}`")
        for option in spec.options:
            assert f"`eval.{name}.{option.name}`" in text, f"{name}: no entry for eval.{name}.{option.name}"
        for metric in spec.metrics:
            assert f"`{metric.name}`" in text, f"{name}: no entry for its metric {metric.name}"


def test_every_setting_has_an_entry(pages):
    page = pages[SETTINGS_PAGE]
    keys = declared_keys(declared_groups()) + listed_settings(REPO)
    assert {"train.num_checkpoints", "eval.selection.num_prompts", "leaderboard.kl_budget"} <= set(keys)
    missing = [key for key in keys if f'<a id="{key}"></a>' not in page]
    assert not missing, f"settings without an entry: {missing}"


@pytest.mark.unit
def test_a_config_file_is_read_as_keys_with_their_comments(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            # The file's opening comment.
            defaults:
              - x
            seed: 0            # seeds things
            group:             # a group
              a: 1             # the first key, whose comment
                               # goes on here
              # a note on the group
              b: [1, 2]        # a list
            """
        )
    )
    intro, keys = read_conf(path, "top")
    by_key = {k.key: k for k in flatten(keys)}
    assert intro == "The file's opening comment."
    assert by_key["top.seed"].default == 0 and by_key["top.seed"].help == "seeds things"
    assert by_key["top.group.a"].help == "the first key, whose comment goes on here"
    assert by_key["top.group"].notes == ["a note on the group"] and by_key["top.group.b"].default == [1, 2]
    assert "top.defaults" not in by_key


@pytest.mark.unit
def test_declared_core_settings_are_listed_from_their_declarations():
    """The settings page lists ``harness.config.declared.core_settings()``: every declared key with an anchor,
    its default and what it accepts, one section per group."""
    from harness.config.declared import declared

    page = settings_page(REPO)
    for key in declared_keys(declared_groups()):
        assert f'<a id="{key}"></a>`{key}`' in page, key
    assert "## `eval.selection`" in page and "## `hydra.sweeper`" in page
    row = next(line for line in page.splitlines() if line.startswith('| <a id="train.num_checkpoints">'))
    assert str(declared("train.num_checkpoints").default) in row
    assert '<a id="model.lora.r"></a>' in page  # the model keys still come from conf/model/
    assert page.count('<a id="train.num_checkpoints"></a>') == 1  # not listed again from conf/config.yaml


def test_the_site_builds_strictly(tmp_path):
    pytest.importorskip("mkdocs", reason="mkdocs is not installed: pip install '.[docs]'")
    pytest.importorskip("material", reason="mkdocs-material is not installed: pip install '.[docs]'")
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    for page in (HOOKS_PAGE, API_PAGE, METHODS_PAGE, EVALUATORS_PAGE, SETTINGS_PAGE, "index.md"):
        assert (site / page.replace(".md", ".html")).is_file(), page
    assert (site / "leaderboards" / "toy-reference" / "leaderboard.html").is_file()


# ----------------------------------------------------------------------------------------------------------
# The rule itself: checked without running anything.
# ----------------------------------------------------------------------------------------------------------


def _cannot_run(snippet: Snippet) -> list[str]:
    """Why the docs test could not run this block (empty when it can)."""
    if snippet.lang == "console":
        lines = [line for line, _ in console_commands(snippet.text)]
        commands = [c for line in lines for c in shell_commands(line)]
    elif snippet.lang in ("python", "py"):
        return []
    else:
        commands = shell_commands(snippet.text)
    return [
        f"`{' '.join(c.argv)}` is not a `python -m {'|'.join(RUNNABLE_MODULES)}` command"
        for c in commands
        if not c.is_setup and c.module not in RUNNABLE_MODULES
    ]


def _test_source(target: str) -> str | None:
    """The source of ``tests/x.py::test_name`` (or the whole of ``.ci/run``); None when it does not exist."""
    path, _, name = target.partition("::")
    file = REPO / path
    if not file.is_file():
        return None
    text = file.read_text(encoding="utf-8")
    if not name:
        return text
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
            return ast.get_source_segment(text, node)
    return None


def _run_by_problems(snippet: Snippet) -> list[str]:
    source = _test_source(snippet.detail)
    if source is None:
        return [f"run by {snippet.detail!r}: no such test"]
    if "::" not in snippet.detail:  # a script such as .ci/run: each command line verbatim
        return [
            f"{snippet.detail} does not hold `{c.line}`"
            for c in shell_commands(snippet.text)
            if c.line not in source
        ]
    missing = [a for c in shell_commands(snippet.text) for a in [c.module or "", *c.args] if a not in source]
    return [f"{snippet.detail} does not hold {missing}"] if missing else []


@pytest.mark.unit
def test_every_fence_names_its_language():
    bare = [s.where for s in SNIPPETS if not s.lang]
    assert not bare, f"fences without a language (use text for output): {bare}"


@pytest.mark.unit
def test_every_snippet_is_run_or_says_why_not():
    problems = []
    for snippet in GOVERNED:
        if snippet.tier == "bad":
            problems.append(f"{snippet.where}: unknown marker <!-- {snippet.marker} -->")
        elif snippet.tier in ("default", "slow"):
            problems += [f"{snippet.where}: {p}; run it, or mark the block" for p in _cannot_run(snippet)]
        elif snippet.tier == "run-by":
            problems += [f"{snippet.where}: {p}" for p in _run_by_problems(snippet)]
    assert not problems, "\n".join(problems)


@pytest.mark.unit
def test_the_readme_is_a_front_door_whose_links_resolve():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    missing = [link for link in links if "://" not in link and not (REPO / link).exists()]
    assert not missing, f"README links to missing files: {missing}"


# ----------------------------------------------------------------------------------------------------------
# Running the snippets.
# ----------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def fixture_sweeps(tiny_world, tmp_path_factory, warm) -> Path:
    """``multirun/my-sweep`` and ``multirun/other-sweep``: DPO and SimPO on the tiny world, trained once."""
    root = tmp_path_factory.mktemp("docs-sweeps")
    args = ["-m", "method=dpo,simpo", "sweep_name=my-sweep", "eval=fast", *tiny_world, *SNIPPET_FAST]
    result = warm.run("harness", args, root, dict(os.environ), timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    shutil.copytree(root / "multirun" / "my-sweep", root / "multirun" / "other-sweep")
    return root / "multirun"


def _argv(command, world: list[str]) -> list[str]:
    """The command as the test runs it: this interpreter, and the tiny world
    (and its fast settings) appended."""
    module, args = command.module, list(command.args)
    given = {override_key(a) for a in args}
    if module == "harness" and not INSPECT & set(args):
        args += [o for o in [*world, *SNIPPET_FAST] if override_key(o) not in given]
    elif module == "harness.toyworld" and not {"--help", "-h"} & set(args):
        cache = next(o.split("=", 1)[1] for o in world if o.startswith("toyworld.cache_dir="))
        args += ["--cache-dir", cache] + [f"{k}={v}" for k, v in TINY_SPEC.items() if k not in given]
    return [sys.executable, "-m", module, *args]


@pytest.fixture(scope="session")
def warm() -> Iterator[WarmPython]:
    """One warm interpreter for the manual's ``python -m`` commands (:mod:`tests.warm_python`): each command
    is still a process of its own, without paying the libraries' imports again."""
    server = WarmPython(REPO)
    yield server
    server.close()


def _run(
    argv: list[str], cwd: Path, env: dict[str, str], timeout: int, warm: WarmPython
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **env, "NO_MKDOCS_2_WARNING": "1"}
    # A module runs as a child of the warm interpreter, unless it launches trials through a launcher of its
    # own (joblib's worker pool does not start cleanly from a forked child: minutes instead of seconds).
    if argv[1] == "-m" and not any(a.startswith("hydra/launcher=") for a in argv):
        return warm.run(argv[2], argv[3:], cwd, full_env, timeout)
    return subprocess.run(argv, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)


def _workspace(snippet: Snippet, tmp_path: Path, request) -> Path:
    """A fresh directory with the page's file snippets, and the fixture sweeps when the block names one."""
    for other in SNIPPETS:
        if other.path == snippet.path and other.file_path and other is not snippet:
            (tmp_path / other.file_path).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / other.file_path).write_text(other.text, encoding="utf-8")
    if "multirun/" in snippet.text:
        shutil.copytree(request.getfixturevalue("fixture_sweeps"), tmp_path / "multirun")
    return tmp_path


def run_snippet(
    snippet: Snippet, tmp_path: Path, world: list[str], request, timeout: int, warm: WarmPython
) -> None:
    """Run one block as docs/contributing.md says; fail naming the block, the command and its output."""
    cwd = _workspace(snippet, tmp_path, request)
    if snippet.lang in ("python", "py"):
        if snippet.file_path:
            (cwd / snippet.file_path).parent.mkdir(parents=True, exist_ok=True)
            (cwd / snippet.file_path).write_text(snippet.text, encoding="utf-8")
            register = "[f() for n, f in ns.items() if n.startswith('harness_') and n.endswith('_register')]"
            argv = [
                sys.executable,
                "-c",
                f"import runpy; ns = runpy.run_path({snippet.file_path!r}); {register}",
            ]
        else:
            (cwd / "snippet.py").write_text(snippet.text, encoding="utf-8")
            argv = [sys.executable, "snippet.py"]
        result = _run(argv, cwd, {}, timeout, warm)
        assert result.returncode == 0, f"{snippet.where}: {result.stderr[-3000:]}"
        return
    if snippet.lang == "console":
        for line, expected in console_commands(snippet.text):
            (command,) = shell_commands(line)
            result = _run(_argv(command, world), cwd, command.env, timeout, warm)
            output = result.stdout + result.stderr
            missing = [e for e in expected if e.strip() not in output]
            assert not missing, f"{snippet.where}: `{line}` printed\n{output[-3000:]}\nnot {missing}"
        return
    for command in shell_commands(snippet.text):
        if command.is_setup:
            continue
        result = _run(_argv(command, world), cwd, command.env, timeout, warm)
        assert result.returncode == 0, f"{snippet.where}: `{command.line}` exited {result.returncode}:\n" + (
            result.stdout[-1500:] + result.stderr[-3000:]
        )


def _unique(snippets: list[Snippet]) -> list[Snippet]:
    """One of each block (the README and the home page share the two commands)."""
    seen, out = set(), []
    for s in snippets:
        files = tuple(o.text for o in SNIPPETS if o.path == s.path and o.file_path and o is not s)
        if (s.lang, s.text, files) not in seen:
            seen.add((s.lang, s.text, files))
            out.append(s)
    return out


DEFAULT = _unique([s for s in GOVERNED if s.tier == "default"])
SLOW = _unique([s for s in GOVERNED if s.tier == "slow"])


@pytest.mark.parametrize("snippet", DEFAULT, ids=[s.where for s in DEFAULT])
def test_snippet_runs(snippet, tiny_world, tmp_path, request, warm):
    run_snippet(snippet, tmp_path, tiny_world, request, timeout=600, warm=warm)


@pytest.mark.slow
@pytest.mark.parametrize("snippet", SLOW, ids=[s.where for s in SLOW])
def test_slow_snippet_runs(snippet, tiny_world, tmp_path, request, warm):
    run_snippet(snippet, tmp_path, tiny_world, request, timeout=1800, warm=warm)
