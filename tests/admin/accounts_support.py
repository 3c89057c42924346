"""Helpers of the accounts tests: a movable clock, a login as a browser posts it, and the
CSRF token a page carries."""

from __future__ import annotations

import html
import re
from datetime import timedelta

from app.models import utcnow
from tests.admin.conftest import PASSWORD


class Clock:
    """The accounts services' idea of now, moved by the test (monkeypatch it in)."""

    def __init__(self):
        self.now = utcnow()

    def __call__(self):
        return self.now

    def advance(self, **delta):
        self.now += timedelta(**delta)


def log_in(client, email="owner@example.com", password=PASSWORD, ip="203.0.113.7",
           next_url=None, **request):
    return client.post("/admin/login", query_string={"next": next_url} if next_url else None,
                       data={"email": email, "password": password},
                       environ_base={"REMOTE_ADDR": ip}, **request)


def is_logged_in(client) -> bool:
    return client.get("/admin/").status_code == 200


def csrf_token(page: str) -> str:
    """The token of the page's <meta name="csrf-token">, as htmx and the forms send it."""
    return html.unescape(re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1))


def form_action(page: str, contains: str = "") -> str:
    """The action of the first form whose action contains `contains`."""
    for action in re.findall(r'<form[^>]*action="([^"]+)"', page):
        if contains in action:
            return html.unescape(action)
    raise AssertionError(f"no form with {contains!r} on the page")


def cheap_unknown_logins(monkeypatch) -> None:
    """Check unknown emails against a low-cost scrypt hash: tests that fail twenty logins
    count failures, they need not pay twenty full hashes."""
    from werkzeug.security import generate_password_hash

    from app.admin import services

    cheap = generate_password_hash("unknown", method="scrypt:1024:8:1")
    monkeypatch.setattr(services, "dummy_hash", lambda: cheap)
