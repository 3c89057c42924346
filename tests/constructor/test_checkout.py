"""The customer's pay page (`pay_url`): on a desktop the QR a phone camera reads, the copy
button and the page turning to "paid" by itself; on a phone the bank-app buttons with the
NSPK link; inside Telegram's in-app browser the offer to open the system browser; an
unknown token is a 404 and a page never shows another order."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from app.checkout.banks import sbp_banks
from app.extensions import db
from app.formatting import format_rubles
from app.models import Order, OrderChannel
from app.orders.services import create_amount_order
from app.sbp.cancelling import cancel_order
from app.sbp.qrcodes import create_dynamic_qr
from tests.admin.page import page as parse
from tests.browser import conftest as browser_tests
from tests.browser.client import watch_csp
from tests.helpers import decode_qr

IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1")
ANDROID_TELEGRAM = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like "
                    "Gecko) Chrome/126.0.6478.122 Mobile Safari/537.36 Telegram-Android/11.2.3 "
                    "(Google Pixel 8; Android 14; SDK 34; HIGH)")
IPHONE_TELEGRAM = IPHONE + " Telegram/11.2"
DESKTOP = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/126.0 Safari/537.36")


def api_order(*, amount: int = 125050, description: str | None = "Букет «Весна»") -> Order:
    """An order as the constructor API makes it: its channel and pay-page token."""
    order = create_amount_order(channel=OrderChannel.API, amount_kopecks=amount,
                                description=description)
    order.checkout_token = secrets.token_urlsafe(32)
    db.session.commit()
    return order


browser = browser_tests.browser  # the fixture: one headless chromium for the module
# Autouse: a test whose pages break the Content-Security-Policy fails.
no_csp_violations = browser_tests.no_csp_violations


@dataclass(frozen=True)
class Qr:
    qr_id: str
    payload: str


@pytest.fixture
def waiting(stack):
    """An API order with a live QR at the sandbox bank: (stack, token, qr)."""
    with stack.app.app_context():
        order = api_order()
        qr = create_dynamic_qr(order.id)
        found = (stack, order.checkout_token, Qr(qr.qr_id, qr.payload))
        db.session.remove()  # the page's server needs SQLite's write lock
    return found


def test_a_desktop_shows_the_qr_copies_the_link_and_turns_paid(waiting, browser):
    stack, token, qr = waiting
    url = f"{stack.web.url}/checkout/{token}"
    context = watch_csp(browser.new_context(user_agent=DESKTOP))
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=stack.web.url)
    tab = context.new_page()
    try:
        tab.goto(url)
        assert tab.get_by_test_id("sum").inner_text() == format_rubles(125050)
        assert tab.get_by_test_id("description").inner_text() == "Букет «Весна»"
        assert tab.get_by_test_id("status").inner_text().startswith("Ждём оплату · до ")
        # What the customer's phone camera reads from the screen is the bank's link.
        assert decode_qr(tab.get_by_test_id("qr").screenshot()) == qr.payload
        assert tab.get_by_test_id("banks").count() == 0  # a desktop has no bank apps

        tab.get_by_role("button", name="Скопировать").click()
        tab.get_by_role("button", name="Скопировано").wait_for()
        assert tab.evaluate("navigator.clipboard.readText()") == url

        stack.pay(qr.qr_id)
        tab.get_by_text("Оплачено").wait_for(timeout=10_000)  # the page polled and reloaded
        assert tab.get_by_test_id("qr").count() == 0
    finally:
        context.close()


def test_a_phone_gets_a_button_per_bank_app_and_still_the_qr(waiting, browser):
    stack, token, qr = waiting
    context = watch_csp(browser.new_context(
        user_agent=IPHONE, viewport={"width": 390, "height": 844}, is_mobile=True))
    tab = context.new_page()
    try:
        tab.goto(f"{stack.web.url}/checkout/{token}")
        assert tab.get_by_test_id("any-bank").get_attribute("href") == qr.payload
        links = tab.locator("a.bank").evaluate_all(
            "links => links.map(a => [a.textContent, a.getAttribute('href')])")
        rest = qr.payload.removeprefix("https")  # ://qr.nspk.ru/AD...?type=02&...
        assert links == [[bank.name, f"{bank.schema}{rest}"] for bank in sbp_banks()]
        assert links[0] == ["Сбербанк", f"bank100000000111{rest}"]
        assert tab.get_by_test_id("telegram").count() == 0
        assert decode_qr(tab.get_by_test_id("qr").screenshot()) == qr.payload
    finally:
        context.close()


@pytest.mark.parametrize(("agent", "opener"), [
    (ANDROID_TELEGRAM, "intent://{rest}#Intent;scheme=http;end"),
    (IPHONE_TELEGRAM, "x-safari-http://{rest}"),
])
def test_telegrams_browser_offers_to_open_the_system_browser(waiting, agent, opener):
    stack, token, qr = waiting
    client = stack.app.test_client()
    html = parse(client.get(f"/checkout/{token}", headers={"User-Agent": agent}))
    notice = html.one(data_testid="telegram")
    assert "не откроется из Telegram" in notice.text
    rest = f"{stack.web.url.removeprefix('http://')}/checkout/{token}"
    assert notice.one("a", data_testid="open-browser").attrs["href"] == opener.format(rest=rest)
    # The QR and the bank buttons stay (T-Bank's app does open from Telegram).
    assert html.one(data_testid="qr").one("svg")
    assert html.one(data_testid="any-bank").attrs["href"] == qr.payload
    assert html.one("input", id="pay-link").attrs["value"] == f"{stack.web.url}/checkout/{token}"


def test_an_unknown_token_is_not_found_and_no_other_key_opens_a_page(app):
    order = api_order()
    client = app.test_client()
    for token in ("x" * 43, order.public_id, str(order.id), order.checkout_token + "A"):
        response = client.get(f"/checkout/{token}")
        assert response.status_code == 404
        assert "Платёж не найден" in response.get_data(as_text=True)
        assert format_rubles(125050) not in response.get_data(as_text=True)
        assert client.get(f"/checkout/{token}/status").status_code == 404
    response = client.get(f"/checkout/{order.checkout_token}")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_a_qr_not_made_yet_waits_and_a_cancelled_payment_says_so(app):
    order = api_order(description=None)  # the bank was slow: the QR comes later
    client = app.test_client()
    html = parse(client.get(f"/checkout/{order.checkout_token}"))
    assert html.one(data_testid="status").text == "Готовим QR-код…"
    assert html.one(data_testid="checkout").attrs["data-poll"].endswith("/status")
    assert not html.testid("qr") and not html.testid("description")
    assert client.get(f"/checkout/{order.checkout_token}/status").json == {
        "ok": True, "state": "new"}

    cancel_order(order.id)
    html = parse(client.get(f"/checkout/{order.checkout_token}"))
    assert html.one(data_testid="status").text == "Платёж отменён"
    assert "data-poll" not in html.one(data_testid="checkout").attrs
    assert not html.testid("copy")
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Order)) == 1
