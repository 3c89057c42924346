"""The admin panel in headless chromium against Kassa, the sandbox bank and register over real
HTTP, with a worker: the first admin registers and logs in, watches a payment arrive, filters,
opens it, refunds part of it and sees the refund and its receipt in the timeline."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from app.extensions import db
from app.models import OrderChannel, Payment
from app.orders.services import Line, create_order
from app.sbp import qrcodes
from app.storefront.ordering import place_order
from app.storefront.photos import save_photo
from tests.browser.client import artifacts_dir, watch_csp
from tests.helpers import wait_for
from tests.storefront.conftest import seed_shop
from tests.storefront.shopadmin_support import image_bytes

EMAIL = "owner@example.com"
PASSWORD = "длинный пароль 2026"
COFFEE = Line(name="Капучино 300 мл", price_kopecks=22000, quantity_milli=2000)
CAKE = Line(name="Чизкейк", price_kopecks=31000)


@pytest.fixture
def admin_page(browser):
    context = watch_csp(browser.new_context(viewport={"width": 1280, "height": 900},
                                            locale="ru-RU"))
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def _sale(stack, *lines: Line) -> tuple[int, str]:
    with stack.app.app_context():
        order = create_order(channel=OrderChannel.MINIAPP, lines=list(lines))
        return order.id, qrcodes.create_dynamic_qr(order.id).qr_id


def _paid(stack, order_id: int) -> int:
    def found():
        with stack.app.app_context():
            return db.session.scalar(sa.select(Payment.id).where(Payment.order_id == order_id))

    return wait_for(found)


def _shot(page, name: str) -> None:
    page.screenshot(path=str(artifacts_dir() / f"admin-{name}.png"), full_page=True)


def test_first_admin_watches_a_payment_arrive_and_refunds_part_of_it(stack, admin_page):
    stack.start_worker()
    page = admin_page
    web = stack.web.url

    # The first admin registers, logs out, and logs in.
    page.goto(f"{web}/admin/register")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Пароль", exact=True).fill(PASSWORD)
    page.get_by_label("Пароль ещё раз").fill(PASSWORD)
    page.get_by_role("button", name="Зарегистрироваться").click()
    expect(page.get_by_text(EMAIL)).to_be_visible()
    page.get_by_role("button", name="Выйти").click()
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Пароль").fill(PASSWORD)
    page.get_by_role("button", name="Войти").click()
    expect(page.get_by_text(EMAIL)).to_be_visible()

    # A small sale paid before, one waiting for the customer; the list is open.
    small_order, small_qr = _sale(stack, CAKE)
    stack.pay(small_qr)
    _paid(stack, small_order)
    waiting_order, _ = _sale(stack, CAKE)
    page.get_by_role("link", name="Платежи").click()
    expect(page.locator(f"#row-o-{waiting_order}")).to_contain_text("Ждёт оплаты")

    # A bigger sale shows up at the top without a reload, waiting; the customer pays it and
    # its row turns into the payment.
    page.evaluate("window.__notReloaded = true")
    big_order, big_qr = _sale(stack, COFFEE, CAKE)
    expect(page.locator(f"#row-o-{big_order}")).to_contain_text("Ждёт оплаты", timeout=15_000)
    stack.pay(big_qr)
    payment_id = _paid(stack, big_order)
    row = page.locator(f"#row-p-{payment_id}")
    expect(row).to_contain_text("750,00", timeout=15_000)
    expect(row).to_contain_text("Оплачен")
    assert page.evaluate("window.__notReloaded") is True
    # The order's own row turned into the payment too: after the next looks, one row of it.
    for _ in range(2):
        with page.expect_response(lambda response: "/admin/payments/fresh" in response.url):
            pass
    expect(row).to_have_count(1)
    expect(page.locator(f"#row-o-{big_order}")).to_have_count(0)
    _shot(page, "list")

    # Paid only, largest first: the big sale, then the small one; the waiting order is gone.
    page.get_by_label("Статус").select_option("paid")
    page.get_by_label("Порядок").select_option("-amount")
    page.get_by_role("button", name="Показать").click()
    rows = page.locator("#payments tbody tr[id^=row-]")
    expect(rows).to_have_count(2)
    assert [rows.nth(i).get_attribute("id") for i in range(2)] == [
        f"row-p-{payment_id}", f"row-p-{_paid(stack, small_order)}"]
    _shot(page, "filtered")

    # Its page: the lines, the bank's news, the sale receipt once the register is done.
    rows.first.get_by_role("link").first.click()
    expect(page.get_by_role("heading", name=re.compile(f"Платёж № {payment_id}"))).to_be_visible()
    expect(page.locator("#lines")).to_contain_text("Капучино 300 мл")
    timeline = page.locator("#timeline")
    expect(timeline).to_contain_text("Уведомление банка")
    expect(timeline.locator("tr", has_text="Чек прихода")).to_contain_text(
        "Готово", timeout=15_000)

    # Refund one of the two coffees, confirming in the dialog.
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_label("Вернуть: Капучино 300 мл").fill("1")
    page.get_by_label("Причина").fill("Пролили")
    page.get_by_role("button", name="Вернуть", exact=True).click()
    expect(page.locator(".flash-success")).to_contain_text(
        re.compile(r"Возврат 220,00\s₽ отправлен в банк"))

    # The refund completes at the bank and its receipt is registered: the timeline says so.
    expect(timeline.locator("tr.event-refund")).to_contain_text(
        "Проведён", timeout=15_000)
    expect(timeline.locator("tr", has_text="Чек возврата прихода")).to_contain_text(
        "Готово", timeout=15_000)
    _shot(page, "refunded")
    page.reload()
    expect(page.locator("#payment")).to_contain_text(re.compile(r"Возвращено\s*220,00"))


def test_the_panels_other_pages_keep_to_the_content_security_policy(stack, admin_page):
    """The pages not walked above: the catalog with a photo, the product form, the tills and
    a QR's print page, the admins with a fresh invite link, a shop order. None breaks the
    policy (the autouse check), the print button prints and the invite link selects itself
    for copying, without inline handlers."""
    page = admin_page
    web = stack.web.url
    with stack.app.app_context():
        ids = seed_shop(stack.app)
        save_photo(ids["tea"], image_bytes(300, 200))
        qr = qrcodes.create_static_qr(amount_kopecks=15000, description="Чай на вынос")
        placed = place_order(telegram_id=424242, name="Покупатель", product_ids=[str(ids["tea"])],
                             quantities=["1"], expected_total=25000, contact="+79990001122",
                             delivery="pickup")
        qr_id, shop_order_id = qr.id, placed.order_id

    page.goto(f"{web}/admin/register")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Пароль", exact=True).fill(PASSWORD)
    page.get_by_label("Пароль ещё раз").fill(PASSWORD)
    page.get_by_role("button", name="Зарегистрироваться").click()
    expect(page.get_by_text(EMAIL)).to_be_visible()

    page.goto(f"{web}/admin/catalog")
    expect(page.get_by_test_id("photo").locator("img")).to_have_count(1)
    page.goto(f"{web}/admin/catalog/{ids['tea']}/edit")
    expect(page.get_by_alt_text("Фото товара")).to_be_visible()
    for path in ("/admin/", "/admin/staff", "/admin/tills", "/admin/api-clients",
                 "/admin/journal", "/admin/shop-orders", f"/admin/shop-orders/{shop_order_id}",
                 "/admin/storefront"):
        assert page.goto(f"{web}{path}").status == 200, path

    page.goto(f"{web}/admin/tills/qr/{qr_id}/print")
    page.evaluate("window.print = () => { window.__printed = true; }")
    page.get_by_role("button", name="Печать").click()
    assert page.evaluate("window.__printed") is True

    page.goto(f"{web}/admin/admins")
    page.get_by_role("button", name="Создать приглашение").click()
    link = page.get_by_label("Ссылка-приглашение")
    link.focus()
    selected = page.evaluate("(f => f.value.substring(f.selectionStart, f.selectionEnd))"
                             "(document.activeElement)")
    assert selected == link.input_value()
    assert selected.startswith(f"{web}/admin/register/")
