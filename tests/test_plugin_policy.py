"""Plugins that fail alone and say who they are (issue 28): the evaluator loop's failure policy, per-trial
observers under the lifecycle hooks' policy, and, on the tiny world, a trial with a raising evaluator, a NaN
metric and an observing plugin run twice in one process."""

from __future__ import annotations

import ast
import dataclasses
import json
import math
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.errors import TrialPruned
from harness.evaluation.context import evaluate_checkpoint
from harness.evaluation.refcache import RefCache
from harness.plugin import EvaluatorSpec, Metric, TrialObserver, hookimpl
from harness.plugin.manager import HarnessPluginManager, reset_plugin_manager
from harness.trial.lifecycle import TrialHooks
from tests.conftest import REPO
from tests.helpers import checkpoint, make_record


def _spec(name: str, evaluate, *metrics: Metric, plugin: str = "") -> EvaluatorSpec:
    return dataclasses.replace(
        EvaluatorSpec(name, evaluate, metrics=metrics), plugin=plugin or f"{name}_plugin"
    )


def _context(step: int = 4, label: str = "") -> SimpleNamespace:
    """What the evaluator loop reads of an EvalContext when no evaluator samples anything."""
    return SimpleNamespace(
        step=step,
        is_reference=step == 0,
        label=label,
        evaluator=None,
        sample_scores={},
        withheld={},
        refcache=RefCache("in-memory"),
    )


def _boom(ctx):
    raise ValueError("no column 'score'\nsecond line")


@pytest.mark.unit
def test_an_evaluator_that_raises_loses_only_its_own_metrics_named_in_one_warning_line(capsys):
    evaluators = [
        _spec("first", lambda ctx: {"a": 1.0}),
        _spec("boom", _boom),
        _spec("last", lambda ctx: {"b": 2.0}),
    ]
    result = evaluate_checkpoint(evaluators, _context(), 0)
    assert result.metrics == {"a": 1.0, "b": 2.0}
    assert set(result.seconds) == {"first", "boom", "last"}
    assert result.errors == [
        {"evaluator": "boom", "plugin": "boom_plugin", "type": "ValueError", "message": "no column 'score'"}
    ]
    entry = checkpoint(4)
    result.note_problems(entry)
    assert entry.evaluator_errors == result.errors and entry.nonfinite_metrics is None
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(
        "harness: warning: evaluator 'boom' of plugin 'boom_plugin' "
        "failed at step 4: ValueError: no column 'score' ("
    )
    assert "its metrics are missing there; recorded on the trial" in line


@pytest.mark.unit
def test_a_key_another_evaluator_returned_is_attributed_and_not_overwritten(capsys):
    evaluators = [
        _spec("text_stats", lambda ctx: {"length": 7.0}),
        _spec("mine", lambda ctx: {"length": 99.0}),
    ]
    result = evaluate_checkpoint(evaluators, _context(0, "selection: "), 0)
    assert result.metrics == {"length": 7.0}  # the first evaluator's value stays
    [error] = result.errors
    assert (error["evaluator"], error["plugin"], error["type"]) == ("mine", "mine_plugin", "DuplicateMetric")
    assert (
        "'length' was already returned by evaluator 'text_stats' of plugin 'text_stats_plugin'"
        in error["message"]
    )
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(
        "harness: warning: evaluator 'mine' of plugin 'mine_plugin' at step 0 (reference), "
    )
    assert "selection prompts: metric 'length' was already returned" in line


@pytest.mark.unit
def test_a_nan_metric_warns_and_is_recorded_as_such_but_a_nan_standard_error_is_silent(capsys):
    evaluators = [
        _spec("odd", lambda ctx: {"odd": float("nan"), "big": float("inf"), "fine": 1.0}, Metric("odd")),
        _spec("mean", lambda ctx: {"m": 0.5, "m_se": float("nan")}, Metric("m", se="m_se"), Metric("m_se")),
    ]
    result = evaluate_checkpoint(evaluators, _context(), 0)
    assert math.isnan(result.metrics["odd"]) and result.metrics["big"] == math.inf
    assert math.isnan(result.metrics["m_se"]) and result.metrics["fine"] == 1.0
    assert result.nonfinite == {"odd": "odd", "big": "odd"} and not result.errors
    entry = checkpoint(4)
    result.note_problems(entry)
    assert entry.nonfinite_metrics == {"odd": "odd", "big": "odd"} and entry.evaluator_errors is None
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "harness: warning: evaluator 'odd' of plugin 'odd_plugin' returned nan for metric 'odd' at step 4 "
        "(kept as nan; listed in the checkpoint's nonfinite_metrics)",
        "harness: warning: evaluator 'odd' of plugin 'odd_plugin' returned inf for metric 'big' at step 4 "
        "(kept as inf; listed in the checkpoint's nonfinite_metrics)",
    ]


# --- per-trial observers ------------------------------------------------------------------------------------


class Counter(TrialObserver):
    """Counts what one trial shows it (and takes only the parameters it uses)."""

    def __init__(self, trial_dir):
        self.trial_dir, self.steps, self.ended = trial_dir, [], []

    def reference_evaluated(self, metrics):
        self.steps.append(0)

    def checkpoint_evaluated(self, step):
        self.steps.append(step)

    def trial_end(self, record):
        self.ended.append(record.status)


class Observing:
    made: list[Counter] = []  # the test's window on what the plugin built

    @staticmethod
    @hookimpl
    def harness_trial_observer(trial_dir):
        counter = Counter(trial_dir)
        Observing.made.append(counter)
        return counter


class Pruning:
    @staticmethod
    @hookimpl(tryfirst=True)  # its observer comes first, yet the others still see the checkpoint
    def harness_trial_observer():
        class Pruner(TrialObserver):
            def checkpoint_evaluated(self, step):
                if step == 2:
                    raise TrialPruned("pruned at step 2")

        return Pruner()


class Broken:
    @staticmethod
    @hookimpl
    def harness_trial_observer():
        class Failing(TrialObserver):
            def checkpoint_evaluated(self, step, metrics, selection, planned_steps):
                raise RuntimeError(f"tracker down at {step}")

        return Failing()


class Legacy:
    seen: list[int] = []

    @staticmethod
    @hookimpl
    def harness_checkpoint_evaluated(step):
        Legacy.seen.append(step)


def _manager(*plugins) -> HarnessPluginManager:
    pm = HarnessPluginManager()
    for plugin in plugins:
        pm.register_plugin(plugin, plugin.__name__.lower(), "test")
    return pm


@pytest.mark.unit
def test_observers_belong_to_one_trial_and_follow_the_hooks_failure_policy(capsys):
    Observing.made, Legacy.seen = [], []
    pm = _manager(Observing, Pruning, Broken, Legacy)
    records = []
    for trial in ("a", "b"):  # two trials in one process
        record = make_record(status="running")
        hooks = TrialHooks(pm, record)
        hooks.start(cfg=None, trial_dir=trial)
        hooks.reference_evaluated(cfg=None, metrics={}, selection=None)
        hooks.checkpoint_evaluated(cfg=None, step=1, metrics={}, selection=None, planned_steps=2)
        with pytest.raises(TrialPruned, match="pruned at step 2"):
            hooks.checkpoint_evaluated(cfg=None, step=2, metrics={}, selection=None, planned_steps=2)
        record.status = "pruned"
        hooks.end(record)
        assert hooks.observers == []
        records.append(record)
    a, b = Observing.made
    assert (a.trial_dir, b.trial_dir) == ("a", "b")
    assert a.steps == b.steps == [0, 1, 2]  # the pruner came first; the others still saw step 2
    assert a.ended == b.ended == ["pruned"]
    assert Legacy.seen == [1, 2, 1, 2]  # the existing hooks still run
    assert records[0].plugin_errors == [
        {
            "plugin": "broken",
            "hook": "TrialObserver.checkpoint_evaluated",
            "type": "RuntimeError",
            "message": m,
        }
        for m in ("tracker down at 1", "tracker down at 2")
    ]
    assert "harness: warning: plugin 'broken' failed in TrialObserver.checkpoint_evaluated: RuntimeError" in (
        capsys.readouterr().err
    )


def _global_state(path: Path) -> list[str]:
    """Module-level mutable state of a module: ``global`` statements, and lower-case names bound at module
    level to a list, dict or set (or an instance built there)."""
    tree = ast.parse(path.read_text())
    found = [f"global {', '.join(n.names)}" for n in ast.walk(tree) if isinstance(n, ast.Global)]
    for node in tree.body:
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, ast.AnnAssign)
            else []
        )
        value = getattr(node, "value", None)
        mutable = isinstance(value, (ast.List, ast.Dict, ast.Set, ast.Call))
        for target in targets:
            if isinstance(target, ast.Name) and not target.id.isupper() and mutable:
                found.append(target.id)
    return found


@pytest.mark.unit
@pytest.mark.parametrize("path", ["harness/sweep/pruning.py", "plugins/tracking/trackers.py"])
def test_the_pruner_and_the_trackers_keep_no_module_state(path):
    assert _global_state(REPO / path) == []
    assert (
        _global_state(REPO / "tests" / "fixtures" / "nan_plugin.py") == []
    )  # the checker reads real modules
    assert _global_state(Path(__file__)) == []


# --- on the tiny world: a trial whose plugins misbehave -----------------------------------------------------

PROBE = '''
"""An evaluator that raises, one that returns NaN and a key text_stats returns, and an observer of every
trial."""

from harness.plugin import EvaluatorSpec, Metric, TrialObserver, hookimpl

MADE = []  # the test's window on the observers this plugin built


def boom(ctx):
    raise KeyError("no column 'score'")


def odd(ctx):
    return {"odd_value": float("nan"), "odd_big": float("inf"), "odd_ok": 1.0, "length": 99.0}


class Probe(TrialObserver):
    def __init__(self, trial_dir):
        self.trial_dir, self.steps, self.ended = trial_dir, [], []

    def reference_evaluated(self, metrics):
        self.steps.append(0)

    def checkpoint_evaluated(self, step):
        self.steps.append(step)

    def trial_end(self, record):
        self.ended.append(record.status)


@hookimpl
def harness_evaluators_register():
    return [
        EvaluatorSpec("boom", boom, metrics=[Metric("boom_value", direction="maximize")]),
        EvaluatorSpec(
            "odd", odd, metrics=[Metric("odd_value", headline=True), Metric("odd_big"), Metric("odd_ok")]
        ),
    ]


@hookimpl
def harness_trial_observer(trial_dir):
    MADE.append(Probe(trial_dir))
    return MADE[-1]
'''


@pytest.fixture
def probe(tmp_path, monkeypatch):
    (tmp_path / "policy_probe.py").write_text(textwrap.dedent(PROBE))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(REPO / "tests" / "fixtures"))
    monkeypatch.delitem(sys.modules, "policy_probe", raising=False)
    reset_plugin_manager()
    yield
    reset_plugin_manager()


def _trial(tiny_world, directory: Path, *overrides: str) -> dict:
    """A trial of the fault plugin's cheap own-loop method (4 steps, checkpoints at 2 and 4)
    with the probe."""
    from harness.trial import run_trial
    from tests.helpers import compose

    plugins = ["plugins=[fault_plugin,policy_probe]", "method=fault_demo", "train.num_checkpoints=2"]
    return run_trial(compose(tiny_world, [*plugins, *overrides]), directory)


def test_a_raising_evaluator_leaves_the_trial_completed_with_the_failure_named(
    tiny_world, tmp_path, probe, capsys
):
    import policy_probe

    from harness.leaderboard.board import load_leaderboard
    from harness.leaderboard.reports import write_reports

    record = _trial(
        tiny_world,
        tmp_path / "one",
        "eval.evaluators=[gold_reward,text_stats,boom,odd,kl]",
        "leaderboard.objective=boom_value",  # so that boom runs on the selection prompts too (with kl)
    )
    assert record["status"] == "completed", record["error"]
    entries = [record["reference"], *record["checkpoints"]]
    assert [c["step"] for c in record["checkpoints"]] == [2, 4]
    boom = {
        "evaluator": "boom",
        "plugin": "policy_probe",
        "type": "KeyError",
        "message": "\"no column 'score'\"",
    }
    for entry in entries:
        metrics = entry["metrics"]
        assert {"gold_reward", "kl", "length", "odd_ok"} <= set(metrics)  # the other evaluators' metrics
        assert "boom_value" not in metrics and metrics["length"] != 99.0  # text_stats' length stays
        assert (
            entry["evaluator_errors"][0] == boom and entry["evaluator_errors"][1]["type"] == "DuplicateMetric"
        )
        assert math.isnan(metrics["odd_value"]) and metrics["odd_big"] == math.inf
        assert entry["nonfinite_metrics"] == {"odd_value": "odd", "odd_big": "odd"}
        selection = entry["selection"]  # on the selection prompts: boom (the objective's evaluator) and kl
        assert "kl" in selection["metrics"] and selection["evaluator_errors"] == [boom]
    errors = [e for e in record["plugin_errors"] if e["evaluator"] == "boom"]
    assert [(e["step"], e["prompts"]) for e in errors] == [
        (s, p) for s in (0, 2, 4) for p in ("test", "selection")
    ]
    assert errors[0] == {"plugin": "policy_probe", "hook": "evaluate", "step": 0, "prompts": "test", **boom}
    stored = json.loads((tmp_path / "one" / "trial.json").read_text())
    assert stored["plugin_errors"] == record["plugin_errors"] and math.isnan(
        stored["checkpoints"][-1]["metrics"]["odd_value"]
    )
    err = capsys.readouterr().err
    assert "harness: warning: evaluator 'boom' of plugin 'policy_probe' failed at step 4: KeyError" in err
    assert "returned nan for metric 'odd_value' at step 4" in err
    board = load_leaderboard(
        [tmp_path / "one"]
    )  # the leaderboard reads the NaN, the inf and the missing metric
    assert board.checkpoints["odd_value"].isna().all() and (board.checkpoints["odd_ok"] == 1.0).all()
    assert (board.checkpoints["odd_big"] == math.inf).all() and board.trials.loc[0, "status"] == "completed"
    written = {p.name for p in write_reports(board, tmp_path / "board")}
    assert {"leaderboard.md", "leaderboard.html", "checkpoints.csv"} <= written
    [probe_one] = policy_probe.MADE
    assert probe_one.steps == [0, 2, 4] and probe_one.ended == ["completed"]


def test_two_trials_in_one_process_share_no_observer_state(tiny_world, tmp_path, probe):
    import policy_probe

    quick = ("eval.evaluators=[gold_reward]", "eval.selection.num_prompts=0")
    first, second = (_trial(tiny_world, tmp_path / name, *quick) for name in "ab")
    assert first["status"] == second["status"] == "completed"
    a, b = policy_probe.MADE
    assert a is not b and (a.trial_dir, b.trial_dir) == (tmp_path / "a", tmp_path / "b")
    assert a.steps == b.steps == [0, 2, 4] and a.ended == b.ended == ["completed"]
