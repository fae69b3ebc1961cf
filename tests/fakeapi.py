"""A real OpenAI-compatible HTTP server on 127.0.0.1 with scripted behaviour, for tests and
benchmarks. Each chat request consumes the next action of the script (then `default`)."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

GOOD_FIELDS = {
    "scientificName": {"value": "Malva neglecta Wallr.", "confidence": 0.92},
    "eventDate": {"value": "1984-09-08", "confidence": 0.88},
    "recordedBy": {"value": "M. Malley", "confidence": 0.8},
    "country": {"value": "Canada", "confidence": 0.95},
    "stateProvince": {"value": "Saskatchewan", "confidence": 0.9},
}


@dataclass
class FakeApiState:
    script: deque[str] = field(default_factory=deque)
    default: str = "good"
    models: list[str] = field(default_factory=lambda: ["test/vision-model"])
    valid_key: str | None = "sk-test-good"
    delay_s: float = 0.0
    reply_text: str | None = None  # overrides the good reply's content
    chat_requests: int = 0
    auth_headers: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    in_flight: int = 0
    max_in_flight: int = 0


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass

    def _send(self, code: int, body: Any, headers: dict[str, str] | None = None) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(raw)

    def _authorized(self) -> bool:
        st = self.server.state
        auth = self.headers.get("Authorization", "")
        with st.lock:
            st.auth_headers.append(auth)
            st.paths.append(self.path)
        return st.valid_key is None or auth == f"Bearer {st.valid_key}"

    def do_GET(self) -> None:
        st = self.server.state
        if not self._authorized():
            self._send(401, {"error": {"code": 401, "message": "No auth credentials found"}})
        elif self.path.endswith("/key"):
            self._send(
                200,
                {
                    "data": {
                        "label": "test",
                        "limit": None,
                        "limit_remaining": 10.0,
                        "is_free_tier": False,
                    }
                },
            )
        elif self.path.endswith("/models"):
            self._send(200, {"data": [{"id": m} for m in st.models]})
        else:
            self._send(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:
        st = self.server.state
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        if not self.path.endswith("/chat/completions"):
            self._send(404, {"error": {"message": "not found"}})
            return
        if not self._authorized():
            self._send(401, {"error": {"code": 401, "message": "User not found."}})
            return
        with st.lock:
            st.chat_requests += 1
            action = st.script.popleft() if st.script else st.default
            st.in_flight += 1
            st.max_in_flight = max(st.max_in_flight, st.in_flight)
        try:
            if st.delay_s:
                time.sleep(st.delay_s)
            self._act(action, body)
        finally:
            with st.lock:
                st.in_flight -= 1

    def _act(self, action: str, body: dict[str, Any]) -> None:
        st = self.server.state
        if body.get("model") not in st.models:
            self._send(
                404, {"error": {"code": 404, "message": f"model {body.get('model')} not found"}}
            )
            return
        usage = {
            "prompt_tokens": 1200,
            "completion_tokens": 150,
            "total_tokens": 1350,
            "cost": 0.0012,
        }
        if action == "good":
            content = st.reply_text or json.dumps(GOOD_FIELDS)
            self._send(
                200,
                {
                    "id": "x",
                    "model": body.get("model"),
                    "usage": usage,
                    "choices": [{"message": {"role": "assistant", "content": content}}],
                },
            )
        elif action == "fenced":
            content = "Here you go:\n```json\n" + json.dumps(GOOD_FIELDS) + "\n```"
            self._send(
                200,
                {
                    "model": body.get("model"),
                    "usage": usage,
                    "choices": [{"message": {"content": content}}],
                },
            )
        elif action == "garbage":
            self._send(
                200,
                {
                    "model": body.get("model"),
                    "usage": usage,
                    "choices": [{"message": {"content": "I cannot read this label."}}],
                },
            )
        elif action == "429":
            self._send(
                429,
                {"error": {"code": 429, "message": "Rate limit exceeded"}},
                {"Retry-After": "1"},
            )
        elif action == "500":
            self._send(500, {"error": {"code": 500, "message": "Internal Server Error"}})
        elif action == "402":
            self._send(402, {"error": {"code": 402, "message": "Insufficient credits"}})
        elif action == "401":
            self._send(401, {"error": {"code": 401, "message": "Key revoked"}})
        elif action.startswith("sleep:"):
            time.sleep(float(action.split(":", 1)[1]))
            self._act("good", body)
        else:
            raise ValueError(f"unknown action {action}")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: FakeApiState

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that hang up mid-reply (cancelled runs, timeouts) are expected here


class FakeApi:
    """Start with `with FakeApi() as api:`; `api.base_url` ends in /api/v1."""

    def __init__(self, script: Iterable[str] = (), default: str = "good", **kw: Any) -> None:
        self.state = FakeApiState(script=deque(script), default=default, **kw)
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.state = self.state
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/api/v1"

    def __enter__(self) -> FakeApi:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
