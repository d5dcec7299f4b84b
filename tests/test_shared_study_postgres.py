"""A shared Optuna study on a real PostgreSQL server: workers on a fresh database, a lost worker, the report
from the URL alone, and the password in no file.

The server is started here (``initdb`` and ``postgres`` from the PostgreSQL packages, as the ``postgres`` user
when the tests run as root; 127.0.0.1 on a free port, a temporary directory) and stopped at teardown; the
tests skip when its binaries or a PostgreSQL driver are absent (``.ci/run`` installs Debian's ``postgresql``).
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

from harness.sweep import storage as pg
from harness.sweep import study as st
from harness.sweep.stored import decode_record
from harness.sweep.trials import counted_trials
from tests.conftest import REPO, run_cli

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
optuna.logging.set_verbosity(optuna.logging.WARNING)

PASSWORD = "pw-Zq7vKt3x"  # searched for in every file written
USER = "harness"
QUICK = [
    "method.max_steps=16",
    "train.num_checkpoints=2",
    "method.batch_size=4",
    "eval.num_prompts=8",
    "eval.max_new_tokens=12",
    "eval.evaluators=[gold_reward,kl]",
    "eval.checkpoints=all",
    "train.save_checkpoints=false",
    "leaderboard.print=false",
    "eval.selection.num_prompts=8",
]


def _bindir() -> Path | None:
    """Where initdb and postgres are: pg_config's bindir, Debian's /usr/lib/postgresql/<v>/bin, or PATH."""
    candidates = []
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        candidates.append(out.stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    if shutil.which("initdb"):
        candidates.append(str(Path(shutil.which("initdb")).resolve().parent))
    return next(
        (
            Path(c)
            for c in candidates
            if c and (Path(c) / "initdb").is_file() and (Path(c) / "postgres").is_file()
        ),
        None,
    )


def _as_server_user() -> dict[str, str]:
    """Popen arguments that run initdb and postgres as the postgres user when the tests run as root (both
    refuse root); the server process is then ours to signal, with no ``runuser`` in between."""
    return {"user": "postgres", "group": "postgres", "extra_groups": []} if os.geteuid() == 0 else {}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A PostgreSQL server of our own: ``url(db)`` names a database in it (created by :meth:`database`)."""

    def __init__(self, bindir: Path, root: Path) -> None:
        self.root, self.port = root, _free_port()
        data = root / "data"
        subprocess.run(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            cwd=root,
            check=True,
            capture_output=True,
            **_as_server_user(),
        )
        self.proc = subprocess.Popen(
            [
                str(bindir / "postgres"),
                "-D",
                str(data),
                "-p",
                str(self.port),
                "-k",
                str(root),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ],
            cwd=root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            **_as_server_user(),
        )
        self._admin(f"CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}'")

    def _admin(self, sql: str) -> None:
        import psycopg

        deadline = time.time() + 60
        while True:
            try:
                with psycopg.connect(
                    host=str(self.root), port=self.port, user="postgres", dbname="postgres", autocommit=True
                ) as conn:
                    conn.execute(sql)
                return
            except psycopg.OperationalError:
                assert time.time() < deadline and self.proc.poll() is None, "PostgreSQL did not start"
                time.sleep(0.2)

    def database(self, name: str) -> str:
        """Create database ``name`` (fresh, owned by our user); returns its URL with the password."""
        self._admin(f"CREATE DATABASE {name} OWNER {USER}")
        return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)  # fast shutdown
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    """A running PostgreSQL server on 127.0.0.1 (skips when PostgreSQL or psycopg is not installed)."""
    pytest.importorskip("psycopg")
    bindir = _bindir()
    if bindir is None:
        pytest.skip("PostgreSQL's server binaries are not installed (apt-get install postgresql)")
    if os.geteuid() == 0:
        import pwd

        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no postgres user to run the server as")
    root = Path(tempfile.mkdtemp(prefix="harness-pg-"))  # under /tmp: the postgres user must reach it
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    srv = Server(bindir, root)
    try:
        yield srv
    finally:
        srv.stop()
        shutil.rmtree(root, ignore_errors=True)


def _files_with_password(*roots: Path) -> list[str]:
    found = []
    for root in roots:
        for path in Path(root).rglob("*"):
            if path.is_file() and PASSWORD.encode() in path.read_bytes():
                found.append(str(path))
    return found


_OPEN_TOGETHER = """
import sys, time
import optuna
from harness.sweep.storage import open_storage, retry_schema_race
start = float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))
storage = open_storage(sys.argv[1])
retry_schema_race(lambda: optuna.create_study(study_name="s", storage=storage, load_if_exists=True))
print("ok")
"""


def test_workers_opening_a_fresh_database_at_the_same_moment_all_get_the_study(server):
    # Without the retry, one of two plain RDBStorage(url) calls at the same instant on a fresh database fails
    # about every other time (UniqueViolation on CREATE TYPE studydirection); three workers on each of two
    # fresh databases, all starting together, must all open the study.
    urls = [server.database(f"race{i}") for i in range(2)]
    start = time.time() + 5.0  # the imports done, every process opens the storage at this instant
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _OPEN_TOGETHER, url, str(start)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for url in urls
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0 and out.strip() == "ok", err[-2000:]
    for url in urls:
        assert optuna.get_all_study_names(pg.open_storage(url)) == ["s"]


def test_a_redacted_url_connects_with_pgpassword_and_the_bare_form_picks_a_driver(server, monkeypatch):
    url = server.database("redacted")
    shown = pg.redact(url)
    assert PASSWORD not in shown and "***" in shown and shown.startswith("postgresql://")
    assert pg.connect_url(url).startswith(
        "postgresql+psycopg"
    )  # SQLAlchemy 2.1 maps the bare form to psycopg 3
    monkeypatch.delenv(pg.ENV_STORAGE, raising=False)
    monkeypatch.setattr(pg, "_known", {})
    monkeypatch.setenv("PGPASSWORD", PASSWORD)  # libpq's own way: the URL need not carry it
    storage = pg.open_storage(shown)
    optuna.create_study(study_name="via-pgpassword", storage=storage)
    assert "via-pgpassword" in optuna.get_all_study_names(storage)


@pytest.mark.slow  # two workers, one killed, five trainings and a leaderboard: over a minute on 2 cores
def test_two_workers_share_a_postgres_study_survive_a_lost_worker_and_the_report_needs_only_the_url(
    server, tiny_world, tmp_path
):
    url = server.database("shared")
    args = [
        "-m",
        "hydra/sweeper=optuna",
        *tiny_world,
        *QUICK,
        "method=dpo",
        "hydra.sweeper.n_trials=3",
        "hydra/sweeper/pruner=none",
        "sweep_name=shared",
        f"hydra.sweeper.storage={url}",
        "hydra.sweeper.heartbeat_s=1",
        "hydra.sweeper.stale_after_s=20",
    ]
    machines = {name: tmp_path / name for name in ("a", "b", "c")}  # one working directory per "machine"
    for d in machines.values():
        d.mkdir()
    env = dict(os.environ)
    env.pop(pg.ENV_STORAGE, None)
    workers = {
        name: subprocess.Popen(
            [sys.executable, "-m", "harness", *args],
            cwd=machines[name],
            env=env,
            start_new_session=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name in ("a", "b")
    }
    b_dir = machines["b"] / "multirun" / "shared"
    try:  # kill worker b (and its trial) once its first trial is training
        deadline = time.time() + 300
        while not any((d / "trainer").exists() for d in b_dir.glob("[0-9]*")):
            assert time.time() < deadline and workers["b"].poll() is None, (
                "worker b ended before it could be killed"
            )
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        os.killpg(workers["b"].pid, signal.SIGKILL)
    out_a, _ = workers["a"].communicate(timeout=600)
    out_b, _ = workers["b"].communicate(timeout=60)
    assert workers["a"].returncode == 0, out_a[-4000:]
    assert "Traceback" not in out_a and "UniqueViolation" not in out_a
    assert (
        "was lost" in out_a and "queued again" in out_a
    )  # the surviving worker settled it and ran the retry

    study = optuna.load_study(study_name="shared", storage=pg.open_storage(url))
    counted = counted_trials(study)
    assert len(counted) == 3 and all(t.state == TrialState.COMPLETE for t in counted)  # the plan was reached
    trained = [tuple(sorted(t.params.items())) for t in counted if st.ATTR_SAME_AS not in t.user_attrs]
    assert len(trained) == len(set(trained))  # no parameters trained twice
    (lost,) = [t for t in study.trials if st.ATTR_LOST in t.user_attrs]
    (retry,) = [t for t in counted if t.user_attrs.get(st.ATTR_RETRY_OF) == lost.number]
    assert retry.params == lost.params and lost.state == TrialState.FAIL
    assert all(decode_record(t.system_attrs) for t in [*counted, lost])  # every record travels with the study
    settings = json.loads((machines["a"] / "multirun" / "shared" / st.SETTINGS_NAME).read_text())
    assert settings["storage"] == pg.redact(url)
    hydra_files = list(machines["a"].glob("multirun/shared/*/.hydra/hydra.yaml"))
    assert hydra_files and all("***" in f.read_text() for f in hydra_files)  # Hydra wrote the URL, redacted

    written = [machines["a"], machines["b"]]
    assert not _files_with_password(*written), "the password was written"
    assert PASSWORD not in out_a + out_b
    for d in written:  # the trial directories are gone: the report must come from the storage alone
        shutil.rmtree(d / "multirun")
    report = run_cli([url, "--out", "from-url"], cwd=machines["c"], module="harness.leaderboard")
    assert report.returncode == 0, report.stderr[-3000:]
    assert PASSWORD not in report.stdout + report.stderr and "records were found" not in report.stderr
    table = pd.read_csv(machines["c"] / "from-url" / "leaderboard.csv")
    assert sorted(table["trial_id"]) == sorted(f"shared/{t.number}" for t in [*counted, lost])
    assert (table["status"] == "completed").sum() == 3 and (table["status"] == "failed").sum() == 1
    md = (machines["c"] / "from-url" / "leaderboard.md").read_text()
    assert "3 complete" in md and "not on this machine" in md and socket.gethostname() in md
    assert not _files_with_password(machines["c"]), "the password was written"
