"""Who may open the till: refusals are a 403 screen the cashier can act on; demo mode only
in development without a bot token."""

from __future__ import annotations

import secrets

import pytest

from app.people.services import disable_staff
from tests.miniapp.conftest import ANNA, STRANGER, TOKEN, Phone


def test_the_shell_is_served_to_anyone_and_loads_telegram_first(till):
    page = till.test_client().get("/miniapp/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    scripts = [html.index(name) for name in ("telegram-web-app-8.0.js", "htmx-2.0.11.min.js",
                                             "miniapp/miniapp.js", "miniapp/miniapp.css")]
    assert scripts == sorted(scripts)
    assert 'id="screen"' in html and "Капучино" not in html


@pytest.mark.parametrize(("signing", "code"), [
    (None, "missing"),
    ({"token": "7000000002:AAother-bot"}, "bad_hash"),
    ({"age": 2 * 24 * 3600}, "expired"),
])
def test_a_request_our_bot_did_not_sign_sees_why(till, signing, code):
    phone = Phone(till, None) if signing is None else Phone(till, ANNA, **signing)
    screen = phone.get("/miniapp/catalog")
    assert (screen.status, screen.name, screen.attrs["data-code"]) == (403, "refused", code)
    assert "Касса недоступна" in screen.text
    assert "Капучино" not in screen.text


def test_a_stranger_sees_their_telegram_id_and_whom_to_ask(till):
    screen = Phone(till, STRANGER).post("/miniapp/cart", {"product_id": "1", "qty": "1"})
    assert (screen.status, screen.name, screen.attrs["data-code"]) == (403, "refused",
                                                                       "not_cashier")
    assert str(STRANGER) in screen.text_of("message")
    assert "менеджер" in screen.text_of("message")


def test_a_disabled_cashier_is_refused(till):
    assert Phone(till, ANNA).get("/miniapp/catalog").name == "catalog"
    with till.app_context():
        disable_staff(ANNA)
    screen = Phone(till, ANNA).get("/miniapp/catalog")
    assert (screen.status, screen.attrs["data-code"]) == (403, "not_cashier")
    assert str(ANNA) in screen.text


PRODUCTION = {
    "APP_ENV": "production", "SECRET_KEY": secrets.token_hex(32),
    "PUBLIC_URL": "https://shop.example.ru", "RAIFFEISEN_API_URL": "https://pay.example.ru",
    "RAIFFEISEN_SBP_MERCHANT_ID": "MA0000000001", "RAIFFEISEN_SECRET_KEY": secrets.token_hex(16),
    "TELEGRAM_API_URL": "https://telegram.example.ru", "FISCAL_PROVIDER": "none",
}


@pytest.mark.parametrize("config", [{"APP_ENV": "testing"}, PRODUCTION],
                         ids=["testing", "production"])
def test_without_a_bot_token_only_development_has_a_demo(make_app, config):
    app = make_app(**{**config, "TELEGRAM_BOT_TOKEN": None})
    screen = Phone(app, None).get("/miniapp/catalog")
    assert (screen.status, screen.name, screen.attrs["data-code"]) == (403, "refused", "bot_off")
    assert not screen.testid("demo-banner")


def test_development_without_a_token_opens_as_the_demo_cashier(make_app):
    from app.demo import seed

    app = make_app(APP_ENV="development", TELEGRAM_BOT_TOKEN=None)
    with app.app_context():
        seed()
    phone = Phone(app, None)
    catalog = phone.get("/miniapp/catalog")
    assert catalog.name == "catalog"
    assert "Демо-режим" in catalog.text_of("demo-banner")
    assert catalog.testid("new-product"), "the demo cashier may edit the catalog"
    assert "Капучино 300 мл" in catalog.text
    # Development keeps CSRF on for forms; the Mini App is exempt (signed by Telegram).
    product_id = catalog.testid("product")[0].attrs["data-product-id"]
    cart = phone.post("/miniapp/cart", {"product_id": product_id, "qty": "2"})
    assert (cart.status, cart.name) == (200, "cart")
    assert cart.testid("demo-banner")


def test_a_token_in_development_means_no_demo(make_app):
    app = make_app(APP_ENV="development", TELEGRAM_BOT_TOKEN=TOKEN)
    screen = Phone(app, None).get("/miniapp/catalog")
    assert (screen.status, screen.attrs["data-code"]) == (403, "missing")
