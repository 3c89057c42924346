"""Response headers every page gets.

- A strict Content-Security-Policy: scripts, styles, fonts and fetches only from our own
  origin (the vendored htmx and telegram-web-app.js included), no inline script or style,
  no eval, no plugins; images also from data: and blob: URLs (the QR print page, the photo
  previews). Templates therefore carry no `style=` attribute, no `on...=` handler, no
  inline `<script>`/`<style>`, and htmx is told not to inject its indicator styles nor to
  eval (the htmx-config meta of templates/admin/base.html and templates/_tma/shell.html).
- Who may frame a page: Telegram's web clients show the Mini Apps (the till, the shop) in a
  frame, so those may be framed by Telegram; nothing else of Kassa may be framed by anyone
  (the admin panel's buttons must not be clicked through someone else's page).
- No MIME sniffing, referrers kept to our origin, no camera/microphone/geolocation.
- HSTS when PUBLIC_URL is https (production requires it).
- `Cache-Control: no-store` on the admin panel's pages and the constructor API's answers:
  they carry personal data and secrets (an API key is shown once) that no shared or back-
  button cache should keep. A view that sets its own Cache-Control keeps it.
- `Content-Disposition: attachment; filename="api.json"` on the constructor API's JSON
  answers (ASVS 14.4.2): a browser that is sent to one saves it instead of rendering it.
  The OpenAPI document is left to be read in a browser. A view that sets its own keeps it.

The sandbox is a separate app (app/sandbox) and gets none of this.
"""

from __future__ import annotations

from flask import Flask, Response, current_app, request

#: The blueprints whose pages Telegram opens as Mini Apps.
MINI_APPS = frozenset({"miniapp", "storefront"})
#: Telegram Web (web.telegram.org/k/, /a/) and its other web clients frame Mini Apps.
TELEGRAM_FRAMERS = "https://web.telegram.org https://*.telegram.org"

#: Everything but frame-ancestors, the same for every page.
BASE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; "
    "object-src 'none'; base-uri 'self'; form-action 'self'"
)
MINI_APP_POLICY = f"{BASE_POLICY}; frame-ancestors 'self' {TELEGRAM_FRAMERS}"
DEFAULT_POLICY = f"{BASE_POLICY}; frame-ancestors 'none'"

PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=()"
#: One year; subdomains are not ours to speak for.
HSTS = "max-age=31536000"

#: Answers that no cache may keep: the admin panel and the constructor API.
NO_STORE_BLUEPRINTS = frozenset({"admin"})
NO_STORE_PREFIXES = ("/admin/", "/api/")
#: The API's JSON answers are downloads, not pages (but for the OpenAPI document).
API_PREFIX = "/api/"
API_DISPOSITION = 'attachment; filename="api.json"'


def init_app(app: Flask) -> None:
    app.after_request(security_headers)


def security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
    if request.blueprint in MINI_APPS:
        headers.setdefault("Content-Security-Policy", MINI_APP_POLICY)
    else:
        headers.setdefault("Content-Security-Policy", DEFAULT_POLICY)
        headers.setdefault("X-Frame-Options", "DENY")
    if current_app.config.get("PUBLIC_URL", "").startswith("https://"):
        headers.setdefault("Strict-Transport-Security", HSTS)
    if request.endpoint != "static" and "Cache-Control" not in headers and (
            request.blueprint in NO_STORE_BLUEPRINTS
            or request.path.startswith(NO_STORE_PREFIXES)):
        headers["Cache-Control"] = "no-store"
    if (request.path.startswith(API_PREFIX) and response.is_json
            and not request.path.endswith("/openapi.json")):
        headers.setdefault("Content-Disposition", API_DISPOSITION)
    return response
