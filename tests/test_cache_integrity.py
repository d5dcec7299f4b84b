"""Caches verify themselves: a damaged toy world is reported and rebuilt, a damaged or edited
reference-evaluation entry is reported and recomputed, and a truncated weights file of a user's model is one
line naming the file."""

from __future__ import annotations

import dataclasses
import json
import shutil
import warnings
from pathlib import Path

import pytest
import torch

from harness.cache import MANIFEST, file_sha256, verify_manifest
from harness.errors import ModelError, UserError
from harness.evaluation.refcache import RefCache
from harness.toyworld import ToyWorldSpec, build_toy_world
from harness.toyworld import build as build_module
from tests.test_kl import one_thread  # noqa: F401 (autouse: tiny models run fastest on one thread)
from tests.test_refcache import prepared, tiny_samples

# The smallest world that has every file (builds in about a second).
SPEC = ToyWorldSpec(
    hidden_size=16,
    intermediate_size=32,
    num_layers=1,
    num_heads=2,
    pretrain_steps=5,
    pretrain_batch_size=8,
    pretrain_warmup_steps=1,
    num_train_pairs=4,
    num_eval_pairs=4,
    num_eval_prompts=4,
    num_selection_prompts=4,
    num_selection_pairs=4,
    max_new_tokens=8,
    stats_samples_per_prompt=1,
    sample_batch_size=64,
)
WEIGHTS = "model/model.safetensors"
TIMINGS = ("build_seconds", "pretrain_seconds", "sampling_seconds")  # what differs between two builds


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A freshly built world of SPEC (never modified: tests damage copies of it)."""
    return build_toy_world(SPEC, cache_dir=tmp_path_factory.mktemp("pristine"), progress=False).root


@pytest.fixture
def cache(pristine: Path, tmp_path: Path) -> Path:
    """A cache directory holding a copy of the pristine world."""
    shutil.copytree(pristine, tmp_path / "cache" / SPEC.key())
    return tmp_path / "cache"


def fingerprint(root: Path) -> dict[str, object]:
    """What two builds of one spec share: every file's checksum but meta.json's,
    and meta.json but its timings."""
    files = {
        p.relative_to(root).as_posix(): file_sha256(p)
        for p in root.rglob("*")
        if p.is_file() and p.name not in ("meta.json", MANIFEST)
    }
    meta = {k: v for k, v in json.loads((root / "meta.json").read_text()).items() if k not in TIMINGS}
    return {"files": files, "meta": meta}


def rebuilt(cache: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, list[str]]:
    """Load the world from ``cache``; returns its root and the lines the harness printed on stderr (not the
    libraries' progress bars, e.g. save_pretrained's while rebuilding)."""
    root = build_toy_world(SPEC, cache_dir=cache, progress=False).root
    return root, [line for line in capsys.readouterr().err.splitlines() if line.startswith("harness")]


# --- the toy world ------------------------------------------------------------------------------------------


def test_a_built_world_has_a_manifest_of_every_file(pristine: Path) -> None:
    manifest = json.loads((pristine / MANIFEST).read_text())
    listed = set(manifest["files"])
    assert listed == {
        p.relative_to(pristine).as_posix() for p in pristine.rglob("*") if p.is_file() and p.name != MANIFEST
    }
    assert {WEIGHTS, "meta.json", "train_pairs.jsonl", "selection_pairs.jsonl"} <= listed
    assert manifest["files"][WEIGHTS] == {
        "size": (pristine / WEIGHTS).stat().st_size,
        "sha256": file_sha256(pristine / WEIGHTS),
    }
    assert verify_manifest(pristine) is None


def test_truncated_weights_are_reported_and_rebuilt_to_the_same_world(
    cache: Path, pristine: Path, capsys
) -> None:
    root = cache / SPEC.key()
    weights = root / WEIGHTS
    size = weights.stat().st_size
    weights.write_bytes(weights.read_bytes()[: size // 2])
    root_again, lines = rebuilt(cache, capsys)
    assert lines == [
        f"harness: warning: toy world cache {root} is damaged ({WEIGHTS} has {size // 2} bytes, "
        f"{MANIFEST} says {size}); rebuilding it"
    ]
    assert root_again == root and verify_manifest(root) is None
    assert fingerprint(root) == fingerprint(pristine)
    # Rebuilt in place, through a temporary directory: nothing else is left in the cache.
    assert sorted(p.name for p in cache.iterdir()) == sorted([SPEC.key(), f"{SPEC.key()}.lock"])
    # Verified now: the next call neither warns nor builds.
    assert rebuilt(cache, capsys)[1] == []


@pytest.mark.parametrize(
    "damage, expected",
    [
        ("edit_meta", "meta.json does not match its SHA-256 in manifest.json (edited or damaged)"),
        ("truncate_meta", "meta.json has"),
        ("delete", "eval_prompts.jsonl is missing"),
        ("bad_manifest", "manifest.json is unreadable"),
    ],
    ids=["edit_meta", "truncate_meta", "delete", "bad_manifest"],
)
def test_an_edited_truncated_or_missing_file_is_detected(
    cache: Path, capsys, monkeypatch, damage: str, expected: str
) -> None:
    root = cache / SPEC.key()
    meta = root / "meta.json"
    if damage == "edit_meta":  # other valid JSON of the same length
        meta.write_text(meta.read_text().replace('"version": 3', '"version": 4'))
    elif damage == "truncate_meta":
        meta.write_bytes(meta.read_bytes()[:100])
    elif damage == "delete":
        (root / "eval_prompts.jsonl").unlink()
    else:
        (root / MANIFEST).write_text('{"files": ')
    assert expected in (build_module.world_problem(root, SPEC.key()) or "")
    builds: list[Path] = []
    real_build = build_module._build_into
    monkeypatch.setattr(build_module, "_build_into", lambda d, *a: builds.append(d) or real_build(d, *a))
    _, lines = rebuilt(cache, capsys)
    assert len(builds) == 1 and len(lines) == 1
    assert (
        lines[0].startswith(f"harness: warning: toy world cache {root} is damaged (") and expected in lines[0]
    )
    assert build_module.world_problem(root, SPEC.key()) is None


def test_a_healthy_world_built_before_manifests_is_adopted_not_rebuilt(
    cache: Path, pristine: Path, capsys, monkeypatch
) -> None:
    root = cache / SPEC.key()
    (root / MANIFEST).unlink()
    monkeypatch.setattr(
        build_module, "_build_into", lambda *a, **k: pytest.fail("rebuilt a healthy older world")
    )
    _, lines = rebuilt(cache, capsys)
    assert lines == []
    assert json.loads((root / MANIFEST).read_text()) == json.loads((pristine / MANIFEST).read_text())


@pytest.mark.parametrize(
    "damage, expected",
    [
        ("truncate", f"{WEIGHTS} does not load (SafetensorError"),
        ("drop_rows", "train_pairs.jsonl has 3 rows, meta.json says 4"),
        ("delete", "model/config.json is missing"),
    ],
    ids=["truncate", "drop_rows", "delete"],
)
def test_a_damaged_world_built_before_manifests_is_rebuilt(
    cache: Path, pristine: Path, capsys, damage: str, expected: str
) -> None:
    root = cache / SPEC.key()
    (root / MANIFEST).unlink()
    if damage == "truncate":
        (root / WEIGHTS).write_bytes((root / WEIGHTS).read_bytes()[:1000])
    elif damage == "drop_rows":
        pairs = root / "train_pairs.jsonl"
        pairs.write_text("".join(pairs.read_text().splitlines(keepends=True)[:-1]))
    else:
        (root / "model" / "config.json").unlink()
    _, lines = rebuilt(cache, capsys)
    assert len(lines) == 1 and expected in lines[0] and str(root) in lines[0], lines
    assert fingerprint(root) == fingerprint(pristine) and verify_manifest(root) is None


def test_verifying_a_world_is_cheap(pristine: Path) -> None:
    import time

    start = time.perf_counter()
    for _ in range(10):
        assert build_module.world_problem(pristine, SPEC.key()) is None
    assert (
        time.perf_counter() - start
    ) / 10 < 0.5  # milliseconds in practice (about 3 ms for the default world)


# --- the reference-evaluation cache -------------------------------------------------------------------------


def test_an_entry_edited_to_other_valid_numbers_is_detected_and_recomputed(tiny_world, tmp_path) -> None:
    cache_dir = tmp_path / "refeval"
    first, _ = prepared(tiny_world, tmp_path / "a", cache_dir)
    original = first.record["reference"]["metrics"]["gold_reward"]
    path = cache_dir / first.record["reference"]["cache_key"] / "metrics.json"
    stored = json.loads(path.read_text())
    stored["data"]["gold_reward"]["gold_reward"] = (
        original + 0.5
    )  # valid JSON, a plausible number, old checksum
    path.write_text(json.dumps(stored))

    with pytest.warns(
        UserWarning, match=rf"ignoring {path}: its contents do not match its checksum"
    ) as caught:
        second, _ = prepared(tiny_world, tmp_path / "b", cache_dir)
    assert len([w for w in caught if "reference cache" in str(w.message)]) == 1
    ref = second.record["reference"]
    assert ref["cached"] is False and ref["metrics"]["gold_reward"] == original
    # Rewritten with a matching checksum: the next trial reads it back, silently.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert RefCache(path.parent.name, path.parent).metrics()["gold_reward"]["gold_reward"] == original


@pytest.mark.unit
def test_edited_tensors_truncated_json_and_entries_without_checksums_are_misses(tmp_path) -> None:
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    entry = tmp_path / "k"
    writer = RefCache("k", entry)
    writer.store_tensor("gold_rewards", torch.tensor([1.0, -0.5], dtype=torch.float64))
    writer.store_metrics("kl", {"kl": 0.25})
    writer.store_samples(tiny_samples())
    assert (
        RefCache("k", entry).tensor("gold_rewards") is not None and RefCache("k", entry).samples() is not None
    )

    tensor_file = entry / "gold_rewards.safetensors"
    with safe_open(
        str(tensor_file), framework="pt"
    ) as handle:  # keep the stored checksum, change the numbers
        metadata = handle.metadata()
    save_file({"value": load_file(tensor_file)["value"] * 2}, tensor_file, metadata=metadata)
    with pytest.warns(UserWarning, match="gold_rewards.safetensors: its contents do not match its checksum"):
        assert RefCache("k", entry).tensor("gold_rewards") is None

    metrics = entry / "metrics.json"
    metrics.write_text(json.dumps({"kl": {"kl": 0.25}}))  # the previous version's format: no checksum
    with pytest.warns(
        UserWarning, match="metrics.json: it has no checksum .written by an earlier harness version"
    ):
        assert RefCache("k", entry).metrics() == {}
    metrics.write_text('{"sha256": "0", "da')  # truncated
    with pytest.warns(UserWarning, match="metrics.json: it is unreadable"):
        assert RefCache("k", entry).metrics() == {}
    repaired = RefCache("k", entry)
    with pytest.warns(UserWarning, match="unreadable"):
        repaired.store_metrics("kl", {"kl": 0.25})  # recomputed: rewritten whole, with its checksum
    assert RefCache("k", entry).metrics() == {"kl": {"kl": 0.25}}


# --- a user's model -----------------------------------------------------------------------------------------


def tiny_llama(directory: Path) -> Path:
    """A randomly initialised Llama of hidden size 16, saved with save_pretrained (safetensors)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=64,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
    )
    LlamaForCausalLM(config).save_pretrained(directory)
    return directory


def test_a_truncated_weights_file_is_one_line_naming_it(tmp_path, monkeypatch) -> None:
    from harness.trial import models
    from tests.test_models import model_config

    model_cfg = model_config("hf")
    directory = tiny_llama(tmp_path / "model")
    assert models.load_causal_lm(str(directory), model_cfg, torch.float32, torch.device("cpu")) is not None
    weights = directory / "model.safetensors"
    size = weights.stat().st_size
    weights.write_bytes(weights.read_bytes()[: size // 2])
    with pytest.raises(ModelError) as raised:
        models.load_causal_lm(str(directory), model_cfg, torch.float32, torch.device("cpu"))
    message = str(raised.value)
    assert isinstance(raised.value, UserError) and "\n" not in message
    assert message == (
        f"The weights file {weights} is truncated or corrupt ({size // 2} bytes, its header lists "
        f"{size}); re-download the model, or save it again with save_pretrained."
    )

    # Other failures of a healthy model pass through untouched.
    weights.unlink()
    tiny_llama(directory)
    from transformers import AutoModelForCausalLM

    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", boom)
    with pytest.raises(RuntimeError, match="^boom$"):
        models.load_causal_lm(str(directory), model_cfg, torch.float32, torch.device("cpu"))


def test_the_command_line_prints_the_truncated_file_in_one_line(
    real_world, tmp_path, monkeypatch, capsys
) -> None:
    from harness.cli.app import main
    from tests.test_models import real

    model = tmp_path / "gpt2"
    shutil.copytree(real_world.gpt2, model)
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:5000])
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main(real(dataclasses.replace(real_world, gpt2=model)))
    said = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    lines = [line for line in said if not line.startswith("harness: warning: ")]  # the data's own notes
    assert exited.value.code == 2 and len(lines) == 1, said
    assert lines[0].startswith(f"harness: error: The weights file {weights} is truncated or corrupt (")
    assert lines[0].endswith("re-download the model, or save it again with save_pretrained.")


def test_a_truncated_reward_model_is_named_with_the_fix(real_world, tmp_path) -> None:
    from harness.errors import ConfigError
    from harness.evaluation.reward_models import load_reward_model

    model = tmp_path / "rm"
    shutil.copytree(real_world.reward_model, model)
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:5000])
    with pytest.raises(
        ConfigError,
        match=rf"the weights file {weights} is truncated or corrupt \(5000 bytes, its "
        r"header lists \d+\); train or save the reward model again\.",
    ):
        load_reward_model(str(model))


# --- every entry self-verifying: the length counts (issue 30) -----------------------------------------------


def _pairs(rows: int = 12):
    from datasets import Dataset

    return Dataset.from_list([{"prompt": "a b", "chosen": "c d", "rejected": "e"} for _ in range(rows)])


def _length_entries(root: Path) -> list[Path]:
    return sorted((root / "lengths").glob("*.json"))


@pytest.mark.unit
@pytest.mark.parametrize("damage", ["edited", "no checksum"])
def test_an_edited_length_count_is_detected_and_no_row_is_dropped(tmp_path, monkeypatch, damage) -> None:
    """The issue's case: an entry edited to drop 10 rows (and say so consistently) is named and counted again,
    never read; so is one without a checksum."""
    from harness.trial.length_cache import cached_count
    from tests.test_kl import tiny_tokenizer

    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path))
    data, tok = _pairs(), tiny_tokenizer()
    report, keep = cached_count(data, tok, 64)
    assert keep == list(range(12)) and report.dropped_long_prompt == 0
    [entry] = _length_entries(tmp_path)
    stored = json.loads(entry.read_text())
    stored["data"]["dropped"] = list(range(10))
    stored["data"]["report"]["dropped_long_prompt"] = 10
    entry.write_text(json.dumps(stored if damage == "edited" else stored["data"]))
    with pytest.warns(UserWarning) as caught:
        again, keep_again = cached_count(data, tok, 64)
    assert (again, keep_again) == (report, keep)  # nothing silently dropped
    [warning] = [str(w.message) for w in caught]
    expected = "no checksum" if damage == "no checksum" else "does not match its checksum (edited or damaged)"
    assert warning.startswith(f"length-count cache entry {entry} {expected}")
    assert warning.endswith("; computing it again")
    with warnings.catch_warnings():  # rewritten: the next read hits, silently
        warnings.simplefilter("error")
        assert cached_count(data, tok, 64) == (report, keep)


# --- the cache directory is checked before compute ----------------------------------------------------------


def test_a_cache_directory_that_is_a_file_is_one_line_before_compute(
    tiny_world, tmp_path, monkeypatch, capsys
) -> None:
    from tests.helpers import cli_error_line

    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(blocker))
    line = cli_error_line(tmp_path, monkeypatch, capsys, [*tiny_world, "method=dpo"])
    assert line == (
        f"harness: error: the cache directory {blocker} (HARNESS_CACHE_DIR) is not a directory; remove that "
        "file or set HARNESS_CACHE_DIR to another directory"
    )
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(blocker / "below"))
    line = cli_error_line(tmp_path, monkeypatch, capsys, [*tiny_world, "method=dpo"])
    assert line.startswith(
        f"harness: error: the cache directory {blocker / 'below'} (HARNESS_CACHE_DIR) cannot"
    )


def test_a_read_only_cache_directory_is_one_line_before_compute(
    tiny_world, tmp_path, monkeypatch, capsys
) -> None:
    """A directory this process cannot write to (tried, not read from its mode bits: root writes anyway)."""
    from harness.cache import housekeeping
    from tests.helpers import cli_error_line

    shared = tmp_path / "shared"
    shared.mkdir()
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(shared))
    monkeypatch.setattr(housekeeping, "_can_write", lambda directory: directory != shared)
    line = cli_error_line(tmp_path, monkeypatch, capsys, [*tiny_world, "method=dpo"])
    assert line == (
        f"harness: error: the cache directory {shared} (HARNESS_CACHE_DIR) is not writable; make it "
        "writable, or set HARNESS_CACHE_DIR to another directory, or set HARNESS_CACHE_READONLY=1 to read it "
        "as a shared cache without writing to it"
    )
    monkeypatch.setenv("HARNESS_CACHE_READONLY", "1")  # the documented way to use it
    from harness.cache import check_directory

    assert check_directory(shared) is None


@pytest.mark.unit
def test_a_directory_that_refuses_writes_is_found_by_trying(tmp_path) -> None:
    import os

    from harness.cache import check_directory

    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        problem = check_directory(locked)
        if os.geteuid() == 0:  # root writes anyway: then it is usable
            assert problem is None
        else:
            assert problem is not None and "is not writable" in problem
        assert list(locked.iterdir()) == []  # the probe leaves nothing
    finally:
        locked.chmod(0o755)


# --- read-only mode: a shared cache is read and never written -----------------------------------------------


def _snapshot(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.stat().st_mtime_ns for p in root.rglob("*")}


def test_read_only_mode_reads_a_shared_cache_and_writes_nothing(cache, tmp_path, monkeypatch) -> None:
    from harness.cache import file_lock
    from harness.trial.length_cache import cached_count
    from harness.trial.trainer_cache import through_cache
    from tests.test_kl import tiny_tokenizer

    monkeypatch.setenv("HARNESS_CACHE_DIR", str(cache))
    data, tok = _pairs(), tiny_tokenizer()
    counted = cached_count(data, tok, 64)  # a shared cache with a length count, a toy world and a table
    table = cache / "prepared" / "x.arrow"
    through_cache(table, lambda: data)
    before = _snapshot(cache)

    monkeypatch.setenv("HARNESS_CACHE_READONLY", "1")
    assert build_toy_world(SPEC, cache_dir=cache, progress=False).root == cache / SPEC.key()  # read
    assert cached_count(data, tok, 64) == counted  # read
    entry, result, computed = through_cache(table, lambda: 1 / 0)
    assert not computed and entry.num_rows == 12  # read
    assert cached_count(_pairs(5), tok, 64)[1] == list(range(5))  # a miss: counted, not written
    assert through_cache(cache / "prepared" / "y.arrow", lambda: data) == (None, data, True)
    other = dataclasses.replace(SPEC, num_train_pairs=5)
    built = build_toy_world(other, cache_dir=cache, progress=False)  # a miss: built privately
    assert not built.root.is_relative_to(cache) and len(built.train_pairs_path.read_text().splitlines()) == 5
    with file_lock(cache / "some.lock"):
        pass
    assert _snapshot(cache) == before  # no new file, no file touched


# --- keys name contents, not paths: a moved cache and a copied model hit ------------------------------------


def test_a_moved_cache_and_a_copied_model_hit(real_world, tmp_path, monkeypatch) -> None:
    from transformers import AutoTokenizer

    from harness.evaluation.refcache_key import model_fingerprint
    from harness.trial.length_cache import cached_count
    from harness.trial.trainer_cache import tokenizer_identity

    first, second = tmp_path / "a", tmp_path / "b"
    shutil.copytree(real_world.gpt2, first / "model")
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(first / "cache"))
    tok = AutoTokenizer.from_pretrained(first / "model")
    counted = cached_count(_pairs(), tok, 64)
    fingerprint = model_fingerprint(str(first / "model"))
    shutil.copytree(first, second)  # the cache and the model, elsewhere
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(second / "cache"))
    entries = _length_entries(second / "cache")
    moved = AutoTokenizer.from_pretrained(second / "model")
    assert tokenizer_identity(moved) == tokenizer_identity(tok)
    assert model_fingerprint(str(second / "model")) == fingerprint
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cached_count(_pairs(), moved, 64) == counted
    assert _length_entries(second / "cache") == entries  # a hit: nothing counted or written again
    weights = second / "model" / "model.safetensors"  # edited in place: another fingerprint
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    assert model_fingerprint(str(second / "model")) != fingerprint


# --- half-built entries are cleaned at the next start -------------------------------------------------------


@pytest.mark.unit
def test_stale_temporaries_of_dead_writers_are_removed_and_live_ones_kept(tmp_path) -> None:
    import os
    import subprocess
    import sys
    import time

    from harness.cache import clean_stale, writer_tag

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    dead_tag = writer_tag().replace(f"pid{os.getpid()}@", f"pid{int(dead.stdout)}@")
    world = tmp_path / "toyworld"
    killed = world / f".abc.{dead_tag}.x1y2z3w4.tmp"  # a toy-world build killed half-way
    live = world / f".abc.{writer_tag()}.x5y6z7w8.tmp"  # one being built now
    (killed / "model").mkdir(parents=True)
    (live / "model").mkdir(parents=True)
    old_write = tmp_path / "lengths" / ".k.json.ab12cd34.tmp"  # an untagged atomic write, hours old
    new_write = tmp_path / "lengths" / ".l.json.ef56gh78.tmp"  # one a moment old
    other = tmp_path / "lengths" / ".notes.tmp"  # not a temporary the harness names: never touched
    old_write.parent.mkdir()
    for path in (old_write, new_write, other):
        path.write_text("{")
    hours_ago = time.time() - 7200
    os.utime(old_write, (hours_ago, hours_ago))
    os.utime(other, (hours_ago, hours_ago))
    entry = world / "abc"
    entry.mkdir()
    assert sorted(clean_stale(tmp_path)) == sorted([killed, old_write])
    assert (
        live.is_dir() and new_write.is_file() and other.is_file() and entry.is_dir() and not killed.exists()
    )


@pytest.mark.unit
def test_a_toy_world_build_names_its_writer(tmp_path, monkeypatch) -> None:
    from harness.cache import clean_stale, writer_tag

    seen: list[Path] = []

    def killed(tmp, spec, progress):
        seen.append(tmp)
        raise KeyboardInterrupt

    monkeypatch.setattr(build_module, "_build_into", killed)
    with pytest.raises(KeyboardInterrupt):
        build_toy_world(SPEC, cache_dir=tmp_path, progress=False)
    assert f".{writer_tag()}." in seen[0].name and seen[0].name.endswith(".tmp")
    assert clean_stale(tmp_path) == []  # this writer lives; and its temporary is gone already


# --- cache warnings are one harness line --------------------------------------------------------------------


def test_cache_warnings_print_as_one_line(tmp_path, monkeypatch, capsys) -> None:
    from harness.trial.length_cache import cached_count
    from harness.verbosity import route_console
    from tests.test_kl import tiny_tokenizer

    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # restored after the test
    route_console(False)
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path))
    data, tok = _pairs(), tiny_tokenizer()
    cached_count(data, tok, 64)
    [entry] = _length_entries(tmp_path)
    entry.write_text(entry.read_text().replace('"rows": 12', '"rows": 13'))
    capsys.readouterr()
    cached_count(data, tok, 64)
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert err == [
        f"harness: warning: length-count cache entry {entry} does not match its checksum "
        "(edited or damaged); computing it again"
    ]


def test_the_leaderboard_prints_an_unreadable_record_as_one_line(tmp_path) -> None:
    import subprocess
    import sys

    (tmp_path / "0").mkdir()
    (tmp_path / "0" / "trial.json").write_text("{ not json")
    done = subprocess.run(
        [sys.executable, "-m", "harness.leaderboard", str(tmp_path), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    warned = [line for line in lines if "trial.json" in line]
    assert warned and all(line.startswith("harness: warning: skipping") for line in warned), done.stderr
    assert "UserWarning" not in done.stderr and "warnings.warn" not in done.stderr


def test_a_damaged_reference_cache_entry_prints_one_line(tmp_path, monkeypatch, capsys) -> None:
    from harness.verbosity import route_console

    entry = tmp_path / "k"
    RefCache("k", entry).store_metrics("kl", {"kl": 0.25})
    (entry / "metrics.json").write_text('{"sha256": "0", "da')
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # restored after the test
    route_console(False)
    capsys.readouterr()
    assert RefCache("k", entry).metrics() == {}
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith(f"harness: warning: reference cache: ignoring {entry}"), err


def test_read_only_mode_writes_no_reference_cache_entry(tmp_path, monkeypatch) -> None:
    entry = tmp_path / "k"
    RefCache("k", entry).store_metrics("kl", {"kl": 0.25})
    before = _snapshot(tmp_path)
    monkeypatch.setenv("HARNESS_CACHE_READONLY", "1")
    reader = RefCache("k", entry)
    assert reader.metrics() == {"kl": {"kl": 0.25}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to say: not writing is the point
        reader.store_metrics("reward", {"mean": 1.0})
        reader.store_tensor("gold_rewards", torch.tensor([1.0]))
    assert reader.metrics()["reward"] == {"mean": 1.0}  # kept in memory
    assert _snapshot(tmp_path) == before


@pytest.mark.slow
def test_a_moved_cache_and_toy_world_hit_in_a_whole_trial(
    tiny_world, cache_dir, tmp_path, monkeypatch
) -> None:
    """Copy the cache (prepared data, reference pass, reference evaluation) and the model elsewhere: the next
    trial reads every entry (nothing computed, no new entry) and trains to the same numbers; so does one in
    read-only mode, which touches nothing in the cache."""
    from tests.helpers import dpo_trial

    first = tmp_path / "a"
    shutil.copytree(cache_dir / "toyworld", first / "toyworld")
    world = [o for o in tiny_world if not o.startswith("toyworld.cache_dir=")]
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(first / "cache"))
    before = dpo_trial([*world, f"toyworld.cache_dir={first / 'toyworld'}"], tmp_path / "t1")
    second = tmp_path / "b"
    shutil.copytree(first, second)
    shutil.rmtree(first)  # moved: the old paths are gone
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(second / "cache"))
    files = sorted(p.relative_to(second).as_posix() for p in second.rglob("*") if "hashes" not in p.parts)
    after = dpo_trial([*world, f"toyworld.cache_dir={second / 'toyworld'}"], tmp_path / "t2")
    assert after["train"]["prepared_data"]["computed"] is False
    assert after["train"]["reference_logprobs"]["computed"] is False
    assert after["reference"]["cached"] is True
    assert (
        sorted(p.relative_to(second).as_posix() for p in second.rglob("*") if "hashes" not in p.parts)
        == files
    )
    assert [c["metrics"] for c in after["checkpoints"]] == [c["metrics"] for c in before["checkpoints"]]
    # Read-only: the same trial reads the shared cache and writes nothing there, not even a remembered hash.
    monkeypatch.setenv("HARNESS_CACHE_READONLY", "1")
    shared = _snapshot(second)
    readonly = dpo_trial([*world, f"toyworld.cache_dir={second / 'toyworld'}"], tmp_path / "t3")
    assert readonly["train"]["prepared_data"]["computed"] is False and readonly["reference"]["cached"] is True
    assert _snapshot(second) == shared
    assert [c["metrics"] for c in readonly["checkpoints"]] == [c["metrics"] for c in before["checkpoints"]]


@pytest.mark.unit
def test_judge_verdicts_verify_themselves(tmp_path, monkeypatch) -> None:
    """An edited verdict is a miss with one warning; one of an earlier version (no checksum) is trusted once
    and given its checksum (a verdict costs a call); read-only mode writes none."""
    from harness_plugins.evaluators.judge.backends import VerdictCache

    cache = VerdictCache(tmp_path)
    key = cache.key({"model": "m"}, "q", "a", "b")
    cache.put(key, {"output": "[[A]]"})
    assert cache.get(key) == {"output": "[[A]]"}
    [path] = list(tmp_path.rglob("*.json"))
    path.write_text(path.read_text().replace("[[A]]", "[[B]]"))
    with pytest.warns(UserWarning, match=rf"^judge cache entry {path} does not match its checksum"):
        assert cache.get(key) is None
    path.write_text(json.dumps({"output": "[[B]]"}))  # as an earlier version stored it
    assert cache.get(key) == {"output": "[[B]]"}
    assert json.loads(path.read_text())["data"] == {"output": "[[B]]"}  # given its checksum
    monkeypatch.setenv("HARNESS_CACHE_READONLY", "1")
    before = _snapshot(tmp_path)
    cache.put(cache.key({"model": "m"}, "q2", "a", "b"), {"output": "[[A]]"})
    assert _snapshot(tmp_path) == before
