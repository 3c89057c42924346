"""Response headers every page gets: no MIME sniffing, referrers kept to our origin, and who
may frame a page. Telegram's web clients show the Mini Apps (the till, the shop) in a frame,
so those may be framed by Telegram; nothing else of Kassa may be framed by anyone (the admin
panel's buttons must not be clicked through someone else's page)."""

from __future__ import annotations

from flask import Flask, Response, request

#: The blueprints whose pages Telegram opens as Mini Apps.
MINI_APPS = frozenset({"miniapp", "storefront"})
#: Telegram Web (web.telegram.org/k/, /a/) and its other web clients frame Mini Apps.
TELEGRAM_FRAMERS = "https://web.telegram.org https://*.telegram.org"


def init_app(app: Flask) -> None:
    app.after_request(security_headers)


def security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    if request.blueprint in MINI_APPS:
        headers.setdefault("Content-Security-Policy",
                           f"frame-ancestors 'self' {TELEGRAM_FRAMERS}")
    else:
        headers.setdefault("Content-Security-Policy", "frame-ancestors 'none'")
        headers.setdefault("X-Frame-Options", "DENY")
    return response
