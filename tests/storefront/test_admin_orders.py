"""The storefront's orders in the admin panel: the list (paid first, filtered by what the
shop did with them), an order's page, the steps and the cancel with a refund (admins, with
the CSRF token), and a viewer who reads and changes nothing."""

# ruff: noqa: F811 - the fixtures are imported from the shared modules
from __future__ import annotations

import re

import sqlalchemy as sa

from app.extensions import db
from app.models import (
    AuditEntry,
    Delivery,
    Fulfilment,
    Job,
    Order,
    OrderStatus,
    Receipt,
    ReceiptKind,
    ReceiptStatus,
    Refund,
)
from app.sbp.qrcodes import create_dynamic_qr
from tests.admin.conftest import admin_client, logged_in, make_admin, viewer_client  # noqa: F401
from tests.helpers import wait_for
from tests.storefront.shopbot_support import (
    CUSTOMER,
    OTHER_CUSTOMER,
    mark_paid,
    storefront_order,
)


def _rows(html: str) -> list[int]:
    return [int(found) for found in re.findall(r'data-order-id="(\d+)"', html)]


def test_the_list_shows_paid_orders_first_and_filters_by_fulfilment(admin_client):
    waiting = storefront_order(CUSTOMER)
    paid = storefront_order(OTHER_CUSTOMER, delivery=Delivery.DELIVERY, address="Тверская, 5",
                            name="Олег")
    mark_paid(paid)
    accepted = storefront_order(CUSTOMER)
    mark_paid(accepted)
    order = db.session.get(Order, accepted)
    order.set_fulfilment(Fulfilment.ACCEPTED)
    db.session.commit()

    page = admin_client.get("/admin/shop-orders").get_data(as_text=True)
    assert "Заказы магазина" in page
    assert _rows(page) == [accepted, paid, waiting]
    assert "Олег" in page and "+79990001122" in page and "Доставка" in page

    only_new = admin_client.get("/admin/shop-orders?fulfilment=new").get_data(as_text=True)
    assert _rows(only_new) == [paid]
    unpaid = admin_client.get("/admin/shop-orders?fulfilment=unpaid").get_data(as_text=True)
    assert _rows(unpaid) == [waiting]
    only_accepted = admin_client.get("/admin/shop-orders?fulfilment=accepted").get_data(
        as_text=True)
    assert _rows(only_accepted) == [accepted]


def test_an_admin_moves_an_order_along_from_its_page(admin_client):
    order_id = storefront_order(CUSTOMER, comment="Без звонка")
    mark_paid(order_id)
    page = admin_client.get(f"/admin/shop-orders/{order_id}").get_data(as_text=True)
    assert "Без звонка" in page and "Мёд" in page and "Самовывоз" in page
    assert "Принять" in page and "Отменить и вернуть деньги" in page

    done = admin_client.post(f"/admin/shop-orders/{order_id}/step", data={"to": "accepted"},
                             follow_redirects=True).get_data(as_text=True)
    assert "Заказ принят; покупатель получит сообщение" in done
    assert "Готов к выдаче" in done
    again = admin_client.post(f"/admin/shop-orders/{order_id}/step", data={"to": "accepted"},
                              follow_redirects=True).get_data(as_text=True)
    assert "Заказ уже в этом состоянии" in again
    skipped = admin_client.post(f"/admin/shop-orders/{order_id}/step",
                                data={"to": "handed_over"},
                                follow_redirects=True).get_data(as_text=True)
    assert "Этот шаг сейчас невозможен" in skipped
    wrong_way = admin_client.post(f"/admin/shop-orders/{order_id}/step",
                                  data={"to": "shipped"},  # a pickup order is not shipped
                                  follow_redirects=True).get_data(as_text=True)
    assert "Этот шаг сейчас невозможен" in wrong_way

    db.session.expire_all()
    assert db.session.get(Order, order_id).fulfilment == Fulfilment.ACCEPTED
    (entry,) = db.session.scalars(sa.select(AuditEntry).where(
        AuditEntry.action == "order.fulfilment"))
    assert (entry.actor_kind, entry.actor_label) == ("admin", "owner@example.com")
    assert entry.details == {"before": "new", "to": "accepted"}
    # The event the bot's jobs hang on (none subscribed here: the bot is off).
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Job)) == 0


def test_an_unpaid_order_cannot_be_moved(admin_client):
    order_id = storefront_order(CUSTOMER)
    page = admin_client.get(f"/admin/shop-orders/{order_id}").get_data(as_text=True)
    assert "Принять" not in page
    refused = admin_client.post(f"/admin/shop-orders/{order_id}/step", data={"to": "accepted"},
                                follow_redirects=True).get_data(as_text=True)
    assert "Заказ не оплачен" in refused
    assert db.session.get(Order, order_id).fulfilment == Fulfilment.NEW


def test_a_viewer_reads_and_changes_nothing(viewer_client):
    order_id = storefront_order(CUSTOMER)
    mark_paid(order_id)
    page = viewer_client.get(f"/admin/shop-orders/{order_id}").get_data(as_text=True)
    assert "Мёд" in page and "Принять" not in page
    assert viewer_client.get("/admin/shop-orders").status_code == 200
    assert viewer_client.post(f"/admin/shop-orders/{order_id}/step",
                              data={"to": "accepted"}).status_code == 403
    assert viewer_client.post(f"/admin/shop-orders/{order_id}/cancel").status_code == 403
    db.session.expire_all()
    assert db.session.get(Order, order_id).fulfilment == Fulfilment.NEW


def test_a_stranger_is_sent_to_log_in_and_other_orders_are_not_here(admin_client, app):
    assert app.test_client().get("/admin/shop-orders").status_code == 302
    from app.models import OrderChannel
    from app.orders.services import Line, create_order

    till = create_order(channel=OrderChannel.MINIAPP, lines=[Line(name="Кофе",
                                                                  price_kopecks=15000)])
    assert admin_client.get(f"/admin/shop-orders/{till.id}").status_code == 404
    assert admin_client.get("/admin/shop-orders/999").status_code == 404


def test_an_action_without_its_csrf_token_is_refused(make_app):
    app = make_app(WTF_CSRF_ENABLED=True)
    with app.app_context():
        client = logged_in(app, make_admin())
        order_id = storefront_order(CUSTOMER)
        mark_paid(order_id)
        assert client.post(f"/admin/shop-orders/{order_id}/step",
                           data={"to": "accepted"}).status_code == 400
        page = client.get(f"/admin/shop-orders/{order_id}").get_data(as_text=True)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or \
            re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token
        assert client.post(f"/admin/shop-orders/{order_id}/step",
                           data={"to": "accepted", "csrf_token": token.group(1)}
                           ).status_code == 302
        db.session.expire_all()
        assert db.session.get(Order, order_id).fulfilment == Fulfilment.ACCEPTED


def test_cancelling_in_the_panel_refunds_the_customer_with_a_refund_receipt(stack):
    with stack.app.app_context():
        order_id = storefront_order(CUSTOMER)
        qr_id = create_dynamic_qr(order_id).qr_id
        client = logged_in(stack.app, make_admin())
    stack.start_worker()
    stack.pay(qr_id)

    def order():
        with stack.app.app_context():
            try:
                found = db.session.get(Order, order_id)
                db.session.expunge(found)
                return found
            finally:
                db.session.rollback()

    wait_for(lambda: order().status == OrderStatus.PAID)
    with stack.app.app_context():
        done = client.post(f"/admin/shop-orders/{order_id}/cancel", follow_redirects=True)
        assert "Заказ отменён, возврат денег отправлен в банк" in done.get_data(as_text=True)
        again = client.post(f"/admin/shop-orders/{order_id}/cancel", follow_redirects=True)
        assert "Заказ уже в этом состоянии" in again.get_data(as_text=True)
    wait_for(lambda: order().status == OrderStatus.REFUNDED, timeout=20)

    def refund_receipt():
        with stack.app.app_context():
            try:
                return db.session.scalars(sa.select(Receipt.status).where(
                    Receipt.kind == ReceiptKind.SELL_REFUND)).first() == ReceiptStatus.DONE
            finally:
                db.session.rollback()

    wait_for(refund_receipt, timeout=20)
    assert order().fulfilment == Fulfilment.CANCELLED
    with stack.app.app_context():
        (refund,) = db.session.scalars(sa.select(Refund))
        assert refund.amount_kopecks == 69100
        assert refund.reason == f"Отмена заказа №{order_id}"
        actions = list(db.session.scalars(sa.select(AuditEntry.action).order_by(AuditEntry.id)))
        assert actions[-2:] == ["order.fulfilment", "refund.create"]
