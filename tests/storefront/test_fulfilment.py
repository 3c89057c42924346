"""A paid storefront order on the shop's side: the customer's and the managers' messages
(once, however often the bank calls), the managers' buttons moving it along and the
customer hearing of each step, and cancelling with the money returned. Kassa, the sandbox
bank and register over real HTTP, a real worker, the fake Bot API."""

# ruff: noqa: F811 - the fixtures are imported from the shared modules
from __future__ import annotations

import sqlalchemy as sa

from app.extensions import db
from app.models import (
    AuditEntry,
    Delivery,
    Fulfilment,
    Order,
    OrderStatus,
    Payment,
    QrCode,
    Receipt,
    ReceiptKind,
    ReceiptStatus,
)
from app.orders.services import Line
from app.sbp.qrcodes import create_dynamic_qr
from tests.helpers import wait_for
from tests.storefront.shopbot_support import (
    CUSTOMER,
    MANAGER2,
    PICKUP_ADDRESS,
    button_data,
    jobs_settled,
    markup,
    product,
    shop,  # noqa: F401 - fixture
    storefront_order,
    texts,
)
from tests.telegram.conftest import CASHIER, MANAGER, Telegram, fakebot  # noqa: F401


def _paid_order(shop, **fields) -> int:
    """A storefront order paid in the sandbox; the worker runs. Returns the order id."""
    with shop.app.app_context():
        order_id = storefront_order(**fields)
        qr_id = create_dynamic_qr(order_id).qr_id
    if not shop.workers:
        shop.start_worker()
    shop.pay(qr_id)
    return order_id


def _one(shop, query):
    with shop.app.app_context():
        try:
            row = db.session.scalars(query).first()
            if row is not None:
                db.session.expunge(row)
            return row
        finally:
            db.session.rollback()


def _manager_messages(api, order_id: int) -> dict[int, dict]:
    return {int(call["chat_id"]): call for call in api.sent()
            if int(call["chat_id"]) in (MANAGER, MANAGER2)
            and f"Заказ магазина №{order_id}" in call["text"]}


def test_a_paid_order_tells_the_customer_and_every_manager_once(shop, fakebot):
    with shop.app.app_context():
        honey = product("Мёд", 45000, stock_milli=5000)
    order_id = _paid_order(shop, lines=[Line(name="Мёд", price_kopecks=45000,
                                             quantity_milli=2000, product_id=honey)],
                           delivery=Delivery.DELIVERY, address="Тверская, 5, кв. 7",
                           comment="Позвонить за час", email="maria@example.com")
    wait_for(lambda: texts(fakebot, CUSTOMER) and len(_manager_messages(fakebot, order_id)) == 2,
             timeout=20)
    receipt = _one(shop, sa.select(Receipt))
    (to_customer,) = texts(fakebot, CUSTOMER)
    assert to_customer.splitlines() == [
        f"Заказ №{order_id} оплачен: 900,00\u00a0₽",
        "Мёд × 2 = 900,00\u00a0₽",
        "Доставка: Тверская, 5, кв. 7",
        f"Чек: {shop.web.url}/fiscal/r/{receipt.token}",
        "Мы напишем, когда заказ будет готов. Ваши заказы: /orders",
    ]
    for message in _manager_messages(fakebot, order_id).values():
        lines = message["text"].splitlines()
        assert lines[0] == f"Заказ магазина №{order_id}: 900,00\u00a0₽, оплачен, новый"
        assert f"Покупатель: Мария (@buyer{CUSTOMER}, ID {CUSTOMER})" in lines
        assert "Контакт: +79990001122, maria@example.com" in lines
        assert "Мёд × 2 = 900,00\u00a0₽" in lines
        assert "Доставка: Тверская, 5, кв. 7" in lines
        assert "Комментарий: Позвонить за час" in lines
        assert button_data(message) == [f"ff:{order_id}:accepted", f"ff:{order_id}:ask-cancel"]
    assert texts(fakebot, CASHIER) == []  # no cashier sold it

    # The bank's notification again: nobody is told twice, the stock is taken once.
    payment = _one(shop, sa.select(Payment))
    qr = _one(shop, sa.select(QrCode))
    replay = {"transactionId": int(payment.transaction_id), "qrId": qr.qr_id,
              "sbpMerchantId": "MA0000000552", "amount": "900.00", "order": qr.bank_order,
              "paymentStatus": "SUCCESS", "transactionDate": payment.paid_at.isoformat()}
    assert shop.callback_raw(replay)["outcome"] == "duplicate"
    wait_for(lambda: jobs_settled(shop.app))
    assert len(texts(fakebot, CUSTOMER)) == 1
    assert len([c for c in fakebot.sent() if int(c["chat_id"]) in (MANAGER, MANAGER2)]) == 2
    with shop.app.app_context():
        from app.models import Product

        assert db.session.get(Product, honey).stock_milli == 3000


def test_managers_move_the_order_along_and_the_customer_hears_each_step(shop, fakebot):
    order_id = _paid_order(shop)
    wait_for(lambda: len(_manager_messages(fakebot, order_id)) == 2, timeout=20)
    first = _manager_messages(fakebot, order_id)[MANAGER]
    assert button_data(first) == [f"ff:{order_id}:accepted", f"ff:{order_id}:ask-cancel"]
    telegram = Telegram(shop.app, fakebot)

    # A cashier cannot press a manager's button.
    refused = telegram.press(CASHIER, f"ff:{order_id}:accepted")
    wait_for(lambda: fakebot.sent("answerCallbackQuery"))
    assert telegram.answer(refused)["text"] == "Заказы ведёт только менеджер."

    pressed = telegram.press(MANAGER, f"ff:{order_id}:accepted")
    wait_for(lambda: len(texts(fakebot, CUSTOMER)) == 2, timeout=20)
    assert texts(fakebot, CUSTOMER)[-1] == f"Заказ №{order_id} принят магазином."
    assert telegram.answer(pressed)["text"] == "Готово"
    # Both managers' messages now say so, with the next steps (pickup: ready).
    wait_for(lambda: jobs_settled(shop.app))
    edits = [call for call in fakebot.sent("editMessageText")
             if f"Заказ магазина №{order_id}" in call["text"]]
    assert {int(call["chat_id"]) for call in edits} == {MANAGER, MANAGER2}
    for call in edits:
        assert call["text"].splitlines()[0].endswith("оплачен, принят")
        assert button_data(call) == [f"ff:{order_id}:ready", f"ff:{order_id}:ask-cancel"]

    # The same button again (the second manager was a moment late): nothing changes.
    late = telegram.press(MANAGER2, f"ff:{order_id}:accepted")
    wait_for(lambda: [c for c in fakebot.sent("answerCallbackQuery")
                      if c["callback_query_id"] == late])
    assert telegram.answer(late)["text"] == "Уже сделано: заказ в этом состоянии."
    wait_for(lambda: jobs_settled(shop.app))
    assert len(texts(fakebot, CUSTOMER)) == 2

    telegram.press(MANAGER2, f"ff:{order_id}:ready")
    wait_for(lambda: len(texts(fakebot, CUSTOMER)) == 3, timeout=20)
    assert texts(fakebot, CUSTOMER)[-1].splitlines() == [
        f"Заказ №{order_id} готов: можно забирать.", f"Адрес: {PICKUP_ADDRESS}"]
    telegram.press(MANAGER, f"ff:{order_id}:handed_over")
    wait_for(lambda: len(texts(fakebot, CUSTOMER)) == 4, timeout=20)
    assert texts(fakebot, CUSTOMER)[-1] == f"Заказ №{order_id} выдан. Спасибо за покупку!"
    wait_for(lambda: jobs_settled(shop.app))
    last = [call for call in fakebot.sent("editMessageText")
            if int(call["chat_id"]) == MANAGER2][-1]
    assert last["text"].splitlines()[0].endswith("оплачен, выдан")
    assert button_data(last) == []  # nothing left to do

    order = _one(shop, sa.select(Order).where(Order.id == order_id))
    assert order.fulfilment == Fulfilment.HANDED_OVER
    with shop.app.app_context():
        steps = list(db.session.execute(sa.select(AuditEntry.actor_label, AuditEntry.details)
                                        .where(AuditEntry.action == "order.fulfilment")
                                        .order_by(AuditEntry.id)))
    assert [(who, details["to"]) for who, details in steps] == [
        ("Пётр", "accepted"), ("Ирина", "ready"), ("Пётр", "handed_over")]


def test_cancelling_asks_first_then_returns_the_money_with_a_refund_receipt(shop, fakebot):
    order_id = _paid_order(shop)
    wait_for(lambda: len(_manager_messages(fakebot, order_id)) == 2, timeout=20)
    telegram = Telegram(shop.app, fakebot)

    telegram.press(MANAGER, f"ff:{order_id}:ask-cancel", message_id=12)
    (asked,) = wait_for(lambda: fakebot.sent("editMessageReplyMarkup"))
    assert asked["message_id"] == "12"
    assert button_data(asked) == [f"ff:{order_id}:cancelled", f"ff:{order_id}:show"]
    assert markup(asked)[0][0]["text"] == "Да, отменить и вернуть 691,00\u00a0₽"
    assert _one(shop, sa.select(Order).where(Order.id == order_id)).fulfilment == Fulfilment.NEW

    telegram.press(MANAGER, f"ff:{order_id}:cancelled", message_id=12)
    wait_for(lambda: len(texts(fakebot, CUSTOMER)) >= 3, timeout=30)
    cancelled, refunded = texts(fakebot, CUSTOMER)[1:]
    assert cancelled.splitlines()[0] == f"Магазин отменил заказ №{order_id}."
    assert "691,00\u00a0₽" in cancelled
    refund_receipt = wait_for(lambda: _one(shop, sa.select(Receipt).where(
        Receipt.kind == ReceiptKind.SELL_REFUND)), timeout=20)
    assert refunded.splitlines() == [
        f"Возврат по заказу №{order_id} проведён: 691,00\u00a0₽",
        f"Чек возврата: {shop.web.url}/fiscal/r/{refund_receipt.token}"]
    wait_for(lambda: _one(shop, sa.select(Receipt).where(
        Receipt.kind == ReceiptKind.SELL_REFUND)).status == ReceiptStatus.DONE, timeout=20)
    order = _one(shop, sa.select(Order).where(Order.id == order_id))
    assert (order.status, order.fulfilment) == (OrderStatus.REFUNDED, Fulfilment.CANCELLED)

    # Pressed again: no second refund.
    again = telegram.press(MANAGER2, f"ff:{order_id}:cancelled")
    wait_for(lambda: [c for c in fakebot.sent("answerCallbackQuery")
                      if c["callback_query_id"] == again])
    assert telegram.answer(again)["text"] == "Уже сделано: заказ в этом состоянии."
    with shop.app.app_context():
        from app.models import Refund

        assert db.session.scalar(sa.select(sa.func.count()).select_from(Refund)) == 1
