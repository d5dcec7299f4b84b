"""A local OpenAI-compatible judge server for tests: ``/v1/models`` and ``/v1/chat/completions`` on 127.0.0.1.

It judges by a fixed rule (``longer``: the longer answer wins; ``first``: always answer A, a judge with a pure
position bias; ``garbage``: no verdict at all, a judge that cannot judge), records every request, checks the
bearer key when one is set, and can fail on demand.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: The two answers in a rendering of the built-in judge template.
ANSWER = re.compile(r"## Reply (A|B)\n(.*?)\n## End of reply \1", re.S)


class JudgeServer:
    """``/v1/models`` and ``/v1/chat/completions`` on 127.0.0.1; the verdict follows ``rule`` ("longer": the
    longer answer wins, equal lengths tie; "first": always [[A]]; "garbage": text with no verdict in it).
    Counts requests and wrong Authorization headers."""

    def __init__(self, rule: str = "longer", key: str | None = None) -> None:
        self.rule, self.key = rule, key
        self.posts: list[dict] = []
        self.bad_auth = 0
        self.fail_next: list[int] = []  # HTTP statuses to answer the next POSTs with
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _send(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorized(self) -> bool:
                ok = server.key is None or self.headers.get("Authorization") == f"Bearer {server.key}"
                server.bad_auth += not ok
                return ok

            def do_GET(self) -> None:
                if not self._authorized():
                    return self._send(401, {"error": "unauthorized"})
                if self.path == "/v1/models":
                    return self._send(200, {"data": [{"id": "judge-model"}]})
                return self._send(404, {"error": "not found"})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.posts.append(body)
                if not self._authorized():
                    return self._send(401, {"error": "unauthorized"})
                if server.fail_next:
                    return self._send(server.fail_next.pop(0), {"error": "try again"})
                text = server.verdict(body["messages"][-1]["content"])
                return self._send(200, {"choices": [{"message": {"role": "assistant", "content": text}}]})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def verdict(self, user_message: str) -> str:
        if self.rule == "first":
            return "Both are fine, but the first is better.\n\n[[A]]"
        if self.rule == "garbage":
            return "I like both of them, really."
        answers = dict(ANSWER.findall(user_message))
        a, b = len(answers.get("A", "")), len(answers.get("B", ""))
        return (
            "Comparing the two answers.\n\nFinal verdict: "
            f"{'[[A]]' if a > b else '[[B]]' if b > a else '[[C]]'}"
        )

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
