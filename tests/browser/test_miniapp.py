"""The cashier's Mini App in headless chromium, opened as a Telegram Android client opens
it, against Kassa, the sandbox bank and register over real HTTP. Each flow runs in the
light and the dark theme and leaves screenshots in KASSA_ARTIFACTS."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from app.catalog.services import create_product
from app.extensions import db
from app.fiscal.views import receipt_url
from app.models import Order, OrderStatus, Payment, QrCode, Receipt, utcnow
from app.money import format_rubles
from app.sbp import reconciliation
from tests.browser.client import STRANGER_TELEGRAM_ID, launch_url
from tests.browser.conftest import CHEESE_PRICE, TEA_PRICE
from tests.helpers import decode_qr, wait_for

pytestmark = pytest.mark.slow

THEMES = ["light", "dark"]
COUNTDOWN = re.compile(r"^\d{1,2}:[0-5]\d$")


def _product(client, product_id: int):
    return client.page.locator(f'[data-testid="product"][data-product-id="{product_id}"]')


def _add(client, product_id: int) -> None:
    _product(client, product_id).locator('[data-testid="add"]').click()


def _latest_qr(shop, order_id: int) -> QrCode:
    with shop.stack.app.app_context():
        qr = db.session.scalars(sa.select(QrCode).where(QrCode.order_id == order_id)
                                .order_by(QrCode.id.desc())).first()
        db.session.expunge(qr)
        return qr


def _bank_qr(shop, qr_id: str) -> dict:
    return next(q for q in shop.stack.bank_state()["qrs"] if q["qrId"] == qr_id)


def _to_qr_screen(client, shop) -> int:
    """One tea into the cart, to the QR screen; the order's id."""
    client.wait_screen("catalog")
    _add(client, shop.tea_id)
    client.wait_main_button(f"Корзина · {format_rubles(TEA_PRICE)}")
    client.press_main_button()
    client.wait_screen("cart")
    client.wait_main_button(f"Оплатить {format_rubles(TEA_PRICE)}")
    client.press_main_button()
    screen = client.wait_screen("qr")
    return int(screen.get_attribute("data-order-id"))


def _answer_cancel_confirmation(client) -> None:
    """Agree to cancel, whether the Mini App asks through Telegram's popup or not at all."""
    popups = client.events("web_app_open_popup")
    if popups:
        buttons = popups[-1]["buttons"]
        agree = next((b for b in buttons if b.get("type") in ("destructive", "ok", "default")),
                     buttons[0])
        client.page.evaluate("(id) => Telegram.WebView.receiveEvent('popup_closed', "
                             "{button_id: id})", agree.get("id", ""))


@pytest.mark.parametrize("theme", THEMES)
def test_sale_paid_by_qr_shows_success_with_receipt(shop, open_client, theme):
    client = open_client(launch_url(shop.url, theme=theme), theme)
    page = client.page
    client.wait_screen("catalog")
    expect(_product(client, shop.tea_id)).to_contain_text("Чай улун")
    expect(_product(client, shop.tea_id)).to_contain_text(format_rubles(TEA_PRICE))
    assert not client.main_button()["is_visible"]  # an empty cart: nothing to pay
    client.screenshot("catalog")

    _add(client, shop.tea_id)
    _add(client, shop.cheese_id)  # 1 kg to begin with
    expect(page.locator('[data-testid="cart-count"]')).to_contain_text("2")
    client.wait_main_button(f"Корзина · {format_rubles(TEA_PRICE + CHEESE_PRICE)}")
    assert {"type": "impact", "impact_style": "light"} in client.haptics()

    client.press_main_button()
    client.wait_screen("cart")
    client.wait_back_button(True)
    cheese = page.locator(f'[data-testid="line"][data-product-id="{shop.cheese_id}"]')
    qty = cheese.locator('[data-testid="qty"]')
    assert qty.get_attribute("step") == "0.001"
    qty.fill("0.35")
    qty.dispatch_event("change")
    total = TEA_PRICE + CHEESE_PRICE * 350 // 1000  # 250,00 + 311,50
    expect(page.locator('[data-testid="total"]')).to_have_text(format_rubles(total))
    client.wait_main_button(f"Оплатить {format_rubles(total)}")
    client.screenshot("cart")

    client.press_main_button()
    screen = client.wait_screen("qr")
    order_id = int(screen.get_attribute("data-order-id"))
    expect(page.locator('[data-testid="sum"]')).to_have_text(format_rubles(total))
    countdown = page.locator('[data-testid="countdown"]')
    first = countdown.inner_text().strip()
    assert COUNTDOWN.match(first), first
    expect(countdown).not_to_have_text(first, timeout=2500)  # it counts down
    client.wait_main_button(visible=False)
    client.wait_closing_confirmation(True)
    client.screenshot("qr")

    qr = _latest_qr(shop, order_id)
    assert decode_qr(client.qr_png()) == qr.payload  # what the customer's phone reads
    assert _bank_qr(shop, qr.qr_id)["amount"] == f"{total // 100}.{total % 100:02d}"
    with shop.stack.app.app_context():
        order = db.session.get(Order, order_id)
        assert order.cashier_id == shop.cashier_id
        assert sorted(i.quantity_milli for i in order.items) == [350, 1000]

    shop.stack.pay(qr.qr_id)
    paid_at = time.monotonic()
    client.wait_screen("paid", timeout=3)
    assert time.monotonic() - paid_at < 3
    expect(page.locator('#screen [data-screen="paid"]')).to_contain_text(format_rubles(total))
    client.wait_closing_confirmation(False)
    assert {"type": "notification", "notification_type": "success"} in client.haptics()
    client.wait_main_button("Новая продажа")

    with shop.stack.app.app_context():
        def receipt():
            return db.session.scalars(sa.select(Receipt).join(Payment).join(QrCode)
                                      .where(QrCode.order_id == order_id)).first()
        url = receipt_url(wait_for(receipt))
    expect(page.locator('a[data-testid="receipt"]')).to_have_attribute("href", url,
                                                                         timeout=5000)
    client.screenshot("paid")

    client.press_main_button()
    client.wait_screen("catalog")
    client.wait_main_button(visible=False)  # a new sale starts with an empty cart


@pytest.mark.parametrize("theme", THEMES)
def test_expired_qr_is_replaced_in_one_tap(shop, open_client, theme, monkeypatch):
    from app.sandbox import clock

    client = open_client(launch_url(shop.url, theme=theme), theme)
    order_id = _to_qr_screen(client, shop)
    old = _latest_qr(shop, order_id)
    old_payload = decode_qr(client.qr_png())
    assert old_payload == old.payload

    # Both clocks past the QR's TTL (ours and the bank's), then the reconciler's pass.
    with shop.stack.app.app_context():
        db.session.execute(sa.update(QrCode).where(QrCode.id == old.id)
                           .values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    real_now = clock.now
    monkeypatch.setattr(clock, "now", lambda: real_now() + timedelta(minutes=11))
    with shop.stack.app.app_context():
        reconciliation.reconcile()
        assert db.session.get(Order, order_id).status == OrderStatus.EXPIRED
    monkeypatch.setattr(clock, "now", real_now)  # the bank takes the next QR's TTL again

    expired = client.wait_screen("expired", timeout=3)
    expect(expired).to_contain_text("QR-код истёк")
    client.wait_main_button("Новый QR-код")
    client.wait_closing_confirmation(False)
    client.screenshot("expired")

    client.press_main_button()
    client.wait_screen("qr")
    new = wait_for(lambda: (qr := _latest_qr(shop, order_id)).id != old.id and qr)
    new_payload = decode_qr(client.qr_png())
    assert new_payload == new.payload
    assert new_payload != old_payload
    assert _bank_qr(shop, new.qr_id)["qrStatus"] == "NEW"
    client.wait_closing_confirmation(True)


def test_cancel_from_the_qr_screen_cancels_the_bank_qr(shop, open_client):
    client = open_client(launch_url(shop.url))
    client.page.on("dialog", lambda dialog: dialog.accept())  # should it ask with confirm()
    order_id = _to_qr_screen(client, shop)
    client.wait_closing_confirmation(True)
    qr = _latest_qr(shop, order_id)

    client.page.locator('[data-testid="cancel"]').click()
    _answer_cancel_confirmation(client)
    client.wait_screen("cancelled")
    client.wait_closing_confirmation(False)
    with shop.stack.app.app_context():
        assert db.session.get(Order, order_id).status == OrderStatus.CANCELLED
    assert _bank_qr(shop, qr.qr_id)["qrStatus"] == "CANCELLED"


@pytest.mark.parametrize("theme", THEMES)
def test_stranger_sees_refusal_with_their_telegram_id(shop, open_client, theme):
    client = open_client(launch_url(shop.url, STRANGER_TELEGRAM_ID, theme=theme), theme)
    refused = client.wait_screen("refused")
    assert refused.get_attribute("data-code") == "not_cashier"
    expect(refused).to_contain_text(str(STRANGER_TELEGRAM_ID))
    assert client.page.locator('[data-testid="product"]').count() == 0
    assert {"type": "notification", "notification_type": "error"} in client.haptics()
    client.screenshot("refused")


def test_stale_launch_data_is_refused(shop, open_client):
    two_days_ago = time.time() - 2 * 24 * 3600
    client = open_client(launch_url(shop.url, auth_date=two_days_ago))
    refused = client.wait_screen("refused")
    assert refused.get_attribute("data-code") == "expired"
    expect(refused).to_contain_text("Вход устарел")
    assert client.page.locator('[data-testid="product"]').count() == 0


def test_demo_mode_in_a_plain_browser(make_stack, open_client):
    stack = make_stack(APP_ENV="development", TELEGRAM_BOT_TOKEN=None)
    with stack.app.app_context():
        tea = create_product(name="Чай улун", price_kopecks=TEA_PRICE)
    client = open_client(f"{stack.web.url}/miniapp/", telegram=False)
    page = client.page
    client.wait_screen("catalog")
    expect(page.locator('[data-testid="demo-banner"]')).to_contain_text("Демо-режим")

    page.locator(f'[data-testid="product"][data-product-id="{tea.id}"] '
                 f'[data-testid="add"]').click()
    primary = page.locator('button[data-testid="primary"]')
    expect(primary).to_have_text(f"Корзина · {format_rubles(TEA_PRICE)}")
    primary.click()
    client.wait_screen("cart")
    expect(page.locator('[data-testid="demo-banner"]')).to_be_visible()
    expect(primary).to_have_text(f"Оплатить {format_rubles(TEA_PRICE)}")
    primary.click()
    client.wait_screen("qr")
    expect(page.locator('[data-testid="sum"]')).to_have_text(format_rubles(TEA_PRICE))
