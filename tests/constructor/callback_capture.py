"""A constructor's side of a callback, on loopback: records every request (method, path,
query, headers, raw body) and answers as scripted, so a test sees exactly what went out.
Also the API clients and API orders the callback tests need, made directly in the database."""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass, field
from hashlib import sha256
from urllib.parse import parse_qsl

import pytest
from werkzeug.wrappers import Request, Response

from app.extensions import db
from app.models import ApiClient, CallbackPreset, OrderChannel
from app.orders.services import Line, create_order
from tests.helpers import LiveServer, wait_for

CART = [Line(name="Капучино", price_kopecks=15000, quantity_milli=2000),
        Line(name="Круассан", price_kopecks=9950)]


@dataclass
class Captured:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode()))


@dataclass
class Capture:
    """Answers 200 with `{"code": 0}` (PuzzleBot's "done"; others ignore it) unless a path
    has scripted answers left; BotHelp's token endpoint hands out tokens."""

    requests: list[Captured] = field(default_factory=list)
    scripts: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: LiveServer | None = None
    tokens_issued: int = 0
    # Called with each request before it is answered (the client is still waiting).
    on_request: object = None

    @property
    def url(self) -> str:
        return self.server.url

    def script(self, path: str, *answers: tuple[int, str] | int) -> None:
        self.scripts[path] = [(a, "") if isinstance(a, int) else a for a in answers]

    def to(self, path: str) -> list[Captured]:
        return [r for r in self.requests if r.path == path]

    def wait(self, count: int, path: str | None = None) -> list[Captured]:
        wait_for(lambda: len(self.to(path) if path else self.requests) >= count)
        return self.to(path) if path else list(self.requests)

    def __call__(self, environ, start_response):
        request = Request(environ)
        body = request.get_data()
        if self.on_request is not None:
            self.on_request()
        with self.lock:
            self.requests.append(Captured(request.method, request.path,
                                          dict(request.args.items()), dict(request.headers),
                                          body))
            script = self.scripts.get(request.path)
            answer = script.pop(0) if script else None
            if answer is None and request.path == "/oauth2/token":
                self.tokens_issued += 1
                answer = (200, json.dumps({"access_token": f"TOK{self.tokens_issued}",
                                           "token_type": "Bearer", "expires_in": 3600}))
        status, text = answer or (200, '{"code": 0}')
        return Response(text, status=status, content_type="application/json")(
            environ, start_response)


@pytest.fixture
def capture():
    sink = Capture()
    sink.server = LiveServer(sink)
    yield sink
    sink.server.stop()


def make_client(preset: str, *, settings: dict | None = None, callback_url: str | None = None,
                name: str = "бот") -> int:
    """An API client row (part A's service makes them in the product); its id."""
    key = secrets.token_hex(16)
    client = ApiClient(name=name, key_hash=sha256(key.encode()).hexdigest(),
                       key_prefix=key[:8], preset=CallbackPreset(preset),
                       callback_url=callback_url, settings=settings or {})
    db.session.add(client)
    db.session.commit()
    return client.id


def make_api_order(client_id: int | None, *, client_ref: str | None = "777",
                   external_id: str | None = "A-1", channel=OrderChannel.API):
    """An order of CART as the API would make it for `client_id`."""
    order = create_order(channel=channel, lines=CART)
    order.api_client_id = client_id
    order.client_ref = client_ref
    order.external_id = external_id
    order.checkout_token = secrets.token_urlsafe(24) if client_id else None
    db.session.commit()
    return order
