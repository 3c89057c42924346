"""Who may shop: any Telegram user our bot signed initData for, while the storefront is on.
Refusals are a 403 screen with a code; demo mode only in development without a bot."""

from __future__ import annotations

import gzip
import re

from app.storefront.settings import set_storefront
from tests.storefront.conftest import OLGA, TOKEN, Customer, seed_shop

GZIP = {"Accept-Encoding": "gzip, deflate, br, zstd"}


def test_any_telegram_user_may_browse_the_shop(shop):
    screen = Customer(shop, 424242).get("/catalog")
    assert (screen.status, screen.name) == (200, "catalog")
    assert not screen.testid("demo-banner")


def test_the_shop_is_closed_when_the_storefront_is_off(shop):
    with shop.app_context():
        set_storefront(False)
    for url in ("/catalog", f"/products/{shop.products['tea']}", "/orders"):
        screen = Customer(shop, OLGA).get(url)
        assert (screen.status, screen.name, screen.attrs["data-code"]) == (
            403, "refused", "storefront_off")
        assert "не принимает заказы" in screen.text_of("message")
    screen = Customer(shop, OLGA).post("/orders", {"product_id": "1", "qty": "1"})
    assert (screen.status, screen.attrs["data-code"]) == (403, "storefront_off")


def test_bad_or_stale_init_data_is_refused(shop):
    cases = {
        "missing": Customer(shop, None),
        "bad_hash": Customer(shop, OLGA, token="7000000009:AAanother-bot"),
        "expired": Customer(shop, OLGA, age=2 * 24 * 3600),
    }
    for code, customer in cases.items():
        screen = customer.get("/catalog")
        assert (screen.status, screen.name, screen.attrs["data-code"]) == (403, "refused", code)
        assert screen.text_of("message")


def test_without_a_bot_the_shop_is_refused_outside_development(make_app):
    app = make_app(TELEGRAM_BOT_TOKEN=None)
    seed_shop(app)
    screen = Customer(app, OLGA).get("/catalog")
    assert (screen.status, screen.attrs["data-code"]) == (403, "bot_off")


def test_development_without_a_bot_opens_as_the_demo_customer(make_app):
    app = make_app(APP_ENV="development", TELEGRAM_BOT_TOKEN=None)
    ids = seed_shop(app)
    customer = Customer(app, None)
    catalog = customer.get("/catalog")
    assert catalog.name == "catalog"
    assert "Демо-покупателя" in catalog.text_of("demo-banner")
    # Development keeps CSRF on for forms; the shop is exempt (signed by Telegram).
    cart = customer.post("/cart", {"product_id": str(ids["tea"]), "qty": "1"})
    assert (cart.status, cart.name) == (200, "cart")


def test_a_bot_in_development_means_no_demo(make_app):
    app = make_app(APP_ENV="development", TELEGRAM_BOT_TOKEN=TOKEN)
    seed_shop(app)
    screen = Customer(app, None).get("/catalog")
    assert (screen.status, screen.attrs["data-code"]) == (403, "missing")


def test_the_first_load_is_small_and_its_assets_are_cached(shop):
    client = shop.test_client()
    shell = client.get("/shop/", headers=GZIP)
    assert shell.status_code == 200
    assert shell.headers["Content-Encoding"] == "gzip"
    html = gzip.decompress(shell.get_data()).decode()
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert [a.split("?")[0] for a in assets] == [
        "/static/vendor/telegram-web-app-8.0.js", "/static/vendor/htmx-2.0.11.min.js",
        "/static/common/tma.js", "/static/storefront/shop.js", "/static/common/tma.css",
        "/static/storefront/shop.css"]
    assert all(re.search(r"\?v=[0-9a-f]{12}$", a) for a in assets)
    wire = len(shell.get_data())
    for url in assets:
        with client.get(url, headers=GZIP) as response:
            assert response.headers["Content-Encoding"] == "gzip"
            assert "immutable" in response.headers["Cache-Control"]
            wire += len(response.get_data())
    catalog = client.get("/shop/catalog", headers={
        **GZIP, "Authorization": Customer(shop, OLGA).headers["Authorization"],
        "HX-Request": "true"})
    assert catalog.status_code == 200
    wire += len(catalog.get_data())
    assert wire < 100 * 1024, wire
