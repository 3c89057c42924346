"""Fiscalization end to end: the sandbox bank and ATOL register, Kassa's web app and worker,
all over real HTTP. Every sale and refund gets its receipt once; faults delay, never lose."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
import requests
import sqlalchemy as sa

from app.errors import ValidationError
from app.extensions import db
from app.models import (
    Installation,
    Job,
    OrderChannel,
    Payment,
    QrCode,
    Receipt,
    ReceiptKind,
    ReceiptStatus,
    Refund,
    RefundStatus,
)
from app.orders.services import Line, create_order
from app.sbp import qrcodes, refunds
from tests.helpers import decode_qr, wait_for

pytestmark = pytest.mark.slow

CART = [
    Line(name="Капучино 300 мл", price_kopecks=22000, quantity_milli=2000),
    Line(name="Кофе в зёрнах, Эфиопия", price_kopecks=320000, quantity_milli=250,
         measure="kilogram", vat="vat22"),
    Line(name="Доставка", price_kopecks=25000, payment_object="service", vat="vat20"),
]
CART_TOTAL = 44000 + 80000 + 25000


def _faults(stack, **faults):
    response = requests.post(f"{stack.bank_url}/sandbox/fiscal/faults", json=faults, timeout=5)
    assert response.status_code == 200, response.text


def _register(stack) -> dict:
    return requests.get(f"{stack.bank_url}/sandbox/fiscal/state", timeout=5).json()


def _receipts(stack) -> list[Receipt]:
    with stack.app.app_context():
        receipts = db.session.scalars(sa.select(Receipt).order_by(Receipt.id)).all()
        for receipt in receipts:
            db.session.expunge(receipt)
        return receipts


def _install(stack) -> str:
    """This installation's id, which every external id carries."""
    with stack.app.app_context():
        return db.session.scalar(sa.select(Installation.install_id))


def _pay_cart(stack, *, email="buyer@example.ru", cart=CART) -> int:
    """A cashier's cart paid by the customer; returns the new payment's id."""
    with stack.app.app_context():
        order = create_order(channel=OrderChannel.MINIAPP, lines=cart, customer_email=email)
        qr_code_id = qrcodes.create_dynamic_qr(order.id).id
        qr_id = db.session.get(QrCode, qr_code_id).qr_id
    stack.pay(qr_id)

    def paid():
        with stack.app.app_context():
            return db.session.scalar(sa.select(Payment.id).where(Payment.qr_code_id == qr_code_id))

    return wait_for(paid)


def _done(stack, count=1):
    return wait_for(
        lambda: (r := _receipts(stack)) and len(r) == count
        and all(x.status == ReceiptStatus.DONE for x in r) and r,
        timeout=20,
    )


def test_sale_then_refund_receipts_with_fiscal_data_and_public_page(stack):
    stack.start_worker()
    payment_id = _pay_cart(stack)
    [sale] = _done(stack)

    assert sale.kind == ReceiptKind.SELL
    assert sale.external_id == f"sell-{_install(stack)}-{payment_id}"
    assert sale.total_kopecks == CART_TOTAL
    assert sum(line["amount_kopecks"] for line in sale.lines) == CART_TOTAL
    assert re.fullmatch(r"\d{16}", sale.fn_number)
    assert sale.fiscal_document_number > 0 and sale.fiscal_document_attribute > 0
    assert sale.receipt_datetime is not None and sale.shift_number

    # What the register holds is what we sent: one document, our lines and sums.
    register = _register(stack)
    [document] = [d for d in register["documents"] if d["external_id"] == sale.external_id]
    assert document["operation"] == "sell"
    assert document["total"] == "1490.00"
    assert [item["name"] for item in document["items"]] == [line.name for line in CART]

    # The customer's page shows the seller, the lines, the total and the fiscal data ...
    page = requests.get(f"{stack.web.url}/fiscal/r/{sale.token}", timeout=5)
    assert page.status_code == 200
    html = page.text
    for text in ("Кассовый чек", "Приход", "Капучино 300 мл", "1\u00a0490,00\u00a0₽",
                 sale.fn_number, str(sale.fiscal_document_number),
                 str(sale.fiscal_document_attribute), "НДС 22%", "0,25 × 3\u00a0200,00\u00a0₽"):
        assert text in html, text
    # ... and a check QR that decodes to exactly the stored fiscal data.
    qr_png = requests.get(f"{stack.web.url}/fiscal/r/{sale.token}/check.png", timeout=5)
    decoded = decode_qr(qr_png.content)
    when = sale.receipt_datetime.astimezone(_moscow()).strftime("%Y%m%dT%H%M")
    assert decoded == (f"t={when}&s=1490.00&fn={sale.fn_number}"
                       f"&i={sale.fiscal_document_number}&fp={sale.fiscal_document_attribute}&n=1")
    assert requests.get(f"{stack.web.url}/fiscal/r/not-a-token", timeout=5).status_code == 404

    # A partial refund, then the rest: each gets a refund receipt mirroring the sale.
    with stack.app.app_context():
        refunds.request_refund(payment_id, 50000)
    sale_receipt, first_refund = _done(stack, 2)
    assert first_refund.kind == ReceiptKind.SELL_REFUND
    assert first_refund.total_kopecks == 50000
    assert sum(line["amount_kopecks"] for line in first_refund.lines) == 50000
    sold = {line["name"]: line for line in sale_receipt.lines}
    for line in first_refund.lines:
        assert line["vat"] == sold[line["name"]]["vat"]
        assert line["payment_object"] == sold[line["name"]]["payment_object"]
    with stack.app.app_context():
        refunds.request_refund(payment_id)
    receipts = _done(stack, 3)
    refunded = [line for r in receipts[1:] for line in r.lines]
    for name, line in sold.items():
        assert sum(x["amount_kopecks"] for x in refunded if x["name"] == name) == line[
            "amount_kopecks"], name
    refund_page = requests.get(f"{stack.web.url}/fiscal/r/{receipts[2].token}", timeout=5).text
    assert "Возврат прихода" in refund_page
    qr_png = requests.get(f"{stack.web.url}/fiscal/r/{receipts[2].token}/check.png", timeout=5)
    assert decode_qr(qr_png.content).endswith("&n=2")
    assert all(count == 1 for count in _register(stack)["counts"].values())


def _moscow():
    from datetime import timedelta, timezone

    return timezone(timedelta(hours=3))


def test_answer_lost_after_registration_gives_one_document(stack):
    _faults(stack, lose_answer_next=1)
    stack.start_worker()
    payment_id = _pay_cart(stack)
    [receipt] = _done(stack)
    register = _register(stack)
    assert register["counts"] == {f"sell-{_install(stack)}-{payment_id}": 1}
    assert register["requests"]["atol.sell"] == 2  # the lost answer, then code 33
    assert receipt.attempt == 1


def test_register_down_for_a_while_receipts_wait_then_complete(stack):
    _faults(stack, down=True)
    stack.start_worker()
    ids = [_pay_cart(stack) for _ in range(3)]
    wait_for(lambda: len(_receipts(stack)) == 3)
    with stack.app.app_context():
        wait_for(lambda: db.session.scalar(
            sa.select(sa.func.max(Job.attempts)).where(Job.name == "fiscal.submit")) >= 1)
    assert all(r.status == ReceiptStatus.PENDING for r in _receipts(stack))
    assert _register(stack)["documents"] == []

    _faults(stack, down=False)
    receipts = _done(stack, 3)
    install = _install(stack)
    assert sorted(r.external_id for r in receipts) == sorted(f"sell-{install}-{i}" for i in ids)
    assert sorted(_register(stack)["counts"].values()) == [1, 1, 1]


def test_token_expiry_mid_stream_is_renewed(stack):
    stack.start_worker()
    _pay_cart(stack)
    _done(stack)
    tokens_before = _register(stack)["tokens_issued"]
    _faults(stack, expire_tokens=True)
    _pay_cart(stack)
    _done(stack, 2)
    assert _register(stack)["tokens_issued"] == tokens_before + 1


def test_failed_report_is_resubmitted_once_under_a_new_id_then_waits_for_an_admin(stack):
    from app.fiscal import services as fiscal

    _faults(stack, fail_next=1)
    stack.start_worker()
    payment_id = _pay_cart(stack)
    [receipt] = _done(stack)
    assert receipt.attempt == 2
    sell_id = f"sell-{_install(stack)}-{payment_id}"
    assert receipt.external_id == f"{sell_id}-r2"
    counts = _register(stack)["counts"]
    assert counts == {sell_id: 1, f"{sell_id}-r2": 1}

    _faults(stack, fail_next=2)
    second = _pay_cart(stack)
    failed = wait_for(lambda: next((r for r in _receipts(stack) if r.payment_id == second
                                    and r.status == ReceiptStatus.FAILED), None), timeout=20)
    assert failed.attempt == 2
    assert "3803" in failed.error
    with stack.app.app_context():
        fiscal.retry_failed(failed.id)
    done = wait_for(lambda: next((r for r in _receipts(stack) if r.id == failed.id
                                  and r.status == ReceiptStatus.DONE), None), timeout=20)
    assert done.external_id == f"sell-{_install(stack)}-{second}-r3"


def test_static_qr_payment_gets_one_configured_line(make_stack):
    stack = make_stack(STATIC_QR_ITEM_NAME="Оплата заказа в кофейне", STATIC_QR_VAT="vat22")
    stack.start_worker()
    with stack.app.app_context():
        qr = qrcodes.create_static_qr()
        qr_id = qr.qr_id
    stack.pay(qr_id, amount="345.67")
    [receipt] = _done(stack)
    assert receipt.total_kopecks == 34567
    assert receipt.lines == [{
        "name": "Оплата заказа в кофейне", "price_kopecks": 34567, "quantity_milli": 1000,
        "amount_kopecks": 34567, "vat": "vat22", "payment_object": "commodity",
        "measure": "piece", "payment_method": "full_payment",
    }]


def test_fiscal_provider_none_creates_no_receipts(make_stack):
    stack = make_stack(FISCAL_PROVIDER="none")
    stack.start_worker()
    payment_id = _pay_cart(stack)
    with stack.app.app_context():
        refunds.request_refund(payment_id)

    def refunded():
        with stack.app.app_context():
            return db.session.scalar(sa.select(Refund.status)) == RefundStatus.COMPLETED

    wait_for(refunded)
    assert _receipts(stack) == []
    assert _register(stack)["documents"] == []
    runner = stack.app.test_cli_runner()
    with stack.app.app_context():
        qr_id = db.session.get(Payment, payment_id).qr_code.qr_id
    shown = runner.invoke(args=["qr", "show", qr_id])
    assert '"fiscalization": "none"' in shown.output


def test_atol_callback_is_a_hint_checked_against_our_records(make_stack):
    stack = make_stack(sandbox_settings={"fiscal_processing_seconds": 3})
    stack.start_worker()
    _pay_cart(stack)
    waiting = wait_for(lambda: next((r for r in _receipts(stack)
                                     if r.status == ReceiptStatus.WAIT), None))
    url = f"{stack.web.url}/fiscal/atol/callback"
    forged = {
        "uuid": "00000000-0000-0000-0000-000000000000", "external_id": "sell-999",
        "status": "done", "error": None, "timestamp": "27.11.2026 12:00:00",
        "group_code": "v5-online-atol-ru_5179", "daemon_code": "prod-agent-1",
        "device_code": "KKT000000000000", "callback_url": url,
        "payload": {
            "fiscal_receipt_number": 1, "shift_number": 1, "receipt_datetime":
            "27.11.2026 12:00:00", "total": 1490.00, "fn_number": "1111111111111111",
            "ecr_registration_number": "0000000000000000", "fiscal_document_number": 1,
            "fiscal_document_attribute": 1, "fns_site": "www.nalog.gov.ru",
        },
    }
    # An unknown document: refused, nothing changes.
    assert requests.post(url, json=forged, timeout=5).status_code == 404
    # A forged "done" for our waiting receipt: it only makes us ask the register, which
    # says "still processing", so the receipt stays waiting and takes no forged data.
    forged.update(external_id=waiting.external_id, uuid=waiting.provider_id)
    assert requests.post(url, json=forged, timeout=5).status_code == 200
    [still] = _receipts(stack)
    assert (still.status, still.fn_number) == (ReceiptStatus.WAIT, None)
    assert requests.post(url, data=b"garbage", timeout=5).status_code == 400

    [done] = _done(stack)
    assert done.fn_number != "1111111111111111"
    [document] = _register(stack)["documents"]
    assert done.fn_number == document["payload"]["fn_number"]
    # The register's own callback reached us too.
    wait_for(lambda: all(c["delivered"] for c in _register(stack)["callbacks"]))


def test_raiffeisen_receipts_provider_end_to_end(make_stack):
    stack = make_stack(FISCAL_PROVIDER="raiffeisen")
    stack.start_worker()
    # The bank documents no 22% VAT: such a cart is refused at checkout, naming the bank.
    with stack.app.app_context(), pytest.raises(ValidationError) as refused:
        create_order(channel=OrderChannel.MINIAPP, lines=CART)
    assert "Райффайзенбанк" in str(refused.value.message)
    assert "vat22" in str(refused.value.message)
    cart = [replace(line, vat="vat20") if line.vat == "vat22" else line for line in CART]
    payment_id = _pay_cart(stack, cart=cart)
    [sale] = _done(stack)
    sell_id = f"sell-{_install(stack)}-{payment_id}"
    assert (sale.provider, sale.external_id) == ("raiffeisen", sell_id)
    with stack.app.app_context():
        refunds.request_refund(payment_id, 1000)
    _, refund = _done(stack, 2)
    assert (refund.kind, refund.total_kopecks) == (ReceiptKind.SELL_REFUND, 1000)
    register = _register(stack)
    assert sorted(d["external_id"] for d in register["documents"]) == sorted(
        [sell_id, refund.external_id])
    assert {d["provider"] for d in register["documents"]} == {"raiffeisen"}


def test_reconciler_requeues_a_receipt_whose_job_died(stack):
    from datetime import timedelta

    from app.fiscal import services as fiscal
    from app.fiscal import writing
    from app.models import JobStatus, utcnow

    _faults(stack, down=True)
    payment_id = _pay_cart(stack)
    with stack.app.app_context():
        writing.create_sale_receipt(payment_id)
        # The submit job ran out of attempts while the register was down, long ago.
        db.session.execute(sa.update(Job).where(Job.name == "fiscal.submit").values(
            status=JobStatus.DEAD, attempts=12, finished_at=utcnow()))
        db.session.execute(sa.update(Receipt).values(updated_at=utcnow() - timedelta(hours=1)))
        db.session.commit()
    _faults(stack, down=False)
    with stack.app.app_context():
        assert fiscal.reconcile() == {"requeued": 1}
        assert fiscal.reconcile() == {"requeued": 0}  # its job is live now: no second one
    stack.start_worker()
    [receipt] = _done(stack)
    assert receipt.external_id == f"sell-{_install(stack)}-{payment_id}"
    assert _register(stack)["counts"] == {f"sell-{_install(stack)}-{payment_id}": 1}


def test_another_shop_on_the_same_atol_group_never_lends_us_its_receipt(stack):
    """A restored backup or a second shop on one ATOL group counts payments from 1 too:
    the register must never answer our new sale with the receipt it printed for them."""
    from app.fiscal.atol import AtolClient
    from app.fiscal.receipt import SELL, Company, ReceiptDraft, ReceiptLine

    config = stack.app.config
    other_shop = AtolClient(config["ATOL_API_URL"], config["ATOL_LOGIN"],
                            config["ATOL_PASSWORD"], config["ATOL_GROUP_CODE"])
    line = ReceiptLine("Чужой товар", 10000, 1000, 10000)
    company = Company(inn="5544332219", email="other@example.com", sno="osn",
                      payment_address="https://other.example")
    for payment_id in (1, 2, 3):  # what an installation without an install id would send
        other_shop.register(ReceiptDraft(SELL, (line,), 10000, company),
                            external_id=f"sell-{payment_id}", callback_url=None)
    stack.start_worker()
    payment_id = _pay_cart(stack)
    [sale] = _done(stack)
    assert sale.external_id == f"sell-{_install(stack)}-{payment_id}"
    [ours] = [d for d in _register(stack)["documents"] if d["external_id"] == sale.external_id]
    assert ours["total"] == "1490.00" and ours["payload"]["fn_number"] == sale.fn_number
    assert ours["payload"]["fiscal_document_number"] == sale.fiscal_document_number
