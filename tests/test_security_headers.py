"""The headers every answer carries: a strict Content-Security-Policy (our own scripts and
styles only, no inline code, no eval), who may frame which page (Telegram's web clients frame
the Mini Apps; nobody frames the admin panel or anything else), nosniff, referrers kept to
our origin, no camera/microphone/geolocation, HSTS behind https, and no caching of the
panel and the API. The browser tests (tests/browser) check that the pages break no part of
the policy."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.qrimage import inline_svg
from app.security import TELEGRAM_FRAMERS

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; "
          "img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; "
          "object-src 'none'; base-uri 'self'; form-action 'self'")


@pytest.mark.parametrize("path", ["/miniapp/", "/shop/"])
def test_telegram_may_frame_the_mini_apps(app, path):
    response = app.test_client().get(path)
    assert response.status_code == 200
    assert response.headers["Content-Security-Policy"] == (
        f"{POLICY}; frame-ancestors 'self' {TELEGRAM_FRAMERS}")
    assert "X-Frame-Options" not in response.headers
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("path", ["/admin/login", "/admin/register", "/healthz",
                                  "/checkout/not-a-token-at-all-here", "/api/v1/openapi.json"])
def test_nothing_else_may_be_framed(app, path):
    response = app.test_client().get(path)
    assert response.headers["Content-Security-Policy"] == f"{POLICY}; frame-ancestors 'none'"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] in ("strict-origin-when-cross-origin",
                                                   "no-referrer")


@pytest.mark.parametrize("path", ["/admin/login", "/miniapp/", "/checkout/not-a-token-here"])
def test_no_page_may_use_the_camera_microphone_or_location(app, path):
    response = app.test_client().get(path)
    assert response.headers["Permissions-Policy"] == (
        "camera=(), microphone=(), geolocation=()")


def test_https_deployments_ask_browsers_to_stay_on_https(make_app):
    response = make_app(PUBLIC_URL="https://kassa.example.ru").test_client().get("/admin/login")
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"


def test_plain_http_development_gets_no_hsts(make_app):
    response = make_app(PUBLIC_URL="http://127.0.0.1:5000").test_client().get("/admin/login")
    assert "Strict-Transport-Security" not in response.headers


@pytest.mark.parametrize("path", ["/admin/login", "/admin/register", "/admin/",
                                  "/api/v1/openapi.json", "/api/v1/payments/1"])
def test_the_panel_and_the_api_are_never_cached(app, path):
    assert app.test_client().get(path).headers["Cache-Control"] == "no-store"


def test_static_files_stay_cacheable(app):
    client = app.test_client()
    page = client.get("/admin/login").get_data(as_text=True)
    css = re.search(r'href="(/static/admin/admin\.css\?v=[0-9a-f]+)"', page).group(1)
    with client.get(css) as response:
        assert response.status_code == 200
        assert "no-store" not in response.headers.get("Cache-Control", "")
        assert "max-age=31536000" in response.headers["Cache-Control"]


@pytest.mark.parametrize("path", ["/admin/login", "/miniapp/", "/shop/"])
def test_htmx_is_told_to_inject_no_style_and_eval_nothing(app, path):
    page = app.test_client().get(path).get_data(as_text=True)
    assert ('<meta name="htmx-config" content=\'{"includeIndicatorStyles": false, '
            '"allowEval": false, "allowScriptTags": false}\'>') in page


# What the policy would block in a page of ours: style attributes, inline handlers, inline
# <script> or <style> elements, htmx's hx-on (eval) and javascript: URLs. The sandbox is a
# separate app without the policy.
BLOCKED = re.compile(r"""\sstyle\s*=|\son[a-z]+\s*=|<script(?![^>]*\ssrc=)[^>]*>|<style[\s>]|"""
                     r"""\shx-on[:-]|javascript:""", re.IGNORECASE)


def test_no_template_carries_what_the_policy_blocks():
    found = []
    for template in sorted(TEMPLATES.rglob("*.html")):
        if template.parent.name == "sandbox":
            continue
        text = re.sub(r"\{#.*?#\}", "", template.read_text(), flags=re.S)  # Jinja comments
        found += [f"{template.relative_to(TEMPLATES)}: {m.group(0).strip()}"
                  for m in BLOCKED.finditer(text)]
    assert found == []


def test_the_inline_qr_is_drawn_with_presentation_attributes_only():
    svg = str(inline_svg("https://qr.nspk.ru/AD10006M8KH3K5GS8KQ9OGS0VVSGE3SE?type=02"))
    assert svg.startswith("<svg ")
    assert "style" not in svg
    assert 'fill="#000000"' in svg


def test_api_answers_are_downloads_not_pages(app):
    from app.constructor.clients import create_client

    client = app.test_client()
    key = create_client("shop")[1]
    created = client.post("/api/v1/payments", json={"amount": "10.00", "order_id": "CD-1"},
                          headers={"Authorization": f"Bearer {key}"})
    refused = client.get("/api/v1/payments/nope")  # no key: a JSON 401
    assert (created.status_code, refused.status_code) == (201, 401)
    for response in (created, refused):
        assert response.is_json, response.status_code
        assert response.headers["Content-Disposition"] == 'attachment; filename="api.json"'
    # The OpenAPI document may be read in a browser; pages outside the API are pages.
    assert "Content-Disposition" not in client.get("/api/v1/openapi.json").headers
    assert "Content-Disposition" not in client.get("/admin/login").headers
