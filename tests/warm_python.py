"""A warm Python: one process that imports the harness's libraries once, then forks a fresh child per command.

The manual's tests run dozens of ``python -m harness ...`` commands. A new interpreter spends 6 to 8 seconds
importing torch, transformers, TRL, datasets, lm-eval, peft and Hydra before a tiny-world trial takes 2 to 4;
so :class:`WarmPython` starts one server process that imports them (and runs no torch operation, so no thread
pool exists when it forks), and for each command forks a child that takes the command's working directory,
environment and arguments, runs the module as ``python -m`` would (``runpy``, ``__main__``), writes its output
to files and exits with the module's exit status, atexit handlers and logging flushed as at a normal exit.
Each command is still a process of its own (nothing it does reaches the next one) started from the same
imported state; what a fresh interpreter reads at import time (``HF_HUB_OFFLINE`` and the like) is read once,
from the server's environment.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

# The server: imports, then serves one JSON request per line (module, args, cwd, env, timeout), one JSON reply
# each.
SERVER = r"""
import atexit, json, logging, os, runpy, signal, sys, time, traceback

import torch, transformers, trl, datasets, peft, hydra, omegaconf, lm_eval  # the expensive imports, once
import harness.cli.app, harness.leaderboard, harness.trial.runner, harness.sweep.sweeper  # noqa: F401


def child(request):
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
        os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = [request["module"], *request["args"]]
    code = 0
    try:
        runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    try:
        atexit._run_exitfuncs()
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


for line in sys.stdin:
    request = json.loads(line)
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        child(request)
    deadline = time.monotonic() + request["timeout"]
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            reply = {"returncode": os.waitstatus_to_exitcode(status), "timed_out": False}
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            reply = {"returncode": -signal.SIGKILL, "timed_out": True}
            break
        time.sleep(0.05)
    print(json.dumps(reply), flush=True)
"""


class WarmPython:
    """The server process (started on first use) and the commands it runs; :meth:`close` stops it."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.process: subprocess.Popen[str] | None = None

    def _server(self) -> subprocess.Popen[str]:
        if self.process is None or self.process.poll() is not None:
            self.process = subprocess.Popen(
                [sys.executable, "-c", SERVER],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                cwd=self.cwd,
            )
        return self.process

    def run(
        self, module: str, args: list[str], cwd: Path, env: dict[str, str], timeout: int
    ) -> subprocess.CompletedProcess[str]:
        """Run ``python -m module args`` in ``cwd`` with exactly ``env`` as a forked child of the server;
        returns what :func:`subprocess.run` would (its output captured); raises
        :class:`subprocess.TimeoutExpired` after ``timeout`` seconds (the child is killed)."""
        server = self._server()
        assert server.stdin is not None and server.stdout is not None
        with tempfile.TemporaryDirectory(prefix="warm-python-") as scratch:
            out, err = Path(scratch) / "stdout", Path(scratch) / "stderr"
            request = {
                "module": module,
                "args": list(args),
                "cwd": str(cwd),
                "env": dict(env),
                "timeout": timeout,
                "stdout": str(out),
                "stderr": str(err),
            }
            server.stdin.write(json.dumps(request) + "\n")
            server.stdin.flush()
            line = server.stdout.readline()
            if not line:
                raise RuntimeError(f"the warm Python server exited ({server.poll()}) running {module} {args}")
            reply = json.loads(line)
            stdout = out.read_text(errors="replace") if out.exists() else ""
            stderr = err.read_text(errors="replace") if err.exists() else ""
        argv = [sys.executable, "-m", module, *args]
        if reply["timed_out"]:
            raise subprocess.TimeoutExpired(argv, timeout, stdout, stderr)
        return subprocess.CompletedProcess(argv, reply["returncode"], stdout, stderr)

    def close(self) -> None:
        """Stop the server (its children have all exited)."""
        if self.process is not None and self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None
