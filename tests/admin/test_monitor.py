"""The monitor's list and actions on rows written directly: filters, sorts, keyset pages
(each row once, in order, across payments and unpaid orders), the CSV, new rows, retries,
permissions and CSRF."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
import sqlalchemy as sa

from app.admin import queries
from app.extensions import db
from app.models import (
    AuditEntry,
    CashLinkActivation,
    Job,
    JobStatus,
    Order,
    OrderChannel,
    OrderStatus,
    Payment,
    PaymentStatus,
    QrCode,
    QrKind,
    QrStatus,
    Receipt,
    ReceiptKind,
    ReceiptStatus,
    StaffMember,
)
from tests.admin.conftest import logged_in, make_admin

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)  # 12:00 in Moscow
_numbers = count(1)


def _order(status=OrderStatus.PENDING, total=10000, channel=OrderChannel.MINIAPP,
           at=T0, cashier=None) -> Order:
    order = Order(status=status, channel=channel, total_kopecks=total, cashier_id=cashier,
                  created_at=at, updated_at=at)
    db.session.add(order)
    db.session.flush()
    return order


def _qr(kind=QrKind.DYNAMIC, order=None, status=QrStatus.ACTIVE, at=T0) -> QrCode:
    n = next(_numbers)
    qr = QrCode(kind=kind, status=status, qr_id=f"AD{n:08d}", bank_order=f"bo-{n}",
                payload=f"https://qr.nspk.ru/AD{n:08d}", amount_kopecks=order.total_kopecks
                if order else None, order_id=order.id if order else None,
                created_at=at, updated_at=at)
    db.session.add(qr)
    db.session.flush()
    return qr


def _payment(qr, order=None, status=PaymentStatus.PAID, *, amount=None, at=T0,
             activation=None) -> Payment:
    n = next(_numbers)
    payment = Payment(qr_code_id=qr.id, order_id=order.id if order else None,
                      activation_id=activation.id if activation else None,
                      bank_key=f"key-{n}", transaction_id=f"9{n:07d}",
                      amount_kopecks=amount or (order.total_kopecks if order else 5000),
                      status=status, paid_at=at, created_at=at, updated_at=at)
    db.session.add(payment)
    db.session.flush()
    return payment


def _paid_sale(total=10000, at=T0, channel=OrderChannel.MINIAPP, cashier=None,
               status=PaymentStatus.PAID) -> Payment:
    order = _order(OrderStatus.PAID, total, channel, at, cashier)
    return _payment(_qr(order=order, status=QrStatus.PAID, at=at), order, status, at=at)


def _keys(rows) -> list[tuple[str, int]]:
    return [(row.src, row.id) for row in rows]


@pytest.fixture
def shop(app):
    """A small mixed shop: paid, refunded and review payments, a static QR's money, a cash-link
    sale, and unpaid orders (waiting, expired, cancelled), several at the same second."""
    cashier = StaffMember(telegram_id=111, name="Анна")
    db.session.add(cashier)
    db.session.flush()
    made = {"cashier": cashier.id}
    made["paid"] = _paid_sale(12000, T0, cashier=cashier.id)
    made["refunded"] = _paid_sale(3000, T0 + timedelta(minutes=1), status=PaymentStatus.REFUNDED)
    made["review"] = _paid_sale(7000, T0 + timedelta(minutes=2), channel=OrderChannel.API,
                                status=PaymentStatus.REVIEW)
    static = _qr(QrKind.STATIC, at=T0 - timedelta(days=3))
    made["static"] = _payment(static, amount=5000, at=T0 + timedelta(minutes=2))
    link = _qr(QrKind.CASH_LINK, status=QrStatus.INACTIVE, at=T0 - timedelta(days=3))
    sale = _order(OrderStatus.PAID, 4500, at=T0 + timedelta(minutes=3), cashier=cashier.id)
    activation = CashLinkActivation(qr_code_id=link.id, order_id=sale.id, bank_order_id="cl-1",
                                    amount_kopecks=4500, expires_at=T0 + timedelta(hours=1))
    db.session.add(activation)
    db.session.flush()
    made["cash_link"] = _payment(link, sale, at=T0 + timedelta(minutes=3), activation=activation)
    made["waiting"] = _order(OrderStatus.PENDING, 7000, at=T0 + timedelta(minutes=2))
    _qr(order=made["waiting"], at=T0 + timedelta(minutes=2))
    made["expired"] = _order(OrderStatus.EXPIRED, 3000, at=T0 + timedelta(days=1))
    _qr(order=made["expired"], status=QrStatus.EXPIRED, at=T0 + timedelta(days=1))
    made["cancelled"] = _order(OrderStatus.CANCELLED, 9900, at=T0 - timedelta(days=1))
    db.session.commit()
    return made


def _walk(filters: queries.Filters, size: int = 2) -> list:
    """Every row of the list, a page of `size` at a time, following the cursors."""
    rows, after = [], None
    for _ in range(100):
        page = queries.list_page(filters, after, size=size)
        rows += page.rows
        if page.next_cursor is None:
            return rows
        after = page.next_cursor
    raise AssertionError("the pages never end")


def _expected(rows, sort: str) -> list:
    name = sort.lstrip("-")
    key = {"created": lambda r: (r.created_at, r.src, r.id),
           "amount": lambda r: (r.amount_kopecks, r.src, r.id),
           "status": lambda r: (r.status, r.created_at, r.src, r.id)}[name]
    return sorted(rows, key=key, reverse=sort.startswith("-"))


@pytest.mark.parametrize("sort", queries.SORTS)
def test_pages_give_every_row_once_in_order_whatever_the_sort(shop, sort):
    rows = _walk(queries.Filters(sort=sort))
    assert len(rows) == 8  # 5 payments + 3 unpaid orders; the paid orders show as payments
    assert _keys(rows) == _keys(_expected(rows, sort))


@pytest.mark.parametrize(("filters", "expected"), [
    ({"status": "review"}, ["review"]),
    ({"status": "pending"}, ["waiting"]),
    ({"kind": "static"}, ["static"]),
    ({"kind": "cash_link"}, ["cash_link"]),
    ({"channel": "api"}, ["review"]),
    ({"channel": "static"}, ["static"]),
    ({"channel": "cash_link"}, ["cash_link"]),
    ({"kind": "dynamic", "status": "expired"}, ["expired"]),
    ({"date_from": "2026-03-11", "date_to": "2026-03-11"}, ["expired"]),
    ({"date_to": "2026-03-09"}, ["cancelled"]),
])
def test_filters_narrow_the_list(shop, filters, expected):
    filters.setdefault("sort", "created")
    for name in ("date_from", "date_to"):
        if name in filters:
            filters[name] = datetime.fromisoformat(filters[name]).date()
    rows = _walk(queries.Filters(**filters))
    assert _keys(rows) == [("p" if isinstance(shop[name], Payment) else "o", shop[name].id)
                           for name in expected]


def test_the_cashier_filter_and_the_search(shop):
    by_cashier = _walk(queries.Filters(cashier_id=shop["cashier"], sort="created"))
    assert _keys(by_cashier) == [("p", shop["paid"].id), ("p", shop["cash_link"].id)]
    paid = shop["paid"]
    for q in (str(paid.order_id), paid.qr_code.qr_id, paid.transaction_id):
        assert _keys(_walk(queries.Filters(q=q))) == [("p", paid.id)], q
    waiting = shop["waiting"]
    assert _keys(_walk(queries.Filters(q=str(waiting.id)))) == [("o", waiting.id)]
    assert _walk(queries.Filters(q="no-such-thing")) == []


def test_the_page_lists_rows_links_to_the_next_and_says_when_nothing_matches(app, shop,
                                                                            monkeypatch):
    monkeypatch.setattr(queries, "PAGE_SIZE", 3)
    client = logged_in(app, make_admin())
    first = client.get("/admin/payments?sort=amount").get_data(as_text=True)
    assert re.findall(r'id="row-(\w-\d+)"', first) == [
        # 30 ₽ twice: the unpaid order before the payment, as on every tie.
        f"o-{shop['expired'].id}", f"p-{shop['refunded'].id}", f"p-{shop['cash_link'].id}"]
    next_link = re.search(r'href="([^"]+)" rel="next"', first).group(1).replace("&amp;", "&")
    second = client.get(next_link).get_data(as_text=True)
    assert re.findall(r'id="row-(\w-\d+)"', second) == [
        f"p-{shop['static'].id}", f"o-{shop['waiting'].id}", f"p-{shop['review'].id}"]
    assert "В начало" in second
    empty = client.get("/admin/payments?q=nothing-like-it").get_data(as_text=True)
    assert "Ничего не найдено" in empty and 'id="row-' not in empty
    bad = client.get("/admin/payments?date_from=yesterday&status=nonsense")
    assert bad.status_code == 200 and "Not a valid date value" not in bad.get_data(as_text=True)


def test_an_empty_shop_says_so(app):
    page = logged_in(app, make_admin()).get("/admin/payments").get_data(as_text=True)
    assert "Платежей пока нет" in page


def test_new_rows_come_to_the_top_without_a_reload(app, shop):
    client = logged_in(app, make_admin())
    page = client.get("/admin/payments").get_data(as_text=True)
    poll = re.search(r'id="fresh" hidden hx-get="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert 'id="row-' not in client.get(poll).get_data(as_text=True)
    newer = _paid_sale(2500, T0 + timedelta(days=2))
    db.session.commit()
    fresh = client.get(poll).get_data(as_text=True)
    assert re.findall(r'id="row-(\w-\d+)"', fresh) == [f"p-{newer.id}"]
    following = re.search(r'id="fresh" hidden hx-get="([^"]+)"', fresh).group(1)
    assert 'id="row-' not in client.get(following.replace("&amp;", "&")).get_data(as_text=True)


def test_the_csv_holds_the_filtered_list(app, shop):
    client = logged_in(app, make_admin())
    response = client.get("/admin/payments.csv?status=paid&sort=created")
    assert response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [(row["kind_of_row"], int(row["id"]), row["amount_rub"]) for row in rows] == [
        ("payment", shop["paid"].id, "120.00"), ("payment", shop["static"].id, "50.00"),
        ("payment", shop["cash_link"].id, "45.00")]
    assert rows[0]["created_msk"] == "10.03.2026 12:00" and rows[0]["cashier"] == "Анна"


def test_an_order_and_a_static_payment_have_their_pages(app, shop):
    client = logged_in(app, make_admin())
    order = client.get(f"/admin/orders/{shop['waiting'].id}").get_data(as_text=True)
    assert "Отменить заказ" in order and "QR-код создан в банке" in order
    static = client.get(f"/admin/payments/{shop['static'].id}").get_data(as_text=True)
    assert "Статический QR" in static and "Сумму" not in static  # no lines: refund a sum
    assert client.get("/admin/payments/999999").status_code == 404
    assert client.get("/admin/orders/999999").status_code == 404


def _dead_notification(payment: Payment) -> Job:
    job = Job(name="telegram.send", key=f"telegram.send:telegram.paid:payment-{payment.id}:111",
              payload={"chat_id": 111, "text": "Оплачено"}, status=JobStatus.DEAD, attempts=12,
              max_attempts=12, last_error="ReadTimeout", finished_at=T0)
    db.session.add(job)
    db.session.commit()
    return job


def test_a_dead_notification_is_retried_or_sent_again_from_the_payment_page(app, shop):
    payment = shop["paid"]
    job = _dead_notification(payment)
    client = logged_in(app, make_admin())
    page = client.get(f"/admin/payments/{payment.id}").get_data(as_text=True)
    assert "telegram.send" in page and "ReadTimeout" in page and "Повторить задачу" in page
    back = f"/admin/payments/{payment.id}"
    response = client.post(f"/admin/jobs/{job.id}/resend", data={"back": back})
    assert response.headers["Location"].endswith(back)
    again = db.session.scalars(sa.select(Job).where(Job.id != job.id)).one()
    assert (again.name, again.status, again.payload) == ("telegram.send", JobStatus.QUEUED,
                                                         job.payload)
    client.post(f"/admin/jobs/{job.id}/retry", data={"back": back})
    db.session.expire_all()
    assert (job.status, job.attempts) == (JobStatus.QUEUED, 0)
    response = client.post(f"/admin/jobs/{job.id}/retry", data={"back": "//evil.example"},
                           follow_redirects=True)
    assert "кончились" in response.get_data(as_text=True)  # not dead any more: refused
    assert response.request.path == "/admin/payments"  # a foreign "back" is not followed
    actions = db.session.scalars(sa.select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions == ["notification.resend", "job.retry"]
    page = client.get(back).get_data(as_text=True)
    assert page.count("telegram.send") >= 2  # the resent message is on the timeline too


def test_a_failed_receipt_is_sent_again(app, shop):
    payment = shop["paid"]
    receipt = Receipt(kind=ReceiptKind.SELL, status=ReceiptStatus.FAILED, payment_id=payment.id,
                      provider="atol", external_id=f"sell-x-{payment.id}", total_kopecks=12000,
                      lines=[], error="Ошибка ККТ")
    db.session.add(receipt)
    db.session.commit()
    client = logged_in(app, make_admin())
    page = client.get(f"/admin/payments/{payment.id}").get_data(as_text=True)
    assert "Ошибка ККТ" in page and "Повторить чек" in page
    response = client.post(f"/admin/receipts/{receipt.id}/retry", follow_redirects=True)
    assert "Чек отправлен в кассу ещё раз" in response.get_data(as_text=True)
    db.session.expire_all()
    assert (receipt.status, receipt.attempt) == (ReceiptStatus.PENDING, 2)
    assert db.session.scalar(sa.select(AuditEntry.action)) == "receipt.retry"


def test_an_action_without_its_csrf_token_is_refused(make_app):
    app = make_app(WTF_CSRF_ENABLED=True)
    with app.app_context():
        client = logged_in(app, make_admin())
        order = _order()
        db.session.commit()
        assert client.post(f"/admin/orders/{order.id}/cancel").status_code == 400
        page = client.get(f"/admin/orders/{order.id}").get_data(as_text=True)
        assert 'name="csrf_token"' in page
        db.session.expire_all()
        assert db.session.get(Order, order.id).status == OrderStatus.PENDING


def test_a_stranger_is_sent_to_log_in(app):
    response = app.test_client().get("/admin/payments")
    assert response.status_code == 302 and "/admin/login" in response.headers["Location"]
