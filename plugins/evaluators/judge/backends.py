"""The ``judge`` evaluator's HTTP backend (any OpenAI-compatible chat endpoint) and its on-disk verdict cache.

:class:`OpenAIJudge` POSTs ``{base_url}/chat/completions`` (``model``, ``messages``, ``temperature`` 0,
``max_tokens``) with the standard library's ``urllib``: vLLM, TGI, llama.cpp's server, SGLang, Ollama and
hosted APIs all speak it. Requests run ``concurrency`` at a time, each with a timeout and up to ``retries``
retries with exponential backoff (honouring ``Retry-After``) on HTTP 408/409/429/5xx and connection errors. A
request the server rejects as malformed (HTTP 400/413/422: a prompt too long for the judge, say) leaves that
comparison unparsed; any other failure stops the evaluation with a one-line error.

The API key is read from the environment variable named by ``api_key_env`` at request time and only ever sent
in the ``Authorization`` header: it is never stored in the judge's identity, the cache, the records or a
message.

:class:`VerdictCache` keeps each judge's raw answer (its text, or a local judge's label probabilities) in one
JSON file per comparison, named by the sha256 of the judge's identity (backend, model, template text, output
settings) and the prompt and both answers, in two-hex-digit shard folders; files are written to a temporary
name and renamed, so concurrent trials never read a partial entry (at worst two compute the same verdict).
Each file carries the SHA-256 of its answer, checked on every read (``harness.plugin.read_checked_json``); in
read-only cache mode nothing is written.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.plugin import read_checked_json, redact, write_checked_json

if TYPE_CHECKING:
    from harness_plugins.evaluators.judge.local import LocalJudge

logger = logging.getLogger(__name__)

CACHE_VERSION = 1  # part of every cache key: bump it when what a cached entry means changes
RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
REJECTED_STATUS = frozenset(
    {400, 413, 422}
)  # this request is refused (too long, ...): that comparison is unparsed
BACKOFF_S = 1.0  # first retry after this many seconds, doubling (tests set it to 0)
MAX_BACKOFF_S = 60.0

Messages = list[dict[str, str]]


class EndpointError(RuntimeError):
    """The judge endpoint failed in a way retrying does not fix
    (no key or a wrong one, wrong URL, server down)."""


class VerdictCache:
    """Raw judge answers on disk, one JSON file per comparison; ``directory=None`` caches nothing."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = Path(directory) if directory is not None else None

    @staticmethod
    def key(identity: Mapping[str, Any], prompt: str, answer_a: str, answer_b: str) -> str:
        """The sha256 hex digest naming the comparison of ``answer_a`` and ``answer_b`` on ``prompt``
        by ``identity``."""
        text = json.dumps(
            {"version": CACHE_VERSION, "judge": identity, "prompt": prompt, "a": answer_a, "b": answer_b},
            sort_keys=True,
            ensure_ascii=False,
        )
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def _path(self, key: str) -> Path:
        assert self.directory is not None
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The cached raw answer under ``key``, or None: absent, or damaged (unreadable, or not matching its
        checksum: then it is computed again, with one warning naming the file). An answer an earlier version
        stored without a checksum is trusted once and given one: a verdict costs a call and may not recur
        (the endpoint may answer otherwise), unlike the harness's other caches, which count it as a miss."""
        if self.directory is None:
            return None
        path = self._path(key)
        stored = read_checked_json(path)
        if isinstance(stored, str) and stored.startswith("no checksum"):
            legacy = self._legacy(path)
            if legacy is not None:
                write_checked_json(path, legacy)
                return legacy
        if isinstance(stored, str):
            warnings.warn(f"judge cache entry {path} {stored}; computing it again", stacklevel=2)
            return None
        return stored if isinstance(stored, dict) else None

    @staticmethod
    def _legacy(path: Path) -> dict[str, Any] | None:
        """An answer as earlier versions stored it (a bare JSON object), or None."""
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return value if isinstance(value, dict) and "sha256" not in value else None

    def put(self, key: str, value: Mapping[str, Any]) -> None:
        """Store ``value`` under ``key`` atomically with its checksum (not in read-only mode)."""
        if self.directory is not None:
            write_checked_json(self._path(key), dict(value))


def cached_run(
    judge: OpenAIJudge | LocalJudge,
    cache: VerdictCache,
    comparisons: Sequence[tuple[str, str, str]],
    conversations: Sequence[Messages],
    context: Mapping[str, Any],
) -> tuple[list[dict[str, Any]], int]:
    """Raw answers of ``judge`` for ``comparisons`` ((prompt, answer_a, answer_b), rendered as
    ``conversations``): from ``cache`` where present, the rest from ``judge.run`` (then stored, unless the
    answer is an error). ``context`` (the template's text) joins ``judge.identity()`` in the key. Returns the
    answers in order and how many were asked of the judge."""
    identity = {**judge.identity(), **context}
    keys = [cache.key(identity, *c) for c in comparisons]
    answers: list[dict[str, Any] | None] = [cache.get(k) for k in keys]
    missing = [i for i, a in enumerate(answers) if a is None]
    unique = list(dict.fromkeys(keys[i] for i in missing))  # identical comparisons are asked once
    first = {keys[i]: i for i in reversed(missing)}
    fresh = dict(zip(unique, judge.run([conversations[first[k]] for k in unique]), strict=True))
    for key, answer in fresh.items():
        if "error" not in answer:
            cache.put(key, answer)
    return [a if a is not None else fresh[keys[i]] for i, a in enumerate(answers)], len(unique)


def _headers(api_key_env: str | None) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    key = os.environ.get(api_key_env) if api_key_env else None
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return headers


def _http(url: str, api_key_env: str | None, timeout: float, payload: Mapping[str, Any] | None = None) -> Any:
    """GET (no payload) or POST JSON to ``url``; the decoded JSON answer. Raises urllib's errors."""
    data = json.dumps(payload).encode("utf-8") if payload is not None else None
    request = urllib.request.Request(
        url, data=data, headers=_headers(api_key_env), method="POST" if payload is not None else "GET"
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read().decode("utf-8"))


def _reason(exc: BaseException) -> str:
    """A short, key-free description of a connection error."""
    inner = getattr(exc, "reason", exc)
    text = str(getattr(inner, "strerror", None) or inner).strip() or type(inner).__name__
    return "timed out" if isinstance(inner, TimeoutError) or "timed out" in text else text


def endpoint_problem(base_url: str, api_key_env: str | None, timeout: float = 5.0) -> str | None:
    """Why the OpenAI-compatible endpoint at ``base_url`` cannot serve the judge (one line), or None.

    GETs ``{base_url}/models``: an unreachable server (refused, unknown host, timeout) is a problem, and so is
    HTTP 401/403 (the key is missing or wrong; it would fail every request). Any other HTTP status passes,
    since some servers do not implement ``/models``. Credentials in the URL (``http://user:KEY@host``) are
    refused before any request: the key belongs in the environment variable ``api_key_env`` names, never in a
    config that records, reports and trackers keep."""
    if urllib.parse.urlsplit(base_url).password is not None:
        return (
            f"eval.judge.base_url={redact(base_url)!r} holds credentials; remove them from the URL and "
            "export the key in the environment variable that eval.judge.api_key_env names (it is sent as "
            "a Bearer token)."
        )
    url = f"{base_url.rstrip('/')}/models"
    try:
        request = urllib.request.Request(url, headers=_headers(api_key_env), method="GET")
    except ValueError:
        return f"eval.judge.base_url={base_url!r} is not a URL; use e.g. http://127.0.0.1:8000/v1."
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return None
    except urllib.error.HTTPError as exc:
        if exc.code not in (401, 403):
            return None
        if not api_key_env:
            return (
                f"the judge endpoint {url} answered HTTP {exc.code} (unauthorized) and no "
                "API key is sent (eval.judge.api_key_env is null); set "
                "eval.judge.api_key_env to the variable holding the key."
            )
        state = "is set (is the key right?)" if os.environ.get(api_key_env) else "is not set"
        return (
            f"the judge endpoint {url} answered HTTP {exc.code} (unauthorized); the API key is read from "
            f"${api_key_env}, which {state}: export the key there or set eval.judge.api_key_env to the "
            f"variable holding it."
        )
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return (
            f"eval.judge.base_url={base_url} is unreachable (GET {url}: {_reason(exc)}); start the judge "
            f"server (e.g. vllm serve <model> --port 8000) or fix eval.judge.base_url."
        )


class OpenAIJudge:
    """A judge behind an OpenAI-compatible ``/chat/completions`` endpoint, asked at temperature 0."""

    backend = "openai"

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key_env: str | None = "OPENAI_API_KEY",
        max_tokens: int = 512,
        timeout: float = 120.0,
        retries: int = 3,
        concurrency: int = 4,
    ) -> None:
        self.url = f"{base_url.rstrip('/')}/chat/completions"
        self.model, self.api_key_env = model, api_key_env
        self.max_tokens, self.timeout, self.retries, self.concurrency = (
            max_tokens,
            timeout,
            retries,
            concurrency,
        )

    def identity(self) -> dict[str, Any]:
        """What determines this judge's answers besides the conversation (part of the cache key; no key)."""
        return {"backend": self.backend, "model": self.model, "max_tokens": self.max_tokens, "temperature": 0}

    def _wait(self, attempt: int, exc: BaseException) -> None:
        retry_after = exc.headers.get("Retry-After") if isinstance(exc, urllib.error.HTTPError) else None
        try:
            delay = float(retry_after) if retry_after else BACKOFF_S * 2**attempt
        except ValueError:
            delay = BACKOFF_S * 2**attempt
        time.sleep(min(max(delay, 0.0), MAX_BACKOFF_S))

    def complete(self, messages: Messages) -> dict[str, Any]:
        """One judge answer: ``{"output": text}``, or ``{"output": None, "error": ...}`` for a request the
        server rejects (HTTP 400/413/422). Retries transient failures; raises :class:`EndpointError` for the
        rest."""
        payload = {"model": self.model, "messages": messages, "temperature": 0, "max_tokens": self.max_tokens}
        for attempt in range(self.retries + 1):
            try:
                answer = _http(self.url, self.api_key_env, self.timeout, payload)
            except urllib.error.HTTPError as exc:
                detail = exc.read().decode("utf-8", "replace")[:200].replace("\n", " ")
                if exc.code in RETRY_STATUS and attempt < self.retries:
                    self._wait(attempt, exc)
                    continue
                if exc.code in REJECTED_STATUS:
                    logger.warning("judge request rejected (HTTP %s): %s", exc.code, detail)
                    return {"output": None, "error": f"HTTP {exc.code}: {detail}"}
                raise EndpointError(
                    f"judge endpoint {self.url}: HTTP {exc.code} {exc.reason}: {detail}"
                ) from None
            except (urllib.error.URLError, OSError) as exc:
                if attempt < self.retries:
                    self._wait(attempt, exc)
                    continue
                raise EndpointError(
                    f"judge endpoint {self.url} unreachable after {self.retries + 1} attempts: {_reason(exc)}"
                ) from None
            except ValueError as exc:
                raise EndpointError(
                    f"judge endpoint {self.url} answered something that is not JSON: {exc}"
                ) from None
            return {"output": _content(answer, self.url)}
        raise AssertionError("unreachable")  # pragma: no cover

    def run(self, conversations: Sequence[Messages]) -> list[dict[str, Any]]:
        """Raw answers to ``conversations``, in order, ``concurrency`` requests at a time."""
        if not conversations:
            return []
        with ThreadPoolExecutor(max_workers=max(1, min(self.concurrency, len(conversations)))) as pool:
            return list(pool.map(self.complete, conversations))


def _content(answer: Any, url: str) -> str:
    """The message text of a chat-completions answer ("" when the message has none)."""
    try:
        return str(answer["choices"][0]["message"].get("content") or "")
    except (KeyError, IndexError, TypeError, AttributeError):
        raise EndpointError(
            f"judge endpoint {url} answered without choices[0].message: {json.dumps(answer)[:200]}"
        ) from None
