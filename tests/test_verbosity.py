"""``verbose=false`` means quiet (harness/verbosity.py): no library progress bars or warnings on the console
(they go to the trial's log file), and every harness warning is one line, ``harness: warning: ...``, without
Python's source line. Run as a user would: ``python -m harness`` in a subprocess, its output captured."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.verbosity import is_harness_warning
from tests.conftest import run_cli

# What leaks when the libraries are not quiet: TRL's reference-pass bar, other libraries' bars, the source
# line Python prints under a warning ("  warnings.warn(" or "  dataset, report = validate(..."), a raw
# "file.py:123: UserWarning: ..." header, and a library logger's record in Hydra's format.
LEAKS = re.compile(
    r"Computing reference log probs|Map:|Loading checkpoint|Writing model shards|\.py:\d+: \w*Warning|"
    r"^\s+warnings\.warn\(|\]\[(trl|transformers|datasets|peft|accelerate|torch)[\w.]*\]\[WARNING\]",
    re.MULTILINE,
)
HARNESS_BARS = ("train ", "sampling", "selection: ")  # the harness's own progress bars stay


def _quiet(output: str) -> None:
    assert not LEAKS.search(output), LEAKS.search(output).group(0) + "\n" + output[-3000:]
    for line in output.replace("\r", "\n").splitlines():
        if "it/s" in line or "s/it" in line or "|█" in line:
            assert line.strip().startswith(HARNESS_BARS), line


@pytest.mark.unit
def test_a_warning_is_the_harnesss_own_when_its_code_raised_it():
    import sys

    import harness.data.validate  # noqa: F401 (loaded, to find its file)

    validate = sys.modules["harness.data.validate"].__file__  # the package re-exports a function by that name
    assert is_harness_warning(UserWarning, validate)
    assert not is_harness_warning(FutureWarning, validate)  # a deprecation notice is a library's
    assert not is_harness_warning(UserWarning, pytest.__file__)


def test_verbose_false_keeps_library_bars_and_warnings_off_the_console(tiny_world, tmp_path):
    """DPO's reference pass (TRL's bar) and SimPO's trainer (a TRL logger warning): neither reaches the
    console; the warning is in the trial's log file."""
    result = run_cli(
        ["-m", "method=dpo,simpo", *tiny_world, "method.max_steps=2", "sweep_name=quiet"], cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    _quiet(result.stdout + result.stderr)
    logs = "".join(p.read_text() for p in (tmp_path / "multirun" / "quiet").rglob("*.log"))
    assert "[trl." in logs and "[WARNING]" in logs  # routed to the log file, not lost


def test_a_harness_data_warning_is_one_line_without_a_source_line(real_world, tmp_path):
    rows = [json.loads(line) for line in Path(real_world.ultrafeedback_jsonl).read_text().splitlines()]
    rows.append({**rows[0], "rejected": rows[0]["chosen"]})  # a tie: the data check drops it with a warning
    data = tmp_path / "prefs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = run_cli(
        [
            "model=hf",
            f"model.name_or_path={real_world.qwen2}",
            "data=files",
            f"data.path={data}",
            "method=dpo",
            "method.max_steps=2",
            "method.batch_size=4",
            "method.grad_accum=1",
            "train.num_checkpoints=1",
            "eval.num_prompts=4",
            "eval.max_new_tokens=8",
            "eval.evaluators=[kl]",
            "train.num_threads=0",
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    _quiet(result.stdout + result.stderr)
    lines = result.stderr.splitlines()
    tied = [i for i, line in enumerate(lines) if "dropped 1 tied pairs" in line]
    assert tied and all(lines[i].startswith(f"harness: warning: {data}: dropped 1 tied pairs") for i in tied)
    assert all(
        not lines[i + 1].startswith(" ") for i in tied if i + 1 < len(lines)
    )  # no source line under it
    assert "DataWarning" not in result.stderr
