"""The hooks page and the plugin API page of the reference, generated from the code when the site is built.

Hooks come from the plugin manager (every hookspec it was given, wherever it is declared), in the order and
under the lifecycle banners of their module's source; API names from ``harness.plugin.__all__``. Nothing is
listed by hand, so a new hook or API name has its entry at the next build, and a removed one loses it.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from md_docstrings import signature, to_markdown

_BANNER = re.compile(r"^# -{10,}\n# (.+?)\n# -{10,}$", re.MULTILINE)
_COMMENT_ABOVE = r"((?:^#[^\n]*\n)+)^{name}\s*[:=]"

HOOKS_PAGE = "reference/hooks.md"
API_PAGE = "reference/plugin-api.md"


def anchor(name: str) -> str:
    """The anchor of a heading ``### `name` `` (MkDocs' toc slug: lower case, dots and spaces dropped)."""
    return re.sub(r"[^\w-]", "", name.lower())


def hook_specs() -> list[tuple[str, Any, dict[str, Any]]]:
    """``(name, function, options)`` of every hookspec the plugin manager knows, in source order."""
    from harness.plugin.manager import get_plugin_manager

    pm = get_plugin_manager()
    specs = []
    for name, caller in sorted(vars(pm.hook).items()):
        spec = getattr(caller, "spec", None)
        if spec is not None:
            specs.append((name, spec.function, dict(spec.opts)))
    return sorted(specs, key=lambda s: (inspect.getsourcefile(s[1]) or "", inspect.getsourcelines(s[1])[1]))


def _banners(function: Any) -> list[tuple[int, str]]:
    source = inspect.getsource(inspect.getmodule(function))
    return [(source[: m.start()].count("\n") + 1, m[1]) for m in _BANNER.finditer(source)]


def _options_line(options: dict[str, Any]) -> str:
    said = []
    if options.get("firstresult"):
        said.append(
            "`firstresult`: the first implementation that returns something other than `None` decides"
        )
    if options.get("historic"):
        said.append("`historic`: a plugin registered later is called with the earlier calls' arguments")
    if options.get("warn_on_impl"):
        said.append(f"implementing it warns: {options['warn_on_impl']}")
    return "; ".join(said) or "every implementation is called; the results are collected in a list"


def hooks_page(link: Any = lambda name: None) -> str:
    """The Markdown of the hooks reference page."""
    out = [
        "# Hooks",
        "",
        "Every hook a plugin can implement, generated from the hookspecs when this site is built (the "
        "docstrings are the contract). Implement one with a function of the same name marked `@hookimpl` "
        "([`harness.plugin.hookimpl`](plugin-api.md#hookimpl)); an implementation may take any subset of "
        "the hook's parameters. How to write a plugin: [Writing a plugin](../how-to/plugins.md).",
        "",
    ]
    last_banner = None
    for name, function, options in hook_specs():
        line = inspect.getsourcelines(function)[1]
        banner = next((text for at, text in reversed(_banners(function)) if at < line), None)
        if banner and banner != last_banner:
            title, _, rest = banner.partition(":")
            out += (
                [f"## {title.strip()}", "", rest.strip()[:1].upper() + rest.strip()[1:], ""]
                if rest
                else [f"## {title.strip()}", ""]
            )
            last_banner = banner
        out += [
            f"### `{name}`",
            "",
            "```python",
            f"def {signature(function, name)}",
            "```",
            "",
            f"*{_options_line(options)}.* Declared in `{function.__module__}`.",
            "",
            to_markdown(inspect.getdoc(function), link),
        ]
    return "\n".join(out)


def _kind(value: Any) -> str:
    if inspect.isclass(value):
        return "error" if issubclass(value, BaseException) else "class"
    return "function" if inspect.isroutine(value) else "other"


def _own_doc(value: Any) -> str | None:
    """The object's own docstring: None for an instance or alias that only has its type's."""
    if inspect.isclass(value) or inspect.isroutine(value) or inspect.ismodule(value):
        return inspect.getdoc(value)
    return None


def _comment_above(name: str) -> str | None:
    """The comment lines right above ``name = ...`` in harness.plugin or one of its modules (for aliases,
    markers and constants, which have no docstring of their own)."""
    import importlib
    import pkgutil

    import harness.plugin as api

    modules = [api] + [
        importlib.import_module(f"{api.__name__}.{m.name}") for m in pkgutil.iter_modules(api.__path__)
    ]
    for module in modules:
        pattern = _COMMENT_ABOVE.format(name=re.escape(name))
        match = re.search(pattern, inspect.getsource(module), re.MULTILINE)
        if match:
            return " ".join(re.sub(r"^#:? ?", "", line).strip() for line in match[1].splitlines())
    return None


def describe(name: str, value: Any, link: Any = lambda name: None) -> str:
    """What the reference says about an API name with no docstring of its own: the comment above its
    assignment, else its type's docstring when the type is not a builtin (a marker); empty when nothing says
    what it is."""
    said = _comment_above(name)
    if said:
        shown = repr(value)
        return f"{said} `{name} = {shown}`" if _kind(value) == "other" and " at 0x" not in shown else said
    if type(value).__module__ == "builtins":
        return ""
    type_doc = inspect.getdoc(type(value)) or ""
    what = f"An instance of `{type(value).__module__}.{type(value).__qualname__}`."
    return f"{what} {to_markdown(type_doc, link)}".strip()


def class_members(cls: type) -> list[tuple[str, Any]]:
    """Public methods and properties defined by ``cls`` itself, in definition order."""
    out = []
    for name, member in vars(cls).items():
        if name.startswith("_"):
            continue
        function = member.fget if isinstance(member, property) else getattr(member, "func", member)
        function = getattr(function, "__func__", function)
        if inspect.isfunction(function):
            out.append((name, member))
    return out


def _member_entry(owner: str, name: str, member: Any, link: Any) -> list[str]:
    function = member.fget if isinstance(member, property) else getattr(member, "func", member)
    function = getattr(function, "__func__", function)
    is_attribute = isinstance(member, property) or type(member).__name__ == "cached_property"
    out = [f"#### `{owner}.{name}`", ""]
    if not is_attribute:
        out += ["```python", f"def {signature(function, name, method=True)}", "```", ""]
    else:
        out += [
            "*An attribute (computed on first use).*"
            if "cached" in type(member).__name__
            else "*An attribute.*",
            "",
        ]
    return out + [to_markdown(inspect.getdoc(function), link) or "(no docstring)", ""]


def api_names() -> list[str]:
    """The names of the public plugin API, ``harness.plugin.__all__``."""
    import harness.plugin as api

    return list(api.__all__)


def api_page(link: Any = lambda name: None) -> str:
    """The Markdown of the plugin API reference page, grouped by kind (classes, errors, functions, other)."""
    import harness.plugin as api

    out = ["# Plugin API", "", to_markdown(api.__doc__, link), ""]
    titles = {"class": "Classes", "error": "Errors", "function": "Functions", "other": "Other names"}
    values = {name: getattr(api, name) for name in api_names()}
    for kind, title in titles.items():
        names = [n for n, v in values.items() if _kind(v) == kind]
        if not names:
            continue
        out += [f"## {title}", ""]
        for name in names:
            out += _api_entry(name, values[name], link)
    return "\n".join(out)


def _api_entry(name: str, value: Any, link: Any) -> list[str]:
    out = [f"### `{name}`", ""]
    home = getattr(value, "__module__", None) if _kind(value) != "other" else None
    sig = signature(value, name) if _kind(value) in ("class", "function") else None
    if _kind(value) == "error":
        bases = ", ".join(b.__name__ for b in value.__bases__)
        sig = f"{name}({bases})"
    if sig:
        prefix = "class " if _kind(value) in ("class", "error") else "def "
        out += ["```python", prefix + sig, "```", ""]
    if home:
        out += [f"`from harness.plugin import {name}` (defined in `{home}`)", ""]
    doc = _own_doc(value)
    out += [to_markdown(doc, link) if doc else describe(name, value, link), ""]
    if _kind(value) == "class":
        members = class_members(value)
        if members:
            for member_name, member in members:
                out += _member_entry(name, member_name, member, link)
    return out
