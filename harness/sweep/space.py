"""The search space of an Optuna sweep, written in Hydra's sweeper vocabulary.

Dimensions come from three places, later ones overriding earlier ones:

1. each searched method's suggested space (``MethodSpec.search_space``, keys relative to ``method``);
2. the sweeper config: ``params`` (full config keys, for every trial) and ``method_params`` (per method);
3. sweep overrides on the command line: ``method.<key>=...`` for every searched method that has the key
   (``method.learning_rate='tag(log, interval(1e-5, 1e-3))'``), ``<method>.<key>=...`` for one method only
   (``simpo.gamma='interval(0.5, 2.0)'``, ``dpo.beta=0.05,0.1``).

A fixed override on the command line (``method.beta=0.1``) removes that dimension. ``method`` itself is a
categorical dimension when several methods are searched (``method=dpo,simpo``); each method then brings its
own conditional dimensions, named ``<method>.<key>`` (``simpo.gamma``) so that the sampler models every
method's parameters separately. A ``method.*`` dimension applies to each searched method whose config has
that key (``method.trl.*`` keys apply to all).

Syntax: ``choice(a, b)`` or ``a,b`` (categorical), ``range(start, stop, step)`` (stepped, stop excluded),
``interval(low, high)`` (float; int when both ends are ints, e.g. ``int(interval(1, 4))``) and
``tag(log, interval(low, high))`` (log scale), parsed by :mod:`harness.sweep.syntax`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from harness.errors import ConfigError, UnknownNameError
from harness.records import flatten
from harness.sweep.syntax import dimension, parse_dimension, show, suggest

if TYPE_CHECKING:
    import optuna

    from harness.plugin.manager import HarnessPluginManager

METHOD_KEY = "method"
_PREFIX = "method."


def flatten_params(params: Mapping[str, Any] | DictConfig | None, prefix: str = "") -> dict[str, Any]:
    """``{"method": {"beta": "interval(..)"}}`` or ``{"method.beta": ...}`` -> ``{"method.beta": ...}``."""
    if params is None:
        return {}
    if isinstance(params, DictConfig):
        params = OmegaConf.to_container(params, resolve=True)  # type: ignore[assignment]
    return flatten(dict(params), prefix)  # type: ignore[arg-type]


@dataclass
class SearchSpace:
    """Dimensions shared by every trial, the searched methods, and each method's own dimensions.

    ``shared`` maps config keys to distributions; ``per_method[m]`` maps keys relative to ``method`` to
    distributions. ``fixed`` holds the command line's non-sweep overrides, passed to every trial.
    """

    methods: list[str]
    shared: dict[str, Any] = field(default_factory=dict)
    per_method: dict[str, dict[str, Any]] = field(default_factory=dict)
    fixed: list[str] = field(default_factory=list)

    @property
    def conditional(self) -> bool:
        """Whether the dimensions depend on the method (several methods, each with its own parameters)."""
        return len(self.methods) > 1 and any(self.per_method.values())

    def param_name(self, method: str, key: str) -> str:
        """The Optuna parameter name of ``method.<key>`` for ``method`` (``dpo.beta``)."""
        return f"{method}.{key}"

    def distributions(self, method: str | None = None) -> dict[str, Any]:
        """Every Optuna parameter of a trial of ``method`` (all methods' when None) by name."""
        import optuna.distributions as D

        out: dict[str, Any] = {}
        if len(self.methods) > 1:
            out[METHOD_KEY] = D.CategoricalDistribution(self.methods)
        out.update(self.shared)
        for m in [method] if method else self.methods:
            out.update({self.param_name(m, k): d for k, d in self.per_method.get(m, {}).items()})
        return out

    def sample(self, trial: optuna.trial.Trial) -> dict[str, Any]:
        """Draw one trial's values through Optuna's public suggest API; returns ``{config key: value}``, the
        method included.

        ``method`` is drawn first, then that method's own dimensions (define-by-run, so samplers see the
        conditional structure)."""
        method = self.methods[0]
        if len(self.methods) > 1:
            method = trial.suggest_categorical(METHOD_KEY, self.methods)
        values: dict[str, Any] = {METHOD_KEY: method}
        for key, dist in self.shared.items():
            values[key] = suggest(trial, key, dist)
        for key, dist in self.per_method.get(method, {}).items():
            values[_PREFIX + key] = suggest(trial, self.param_name(method, key), dist)
        return values

    def grid(self) -> dict[str, list[Any]]:
        """The search space as Optuna's GridSampler wants it (every dimension discrete, none conditional)."""
        import optuna.distributions as D

        if self.conditional:
            raise ConfigError(
                "The grid sampler cannot search a conditional space (several methods with their own "
                "parameters); run one grid per method, or use hydra/sweeper/sampler=tpe."
            )
        grid: dict[str, list[Any]] = {}
        for name, dist in self.distributions().items():
            if isinstance(dist, D.CategoricalDistribution):
                grid[name] = list(dist.choices)
            elif dist.step is not None and not getattr(dist, "log", False):
                n = int(round((dist.high - dist.low) / dist.step)) + 1
                grid[name] = [dist.low + i * dist.step for i in range(n)]
            else:
                raise ConfigError(
                    f"The grid sampler needs discrete dimensions, but {name} is continuous; use "
                    "choice(...) or range(...) for it, or another sampler."
                )
        return grid

    def describe(self) -> list[str]:
        """One line per dimension, for the sweep's opening message."""
        lines = [f"method: choice({', '.join(self.methods)})"] if len(self.methods) > 1 else []
        lines += [f"{k}: {show(d)}" for k, d in self.shared.items()]
        for m in self.methods:
            lines += [f"{m}: method.{k}: {show(d)}" for k, d in self.per_method.get(m, {}).items()]
        return lines


def build_space(
    overrides: Sequence[str],
    params: Mapping[str, Any] | None,
    method_params: Mapping[str, Any] | None,
    method_configs: Mapping[str, Mapping[str, Any]],
    suggested: Mapping[str, Mapping[str, str]],
    default_method: str,
    use_suggested: bool = True,
) -> SearchSpace:
    """The search space of a sweep (see the module docstring).

    ``overrides``: the command line's task overrides; ``params`` / ``method_params``: the sweeper config;
    ``method_configs[m]``: method ``m``'s default config (which keys it has); ``suggested[m]``: its plugin's
    suggested space; ``default_method``: the method when the command line does not choose one.
    """
    cli = _read_command_line(overrides, method_configs)
    all_params = {**flatten_params(params), **cli.dims}
    methods = _searched_methods(cli.methods, all_params, default_method, method_configs)
    fixed_keys = {line.split("=", 1)[0].lstrip("+~") for line in cli.fixed}
    space = SearchSpace(methods=methods, fixed=cli.fixed)
    own = _own_params(method_params, cli.method_dims, space.methods, method_configs)
    for m in space.methods:
        dims = _method_dimensions(
            m, method_configs[m], suggested.get(m, {}) if use_suggested else {}, all_params, own.get(m, {})
        )
        space.per_method[m] = {
            k: d for k, d in dims.items() if d is not None and _PREFIX + k not in fixed_keys
        }
    space.shared = _shared_dimensions(all_params, space.methods, method_configs, fixed_keys)
    if not space.shared and not any(space.per_method.values()) and len(space.methods) == 1:
        raise ConfigError(
            f"The search space is empty: method {space.methods[0]} suggests no parameters and none "
            "are given; sweep some, e.g. method.beta='tag(log, interval(0.01, 0.5))'."
        )
    return space


@dataclass
class _CommandLine:
    """What the command line's overrides give the space: parsed, not yet checked against the methods."""

    methods: list[str] | None = None  # method=dpo,simpo (None: not given)
    dims: dict[str, Any] = field(default_factory=dict)  # sweeps of full config keys
    method_dims: dict[str, dict[str, Any]] = field(default_factory=dict)  # <method>.<key> sweeps, by method
    fixed: list[str] = field(default_factory=list)  # every non-sweep override, as typed


def _read_command_line(overrides: Sequence[str], method_configs: Mapping[str, Any]) -> _CommandLine:
    """Sort the command line's overrides: the searched methods, sweeps (of every method's keys or of one
    method's: ``simpo.gamma=...``) and fixed overrides."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    cli = _CommandLine()
    for o in OverridesParser.create().parse_overrides(list(overrides)):
        key = o.key_or_group
        if key == METHOD_KEY:
            value = o.value()
            if o.is_sweep_override():
                dist = dimension(key, value)
                if not hasattr(dist, "choices"):
                    raise ConfigError(
                        "method must be swept as a list: method=dpo,simpo (or choice(dpo,simpo))."
                    )
                cli.methods = [str(v) for v in dist.choices]
            else:
                cli.methods = [str(value)]
            continue
        head, _, rest = key.partition(".")
        if o.is_sweep_override() and rest and head in method_configs:
            cli.method_dims.setdefault(head, {})[rest] = o.value()  # simpo.gamma=interval(..): SimPO's only
        elif o.is_sweep_override():
            cli.dims[key] = o.value()
        else:
            cli.fixed.append(o.input_line)
    return cli


def _searched_methods(
    given: list[str] | None,
    all_params: dict[str, Any],
    default_method: str,
    method_configs: Mapping[str, Any],
) -> list[str]:
    """The searched methods, each once: from the command line or ``params.method`` (taken out of
    ``all_params``), else the default; each must be registered."""
    methods = given
    if METHOD_KEY in all_params:
        if methods is not None:
            raise ConfigError(
                "method is given both on the command line and in hydra.sweeper.params; keep one."
            )
        dist = _dim(METHOD_KEY, all_params.pop(METHOD_KEY))
        if not hasattr(dist, "choices"):
            raise ConfigError("hydra.sweeper.params.method must be a list of methods: choice(dpo,simpo).")
        methods = [str(v) for v in dist.choices]
    methods = methods or [default_method]
    unknown = [m for m in methods if m not in method_configs]
    if unknown:
        raise UnknownNameError("method", unknown[0], method_configs)
    return list(dict.fromkeys(methods))


def _own_params(
    method_params: Mapping[str, Any] | None,
    cli_method_dims: Mapping[str, dict[str, Any]],
    methods: Sequence[str],
    method_configs: Mapping[str, Any],
) -> dict[str, dict[str, Any]]:
    """Each method's own dimensions as given: ``hydra.sweeper.method_params``, then ``<method>.<key>`` sweeps
    of the command line (for searched methods only)."""
    own = {m: flatten_params(v) for m, v in (flatten_params_top(method_params)).items()}
    stray = [m for m in own if m not in method_configs]
    if stray:
        raise UnknownNameError("method in hydra.sweeper.method_params", stray[0], method_configs)
    for m, dims in cli_method_dims.items():
        if m not in methods:
            raise ConfigError(
                f"{m}.{next(iter(dims))} is given but method {m} is not searched; add it: "
                f"method={','.join([*methods, m])}."
            )
        own.setdefault(m, {}).update(dims)
    return own


def _method_dimensions(
    method: str,
    config: Mapping[str, Any],
    suggested: Mapping[str, str],
    all_params: Mapping[str, Any],
    own: Mapping[str, Any],
) -> dict[str, Any]:
    """Method ``method``'s dimensions, keys relative to ``method`` (None for a fixed value): its ``suggested``
    space, then the ``method.*`` params its ``config`` has, then its ``own``."""
    dims: dict[str, Any] = {k: parse_dimension(_PREFIX + k, v) for k, v in suggested.items()}
    for key, spec in all_params.items():
        if key.startswith(_PREFIX) and _has_key(config, key[len(_PREFIX) :]):
            dims[key[len(_PREFIX) :]] = _dim(key, spec)
    for key, spec in own.items():
        key = key[len(_PREFIX) :] if key.startswith(_PREFIX) else key
        if not _has_key(config, key):
            raise ConfigError(
                f"hydra.sweeper.method_params.{method}.{key}: method {method} has no option {key}; "
                f"its options are {', '.join(sorted(config))}."
            )
        dims[key] = _dim(_PREFIX + key, spec)
    return dims


def _shared_dimensions(
    all_params: Mapping[str, Any],
    methods: Sequence[str],
    method_configs: Mapping[str, Mapping[str, Any]],
    fixed_keys: set[str],
) -> dict[str, Any]:
    """The dimensions of keys outside ``method`` (every trial's); a ``method.*`` key must exist in some
    searched method (those are per-method dimensions)."""
    shared: dict[str, Any] = {}
    for key, spec in all_params.items():
        if key.startswith(_PREFIX):
            if not any(_has_key(method_configs[m], key[len(_PREFIX) :]) for m in methods):
                raise ConfigError(
                    f"None of the searched methods ({', '.join(methods)}) has the option {key}; "
                    "check its spelling (python -m harness --cfg job shows the config)."
                )
            continue
        dist = _dim(key, spec)
        if dist is not None and key not in fixed_keys:
            shared[key] = dist
    return shared


def _dim(key: str, spec: Any) -> Any | None:
    """A dimension from config text or from an override value the command line already parsed."""
    return (
        parse_dimension(key, spec)
        if isinstance(spec, (str, int, float, list, tuple))
        else dimension(key, spec)
    )


def flatten_params_top(params: Mapping[str, Any] | DictConfig | None) -> dict[str, Any]:
    """``method_params`` as ``{method: {...}}`` (plain dicts)."""
    if params is None:
        return {}
    if isinstance(params, DictConfig):
        params = OmegaConf.to_container(params, resolve=True)  # type: ignore[assignment]
    return {str(k): (v or {}) for k, v in params.items()}  # type: ignore[union-attr]


def _has_key(config: Mapping[str, Any], dotted: str) -> bool:
    if dotted.startswith("trl."):
        return True  # method.trl.* is free-form, checked against the method's TRL config class per trial
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


def overrides_for(values: Mapping[str, Any]) -> list[str]:
    """Hydra overrides that set ``values`` (``{"method.beta": 0.1}`` -> ``["method.beta=0.1"]``)."""
    from harness.config.compose import open_free_form

    return open_free_form([f"{key}={_format(value)}" for key, value in values.items()])


def _format(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if text.replace("_", "").replace("-", "").replace(".", "").isalnum():
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def method_default_configs(names: Iterable[str], pm: HarnessPluginManager) -> dict[str, dict[str, Any]]:
    """Each registered method's default config (what ``method=<name>`` composes), for checking which keys a
    method has."""
    from harness.config.store import method_config

    return {name: method_config(pm.methods[name]) for name in names}
