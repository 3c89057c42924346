"""Who may frame which page: Telegram's web clients frame the Mini Apps; nobody frames the
admin panel or anything else. Every answer says nosniff and keeps referrers to our origin."""

from __future__ import annotations

import pytest

from app.security import TELEGRAM_FRAMERS


@pytest.mark.parametrize("path", ["/miniapp/", "/shop/"])
def test_telegram_may_frame_the_mini_apps(app, path):
    response = app.test_client().get(path)
    assert response.status_code == 200
    assert response.headers["Content-Security-Policy"] == (
        f"frame-ancestors 'self' {TELEGRAM_FRAMERS}")
    assert "X-Frame-Options" not in response.headers
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("path", ["/admin/login", "/admin/register", "/healthz",
                                  "/checkout/not-a-token-at-all-here"])
def test_nothing_else_may_be_framed(app, path):
    response = app.test_client().get(path)
    assert response.headers["Content-Security-Policy"] == "frame-ancestors 'none'"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] in ("strict-origin-when-cross-origin",
                                                   "no-referrer")
