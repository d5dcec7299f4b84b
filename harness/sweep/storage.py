"""Opening an Optuna study's storage: journal files, database URLs, drivers, passwords and the schema race.

A storage is a journal file path (the default, ``multirun/<sweep>/optuna.journal``) or a SQLAlchemy URL that
Optuna's ``RDBStorage`` reads. A bare ``postgresql://`` URL is given the PostgreSQL driver that is installed
(psycopg 3, else psycopg2; SQLAlchemy 2.1 maps the bare form to psycopg 3 only); with none, or with a URL
whose driver is missing, a :class:`~harness.errors.ConfigError` names the fix before any compute.

Passwords never reach a file or a printed line: everything the harness writes or prints shows
:func:`redact`'s form (``postgresql://user:***@host/db``). The full URL stays in this process's memory and in
its environment (:data:`ENV_STORAGE`, inherited by the trials' processes, never written by Hydra); a process
without it connects with the password taken out, so libpq reads ``PGPASSWORD`` or ``~/.pgpass`` (the
recommended way to give the password).

Workers started together on a fresh database race to create Optuna's schema (``CREATE TYPE ...``: a unique
violation in the loser); :func:`retry_schema_race` retries such errors with a short jittered backoff.
"""

from __future__ import annotations

import importlib.util
import os
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from harness.errors import ConfigError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

ENV_STORAGE = "HARNESS_OPTUNA_STORAGE"  # the full storage URL (with its password), for the trials' processes
MASK = "***"
POSTGRES_FIX = "pip install 'harness[postgres]'"
# PostgreSQL drivers in the order a bare postgresql:// URL tries them: (SQLAlchemy driver name, module).
_POSTGRES_DRIVERS = (("psycopg", "psycopg"), ("psycopg2", "psycopg2"))
_RACE_MARKERS = (
    "already exists",
    "duplicate key",
    "unique constraint",
    "uniqueviolation",
    "duplicateobject",
    "duplicatetable",
)

T = TypeVar("T")
_known: dict[str, str] = {}  # redacted URL -> full URL, for URLs this process was given
_opened: dict[str, Any] = {}  # storages opened by this process, by what they were opened with
_lock = threading.Lock()


def is_url(storage: str) -> bool:
    """Whether ``storage`` is a database URL (else a journal file path)."""
    return "://" in str(storage)


def _parse(storage: str) -> Any:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(storage)
    except (ArgumentError, ValueError) as exc:
        raise ConfigError(
            f"hydra.sweeper.storage={redact(storage)!r} is not a storage URL ({exc}); use a "
            "journal file path or a URL such as postgresql://user@host/db."
        ) from None


def redact(storage: str) -> str:
    """``storage`` as it may be written or printed: a URL's password replaced by ``***`` (paths unchanged)."""
    storage = str(storage)
    if not is_url(storage):
        return storage
    from sqlalchemy.engine import make_url

    try:
        return make_url(storage).render_as_string(hide_password=True)
    except Exception:  # not parseable: hide everything between "://" and "@"
        scheme, _, rest = storage.partition("://")
        return f"{scheme}://{MASK}@{rest.rpartition('@')[2]}" if "@" in rest else storage


def label(storage: str) -> str:
    """A short name for a storage (a report's default title and directory): a URL's database, else the name of
    the directory holding the journal file; never a password."""
    if not is_url(storage):
        return Path(storage).resolve().parent.name
    try:
        url = _parse(storage)
    except ConfigError:
        return "optuna"
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in (url.database or url.host or "optuna"))


def dashboard_form(storage: str) -> str:
    """``storage`` as a command line may show it: a URL without its password (libpq reads ``PGPASSWORD`` or
    ``~/.pgpass``), a path unchanged."""
    if not is_url(storage):
        return str(storage)
    try:
        return _no_password(_parse(storage)).render_as_string(hide_password=False)
    except ConfigError:
        return redact(storage)


def scrub(text: str, storage: str | None = None) -> str:
    """``text`` with the password of ``storage`` (and of every URL this process was given)
    replaced by ``***``."""
    urls = [*_known.values(), *([storage] if storage else [])]
    for url in urls:
        if not is_url(url):
            continue
        try:
            password = _parse(url).password
        except ConfigError:
            continue
        if password:
            text = text.replace(url, redact(url)).replace(str(password), MASK)
    return text


def remember(storage: str) -> str:
    """Keep the full URL in this process (and its environment, for the trials' processes); returns its
    redacted form. Paths and URLs without a password are returned unchanged."""
    if not is_url(storage) or not _parse(storage).password:
        return storage
    shown = redact(storage)
    _known[shown] = storage
    os.environ[ENV_STORAGE] = storage
    return shown


def connect_url(storage: str) -> str:
    """The URL to connect to ``storage`` with: the full one when ``storage`` is a redacted URL this process
    (or its parent, through :data:`ENV_STORAGE`) was given, else the password taken out (libpq then reads
    ``PGPASSWORD`` or ``~/.pgpass``); a bare ``postgresql://`` gets the installed driver.

    :raises ConfigError: no driver for the URL is installed, or its dialect is unknown.
    """
    url = _parse(storage)
    if url.password == MASK:
        full = _known.get(redact(storage))
        env = os.environ.get(ENV_STORAGE)
        if full is None and env and is_url(env) and redact(env) == redact(storage):
            full = env
        url = _parse(full) if full else _no_password(url)
    return with_driver(url).render_as_string(hide_password=False)


def _no_password(url: URL) -> Any:
    """``url`` without its password (``URL.set`` leaves a field unchanged when given None)."""
    from sqlalchemy.engine import URL

    return URL.create(url.drivername, url.username, None, url.host, url.port, url.database, url.query)


def with_driver(url: URL) -> Any:
    """``url`` (a SQLAlchemy URL) with a driver that is installed: a bare ``postgresql`` gets psycopg 3, else
    psycopg2. :raises ConfigError: the URL's driver is not installed (naming the fix), or its dialect is
    unknown."""
    from sqlalchemy.exc import NoSuchModuleError

    if url.drivername == "postgresql":
        found = next((name for name, module in _POSTGRES_DRIVERS if importlib.util.find_spec(module)), None)
        if found is None:
            raise ConfigError(
                f"storage {redact(str(url))} needs a PostgreSQL driver and none is installed; run "
                f"{POSTGRES_FIX}."
            )
        url = url.set(drivername=f"postgresql+{found}")
    try:
        url.get_dialect().import_dbapi()
    except NoSuchModuleError:
        raise ConfigError(
            f"storage {redact(str(url))}: unknown database {url.drivername!r}; use a journal file, "
            "sqlite:///<file> or postgresql://user@host/db."
        ) from None
    except ImportError as exc:
        driver = url.get_driver_name()
        fix = "install it"
        if url.get_backend_name() == "postgresql":
            fix = (
                f"run {POSTGRES_FIX}"
                if driver == "psycopg"
                else f"install it, or write the URL as postgresql://... and run {POSTGRES_FIX}"
            )
        raise ConfigError(f"storage {redact(str(url))} needs the {driver} driver ({exc}); {fix}.") from None
    return url


def check_storage(storage: str | None) -> None:
    """Check, before any compute, that ``storage`` (None: the default journal file) can be opened here.

    :raises ConfigError: the URL is malformed, or its driver is not installed."""
    if storage and is_url(storage):
        connect_url(storage)


def retry_schema_race(action: Callable[[], T], attempts: int = 8, base_s: float = 0.05) -> T:
    """``action()``, retried with a short jittered backoff while it fails with the error of another process
    creating the same schema or study at the same moment (a unique violation, "already exists")."""
    from sqlalchemy.exc import DBAPIError, IntegrityError

    for attempt in range(attempts):
        try:
            return action()
        except DBAPIError as exc:
            text = f"{type(exc.orig).__name__} {exc}".lower()
            race = isinstance(exc, IntegrityError) or any(marker in text for marker in _RACE_MARKERS)
            if not race or attempt == attempts - 1:
                raise
            time.sleep(base_s * (2 ** min(attempt, 4)) * (0.5 + random.random()))
    raise AssertionError("unreachable")


def open_storage(storage: str) -> Any:
    """An Optuna storage for ``storage`` (one per process and storage, shared by its studies): a journal file
    for a path, else Optuna's ``RDBStorage`` for the URL (:func:`connect_url`), its schema created safely when
    other workers create it at the same moment (:func:`retry_schema_race`).

    :raises ConfigError: no driver, or the database cannot be reached (the line names it, password hidden).
    """
    import optuna

    key = str(storage) if not is_url(storage) else connect_url(storage)
    with _lock:
        if key in _opened:
            return _opened[key]
        if not is_url(storage):
            from optuna.storages.journal import JournalFileBackend

            Path(storage).parent.mkdir(parents=True, exist_ok=True)
            opened: Any = optuna.storages.JournalStorage(JournalFileBackend(str(storage)))
        else:
            opened = optuna.storages.get_storage(retry_schema_race(lambda: _rdb(key, storage)))
        _opened[key] = opened
        return opened


def _rdb(url: str, given: str) -> Any:
    """Optuna's RDBStorage for ``url`` (``given``: the URL as the user wrote it, for the error line)."""
    import optuna
    from sqlalchemy.exc import OperationalError

    try:
        return optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
    except OperationalError as exc:
        reason = scrub(str(exc.orig or exc).strip().splitlines()[0], url)
        raise ConfigError(
            f"cannot open the Optuna storage {redact(given)}: {reason}; check that the database "
            "server is up and the URL, and give the password with PGPASSWORD or ~/.pgpass."
        ) from None
