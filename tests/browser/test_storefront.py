"""The customer's shop in headless chromium, opened as a Telegram Android client opens it,
against Kassa, the sandbox bank and register over real HTTP: browse, add to the cart, close
and reopen (the cart is kept), share the phone through Telegram, pay in the sandbox, see it
paid. Runs in the light and the dark theme and leaves storefront-*.png screenshots."""

from __future__ import annotations

import json
import time
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from app.catalog.services import create_product
from app.extensions import db
from app.models import Category, Order, Product, QrCode
from app.money import format_rubles
from app.storefront.settings import update_settings
from tests.browser.client import BOT_TOKEN, Client, launch_url, new_context

pytestmark = pytest.mark.slow

THEMES = ["light", "dark"]
CUSTOMER = 700777
TEA_PRICE = 25000
PHONE = "79161234567"  # as Telegram shares it: no "+"


@pytest.fixture
def storefront(make_stack, fakebot):
    """Kassa with a bot, the storefront on, three published products (one sold out), and
    a worker for the receipts."""
    stack = make_stack(TELEGRAM_BOT_TOKEN=BOT_TOKEN, TELEGRAM_API_URL=fakebot.url)
    with stack.app.app_context():
        tea_cat = Category(name="Чай", position=1)
        db.session.add(tea_cat)
        db.session.commit()
        tea = create_product(name="Чай улун", price_kopecks=TEA_PRICE)
        honey = create_product(name="Мёд гречишный", price_kopecks=90000, measure="kilogram")
        mug = create_product(name="Кружка", price_kopecks=50000)
        stack.products = {"tea": tea.id, "honey": honey.id, "mug": mug.id}
        db.session.execute(sa.update(Product).values(is_published=True, category_id=tea_cat.id))
        db.session.execute(sa.update(Product).where(Product.id == mug.id)
                           .values(stock_milli=0, category_id=None))
        db.session.commit()
        update_settings(storefront_enabled=True, pickup_enabled=True,
                        pickup_address="ул. Ленина, 1", welcome_text="Свежий чай и мёд")
    stack.start_worker()
    return stack


def _open(browser, url: str, theme: str) -> Client:
    context = new_context(browser, theme)
    page = context.new_page()
    page.set_default_timeout(5000)
    page.goto(url)
    return Client(page, theme)


def _shot(client: Client, name: str) -> None:
    client.screenshot(f"storefront-{name}")


def _share_phone(client: Client) -> None:
    """Answer Telegram's phone request as the client does: 'sent', then the signed contact
    when the page asks for it."""
    page = client.page
    page.wait_for_function("window.__tgLast('web_app_request_phone') !== null")
    page.evaluate("Telegram.WebView.receiveEvent('phone_requested', {status: 'sent'})")
    page.wait_for_function("window.__tgLast('web_app_invoke_custom_method') !== null")
    request = client.last("web_app_invoke_custom_method")
    assert request["method"] == "getRequestedContact"
    contact = json.dumps({"user_id": CUSTOMER, "phone_number": PHONE, "first_name": "Ольга"})
    result = f"contact={quote(contact)}&auth_date={int(time.time())}&hash=abc"
    page.evaluate("([id, result]) => Telegram.WebView.receiveEvent('custom_method_invoked', "
                  "{req_id: id, result: result})", [request["req_id"], result])


@pytest.mark.parametrize("theme", THEMES)
def test_a_customer_buys_and_pays_in_the_shop(storefront, browser, theme):
    url = launch_url(storefront.web.url, CUSTOMER, theme=theme, path="/shop/")
    client = _open(browser, url, theme)
    page = client.page
    tea = page.locator(f'[data-testid="product"][data-product-id="{storefront.products["tea"]}"]')
    client.wait_screen("catalog")
    expect(tea).to_contain_text("Чай улун")
    expect(tea).to_contain_text(format_rubles(TEA_PRICE))
    mug = page.locator(f'[data-testid="product"][data-product-id="{storefront.products["mug"]}"]')
    expect(mug.locator('[data-testid="sold-out"]')).to_have_text("Нет в наличии")
    assert not client.main_button()["is_visible"]
    _shot(client, "catalog")

    tea.locator('[data-testid="add"]').click()
    tea.locator('[data-testid="add"]').click()
    client.wait_main_button(f"Корзина · {format_rubles(2 * TEA_PRICE)}")
    assert json.loads(page.evaluate("localStorage.getItem('kassa.shop.cart')")) == {
        str(storefront.products["tea"]): 2}

    # Close the Mini App and open it again: the cart is still there.
    context = page.context
    page.close()
    page = context.new_page()
    page.set_default_timeout(5000)
    page.goto(url)
    client = Client(page, theme)
    client.wait_screen("catalog")
    client.wait_main_button(f"Корзина · {format_rubles(2 * TEA_PRICE)}")

    client.press_main_button()
    client.wait_screen("cart")
    client.wait_back_button(True)
    client.wait_main_button(f"Оформить заказ · {format_rubles(2 * TEA_PRICE)}")
    _shot(client, "cart")

    client.press_main_button()
    client.wait_screen("checkout")
    share = page.locator('[data-testid="share-phone"]')
    expect(share).to_be_visible()
    share.click()
    _share_phone(client)
    expect(page.locator('[data-testid="contact"]')).to_have_value("+" + PHONE)
    client.wait_main_button(f"Оплатить {format_rubles(2 * TEA_PRICE)}")
    _shot(client, "checkout")

    client.press_main_button()
    screen = client.wait_screen("pay")
    public_id = screen.get_attribute("data-order")
    with storefront.app.app_context():
        order = db.session.scalar(sa.select(Order).where(Order.public_id == public_id))
        assert (order.customer_phone, order.total_kopecks) == ("+" + PHONE, 2 * TEA_PRICE)
        qr = db.session.scalars(sa.select(QrCode).where(QrCode.order_id == order.id)).one()
        payload, qr_id = qr.payload, qr.qr_id
    banks = page.locator('[data-testid="bank"]')
    assert banks.count() > 5
    assert set(banks.evaluate_all("els => els.map(e => e.dataset.link)")) == {payload}
    banks.nth(1).click()
    assert client.last("web_app_open_link")["url"] == payload  # Telegram opens the link
    assert client.page.url.startswith(storefront.web.url)       # and the shop stays open
    _shot(client, "pay")

    storefront.pay(qr_id)
    paid_at = time.monotonic()
    client.wait_screen("paid", timeout=3)
    assert time.monotonic() - paid_at < 3
    expect(page.locator('#screen [data-testid="status"]')).to_have_text("Оплачено")
    assert {"type": "notification", "notification_type": "success"} in client.haptics()
    assert json.loads(page.evaluate("localStorage.getItem('kassa.shop.cart')")) == {}
    expect(page.locator('a[data-testid="receipt"]')).to_be_visible(timeout=10000)
    client.wait_main_button("Мои заказы")
    _shot(client, "paid")

    client.press_main_button()
    client.wait_screen("orders")
    expect(page.locator(f'[data-testid="order"][data-order="{public_id}"]')).to_contain_text(
        "Ждёт подтверждения магазина")
    _shot(client, "orders")
    context.close()
