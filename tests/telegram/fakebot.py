"""A fake Telegram Bot API server on loopback for the tests: it answers the methods the bot
calls the way the Bot API does (`{"ok": true, "result": ...}`), records every call, and can
be told to refuse the next calls of a method with 429 and a `retry_after`, to hold calls
unanswered (`stall`), and given `updates` for getUpdates.

Point the bot at it through TELEGRAM_API_URL (`<url>/bot<token>/<method>`).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass(frozen=True)
class Call:
    """One request the bot made: the method and its parameters as Telegram received them."""

    token: str
    method: str
    params: dict[str, Any]


@dataclass
class FakeBotApi:
    calls: list[Call] = field(default_factory=list)
    _refusals: dict[str, list[int]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _message_ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _stalls: dict[str, int] = field(default_factory=dict)
    _released: threading.Event = field(default_factory=threading.Event)
    updates: list[dict[str, Any]] = field(default_factory=list)
    _errors: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    # Every call of a method answered with this until `recover` (an outage, not a count).
    _outages: dict[str, tuple[int, str, int | None]] = field(default_factory=dict)
    refused: int = 0  # calls answered by an outage so far
    held: int = 0  # calls held unanswered by `stall` so far
    # getWebhookInfo: the URL setWebhook set, and what a test says Telegram saw.
    webhook_url: str = ""
    pending_updates: int = 0
    webhook_error: str | None = None

    def start(self) -> FakeBotApi:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self._answer(b"")

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                self._answer(self.rfile.read(length))

            def _answer(self, body: bytes) -> None:
                status, answer = api._handle(self.path, self.headers.get("Content-Type", ""),
                                             body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                # The caller may be gone (a killed worker).
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def stop(self) -> None:
        self._released.set()
        self.server.shutdown()
        self.server.server_close()

    def refuse(self, method: str, *retry_after: int) -> None:
        """Answer the next calls of `method` with 429 Too Many Requests, one per value."""
        with self._lock:
            self._refusals.setdefault(method, []).extend(retry_after)

    def fail(self, method: str, error_code: int, description: str) -> None:
        """Answer the next call of `method` with this error (403 bot blocked, say)."""
        with self._lock:
            self._errors.setdefault(method, []).append((error_code, description))

    def outage(self, method: str, error_code: int, description: str,
               retry_after: int | None = None) -> None:
        """Answer every call of `method` with this error (a 429 with `retry_after`) until
        `recover(method)`: Telegram rate-limiting or failing for a while."""
        with self._lock:
            self._outages[method] = (error_code, description, retry_after)

    def recover(self, method: str) -> None:
        """End `outage(method)`: calls are accepted again."""
        with self._lock:
            self._outages.pop(method, None)

    def stall(self, method: str, count: int = 1) -> None:
        """Hold the next `count` calls of `method` unanswered and unrecorded (Telegram never
        took them) until `stop()`."""
        with self._lock:
            self._stalls[method] = self._stalls.get(method, 0) + count

    def sent(self, method: str = "sendMessage") -> list[dict[str, Any]]:
        """The parameters of every accepted call of `method`, in order."""
        with self._lock:
            return [call.params for call in self.calls if call.method == method]

    def wait_sent(self, count: int, method: str = "sendMessage", timeout: float = 10.0):
        deadline = time.monotonic() + timeout
        while len(self.sent(method)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{method}: {len(self.sent(method))} calls, not {count}")
            time.sleep(0.02)
        return self.sent(method)

    def _handle(self, path: str, content_type: str, body: bytes) -> tuple[int, dict]:
        parts = urlsplit(path)
        _, _, rest = parts.path.partition("/bot")
        token, _, method = rest.partition("/")
        params: dict[str, Any] = dict(parse_qsl(parts.query))
        if body and "json" in content_type:
            params.update(json.loads(body))
        elif body:
            params.update(parse_qsl(body.decode()))
        with self._lock:
            stalled = self._stalls.get(method, 0)
            if stalled:
                self._stalls[method] = stalled - 1
        if stalled:
            with self._lock:
                self.held += 1
            self._released.wait()
            return 503, {"ok": False, "error_code": 503, "description": "stalled"}
        with self._lock:
            outage = self._outages.get(method)
            if outage is not None:
                self.refused += 1
                code, description, retry_after = outage
                answer = {"ok": False, "error_code": code, "description": description}
                if retry_after is not None:
                    answer["parameters"] = {"retry_after": retry_after}
                return code, answer
            errors = self._errors.get(method)
            if errors:
                code, description = errors.pop(0)
                return code, {"ok": False, "error_code": code, "description": description}
            waits = self._refusals.get(method)
            if waits:
                retry_after = waits.pop(0)
                return 429, {"ok": False, "error_code": 429,
                             "description": f"Too Many Requests: retry after {retry_after}",
                             "parameters": {"retry_after": retry_after}}
            self.calls.append(Call(token, method, params))
            return 200, {"ok": True, "result": self._result(method, params)}

    def _result(self, method: str, params: dict[str, Any]) -> Any:
        if method == "getUpdates":
            updates, self.updates = self.updates, []
            return updates
        if method == "setWebhook":
            self.webhook_url = params.get("url", "")
        if method == "deleteWebhook":
            self.webhook_url = ""
        if method == "getWebhookInfo":
            info = {"url": self.webhook_url, "has_custom_certificate": False,
                    "pending_update_count": self.pending_updates}
            if self.webhook_error:
                info.update(last_error_date=int(time.time()),
                            last_error_message=self.webhook_error)
            return info
        if method == "getMe":
            return {"id": 1, "is_bot": True, "first_name": "Kassa", "username": "kassa_bot"}
        if method in ("sendMessage", "editMessageText", "sendPhoto"):
            return {"message_id": next(self._message_ids), "date": int(time.time()),
                    "chat": {"id": int(params.get("chat_id", 0)), "type": "private"},
                    "text": params.get("text", "")}
        return True
