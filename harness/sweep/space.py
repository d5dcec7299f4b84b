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
``tag(log, interval(low, high))`` (log scale).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf

from harness.errors import ConfigError
from harness.records import flatten

METHOD_KEY = "method"
_PREFIX = "method."


def parse_dimension(key: str, spec: Any) -> Any | None:
    """The Optuna distribution of ``key=spec`` in Hydra's sweep syntax; None for a fixed (non-sweep) value.

    Raises ConfigError for syntax Hydra cannot parse or a sweep Optuna cannot search (``shuffle``, an empty
    or reversed interval, ``log`` on a non-positive interval or a stepped range).
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    text = spec if isinstance(spec, str) else ",".join(map(str, spec)) if isinstance(spec, (list, tuple)) else str(spec)
    try:
        value = OverridesParser.create().parse_override(f"{key}={text}").value()
    except HydraException as exc:  # OverrideParseException, or the grammar's own syntax errors
        raise ConfigError(f"Cannot parse the search space of {key}: {text!r} ({str(exc).splitlines()[0]}); use "
                          "choice(a,b), range(start,stop,step), interval(low,high) or tag(log, interval(low,high)).") from None
    return dimension(key, value)


def dimension(key: str, value: Any) -> Any | None:
    """The Optuna distribution of an already parsed override value (see :func:`parse_dimension`)."""
    import optuna.distributions as D
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep

    log = "log" in getattr(value, "tags", set())
    if isinstance(value, ChoiceSweep):
        if value.shuffle:
            raise ConfigError(f"{key}: shuffle(...) has no meaning for Optuna; use choice(...).")
        choices = [_plain(v, key) for v in value.list]
        if not choices:
            raise ConfigError(f"{key}: choice() needs at least one value.")
        return D.CategoricalDistribution(choices)
    if isinstance(value, RangeSweep):
        start, stop, step = value.start, value.stop, value.step if value.step is not None else 1
        if log:
            raise ConfigError(f"{key}: tag(log, ...) cannot apply to range(); use tag(log, interval(low, high)).")
        count = math.ceil((stop - start) / step) if step else 0
        if count <= 0:
            raise ConfigError(f"{key}: range({start}, {stop}, {step}) is empty.")
        last = start + (count - 1) * step
        if all(isinstance(x, int) for x in (start, stop, step)):
            return D.IntDistribution(int(start), int(last), step=int(step))
        return D.FloatDistribution(float(start), float(round(last, 12)), step=float(step))
    if isinstance(value, IntervalSweep):
        low, high = value.start, value.end
        if low is None or high is None or not low < high:
            raise ConfigError(f"{key}: interval({low}, {high}) must have low < high.")
        if log and low <= 0:
            raise ConfigError(f"{key}: tag(log, interval({low}, {high})) needs low > 0.")
        if isinstance(low, int) and isinstance(high, int):
            return D.IntDistribution(low, high, log=log)
        return D.FloatDistribution(float(low), float(high), log=log)
    return None


def _plain(value: Any, key: str) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ConfigError(f"{key}: choice values must be numbers, strings, booleans or null, not {value!r}.")


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

    def sample(self, trial: Any) -> dict[str, Any]:
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
            raise ConfigError("The grid sampler cannot search a conditional space (several methods with their own "
                              "parameters); run one grid per method, or use hydra/sweeper/sampler=tpe.")
        grid: dict[str, list[Any]] = {}
        for name, dist in self.distributions().items():
            if isinstance(dist, D.CategoricalDistribution):
                grid[name] = list(dist.choices)
            elif dist.step is not None and not getattr(dist, "log", False):
                n = int(round((dist.high - dist.low) / dist.step)) + 1
                grid[name] = [dist.low + i * dist.step for i in range(n)]
            else:
                raise ConfigError(f"The grid sampler needs discrete dimensions, but {name} is continuous; use "
                                  "choice(...) or range(...) for it, or another sampler.")
        return grid

    def describe(self) -> list[str]:
        """One line per dimension, for the sweep's opening message."""
        lines = [f"method: choice({', '.join(self.methods)})"] if len(self.methods) > 1 else []
        lines += [f"{k}: {_show(d)}" for k, d in self.shared.items()]
        for m in self.methods:
            lines += [f"{m}: method.{k}: {_show(d)}" for k, d in self.per_method.get(m, {}).items()]
        return lines


def suggest(trial: Any, name: str, dist: Any) -> Any:
    """Suggest ``name`` from ``dist`` on an Optuna trial through its public ``suggest_*`` methods."""
    import optuna.distributions as D

    if isinstance(dist, D.CategoricalDistribution):
        return trial.suggest_categorical(name, list(dist.choices))
    if isinstance(dist, D.IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)


def _show(dist: Any) -> str:
    import optuna.distributions as D

    if isinstance(dist, D.CategoricalDistribution):
        return f"choice({', '.join(map(str, dist.choices))})"
    kind = "int " if isinstance(dist, D.IntDistribution) else ""
    scale = "log " if dist.log else ""
    step = f" step {dist.step:g}" if dist.step is not None else ""
    return f"{scale}{kind}[{dist.low:g}, {dist.high:g}]{step}"


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
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(overrides))
    cli_dims: dict[str, Any] = {}
    cli_method_dims: dict[str, dict[str, Any]] = {}
    fixed: list[str] = []
    methods: list[str] | None = None
    for o in parsed:
        key = o.key_or_group
        if key == METHOD_KEY:
            value = o.value()
            if o.is_sweep_override():
                dist = dimension(key, value)
                if not hasattr(dist, "choices"):
                    raise ConfigError("method must be swept as a list: method=dpo,simpo (or choice(dpo,simpo)).")
                methods = [str(v) for v in dist.choices]
            else:
                methods = [str(value)]
            continue
        head, _, rest = key.partition(".")
        if o.is_sweep_override() and rest and head in method_configs:
            cli_method_dims.setdefault(head, {})[rest] = o.value()  # simpo.gamma=interval(..): SimPO's only
        elif o.is_sweep_override():
            cli_dims[key] = o.value()
        else:
            fixed.append(o.input_line)
    all_params = {**flatten_params(params), **cli_dims}
    if METHOD_KEY in all_params:
        if methods is not None:
            raise ConfigError("method is given both on the command line and in hydra.sweeper.params; keep one.")
        dist = _dim(METHOD_KEY, all_params.pop(METHOD_KEY))
        if not hasattr(dist, "choices"):
            raise ConfigError("hydra.sweeper.params.method must be a list of methods: choice(dpo,simpo).")
        methods = [str(v) for v in dist.choices]
    methods = methods or [default_method]
    unknown = [m for m in methods if m not in method_configs]
    if unknown:
        from harness.errors import UnknownNameError

        raise UnknownNameError("method", unknown[0], method_configs)
    fixed_keys = {line.split("=", 1)[0].lstrip("+~") for line in fixed}

    space = SearchSpace(methods=list(dict.fromkeys(methods)), fixed=fixed)
    per_method_user = {m: flatten_params(v) for m, v in (flatten_params_top(method_params)).items()}
    stray = [m for m in per_method_user if m not in method_configs]
    if stray:
        from harness.errors import UnknownNameError

        raise UnknownNameError("method in hydra.sweeper.method_params", stray[0], method_configs)
    for m, dims in cli_method_dims.items():
        if m not in space.methods:
            raise ConfigError(f"{m}.{next(iter(dims))} is given but method {m} is not searched; add it: "
                              f"method={','.join([*space.methods, m])}.")
        per_method_user.setdefault(m, {}).update(dims)
    for m in space.methods:
        dims: dict[str, Any] = {}
        if use_suggested:
            dims.update({k: parse_dimension(_PREFIX + k, v) for k, v in suggested.get(m, {}).items()})
        for key, spec in all_params.items():
            if key.startswith(_PREFIX) and _has_key(method_configs[m], key[len(_PREFIX):]):
                dims[key[len(_PREFIX):]] = _dim(key, spec)
        for key, spec in per_method_user.get(m, {}).items():
            key = key[len(_PREFIX):] if key.startswith(_PREFIX) else key
            if not _has_key(method_configs[m], key):
                raise ConfigError(f"hydra.sweeper.method_params.{m}.{key}: method {m} has no option {key}; "
                                  f"its options are {', '.join(sorted(method_configs[m]))}.")
            dims[key] = _dim(_PREFIX + key, spec)
        space.per_method[m] = {k: d for k, d in dims.items() if d is not None and _PREFIX + k not in fixed_keys}
    for key, spec in all_params.items():
        if key.startswith(_PREFIX):
            if not any(_has_key(method_configs[m], key[len(_PREFIX):]) for m in space.methods):
                raise ConfigError(f"None of the searched methods ({', '.join(space.methods)}) has the option {key}; "
                                  "check its spelling (python -m harness --cfg job shows the config).")
            continue
        dist = _dim(key, spec)
        if dist is not None and key not in fixed_keys:
            space.shared[key] = dist
    if not space.shared and not any(space.per_method.values()) and len(space.methods) == 1:
        raise ConfigError(f"The search space is empty: method {space.methods[0]} suggests no parameters and none "
                          "are given; sweep some, e.g. method.beta='tag(log, interval(0.01, 0.5))'.")
    return space


def _dim(key: str, spec: Any) -> Any | None:
    """A dimension from config text or from an override value the command line already parsed."""
    return parse_dimension(key, spec) if isinstance(spec, (str, int, float, list, tuple)) else dimension(key, spec)


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


def method_default_configs(names: Iterable[str], pm: Any) -> dict[str, dict[str, Any]]:
    """Each registered method's default config (what ``method=<name>`` composes), for checking which keys a
    method has."""
    from harness.config.store import method_config

    return {name: method_config(pm.methods[name]) for name in names}
