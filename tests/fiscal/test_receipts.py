"""Receipt services against a scripted register: external ids unique per installation,
answers that do not match the receipt, receipts that cannot be built, checks at checkout
and when products are saved, and the OFD link on the customer's page."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from app.errors import NotFoundError
from app.extensions import db
from app.fiscal import services as fiscal
from app.fiscal import writing
from app.fiscal.atol import AtolClient
from app.fiscal.raiffeisen import RaiffeisenReceiptsClient
from app.fiscal.receipt import (
    DONE,
    FAIL,
    WAIT,
    AnsweredLine,
    FiscalData,
    ReceiptDraft,
    ReceiptLine,
    RegisterResult,
)
from app.httpclient import ProviderError
from app.jobs import enqueue, registry
from app.jobs.worker import Worker
from app.models import (
    Installation,
    Job,
    JobStatus,
    OrderChannel,
    OrderItem,
    Payment,
    PaymentStatus,
    QrCode,
    QrKind,
    QrStatus,
    Receipt,
    ReceiptStatus,
    install_id,
    utcnow,
)
from app.orders.services import Line, create_order
from app.receipt_lines import MEASURES

CART = [
    Line(name="Капучино", price_kopecks=22000, quantity_milli=2000, vat="vat20"),
    Line(name="Доставка", price_kopecks=25000, payment_object="service"),
]
TOTAL = 69000


@dataclass
class ScriptedRegister:
    """A register whose answers the test writes: `answer(draft, external_id)` -> result."""

    answer: object
    name: str = "atol"
    title: str = "АТОЛ Онлайн"
    vat_rates: frozenset = AtolClient.vat_rates
    measures: frozenset = AtolClient.measures
    payment_objects: frozenset = AtolClient.payment_objects
    sent: list = field(default_factory=list)

    def register(self, draft: ReceiptDraft, *, external_id: str, callback_url) -> RegisterResult:
        self.sent.append((external_id, draft))
        return self.answer(draft, external_id)

    def status(self, *, external_id: str, provider_id, operation: str) -> RegisterResult:
        return self.answer(self.sent[-1][1], external_id)

    def parse_callback(self, raw_body: bytes) -> RegisterResult:
        raise NotImplementedError


def _fiscal_data(total: int) -> FiscalData:
    return FiscalData(fn_number="9999000000000001", fiscal_document_number=7,
                      fiscal_document_attribute=1234567890,
                      receipt_datetime=datetime(2026, 12, 6, 12, 0, tzinfo=UTC),
                      total_kopecks=total)


def _done_as_sent(draft: ReceiptDraft, external_id: str) -> RegisterResult:
    return RegisterResult(DONE, external_id, "uuid-1", fiscal=_fiscal_data(draft.total_kopecks))


def _use(app, register) -> None:
    app.extensions["kassa.fiscal"] = register


def _paid(lines=CART) -> int:
    """A paid payment of an order of `lines`; returns its id."""
    order = create_order(channel=OrderChannel.MINIAPP, lines=lines,
                         customer_email="buyer@example.ru")
    qr = QrCode(kind=QrKind.DYNAMIC, status=QrStatus.PAID, qr_id=f"QR{order.id}",
                bank_order=f"order-{order.id}", amount_kopecks=order.total_kopecks,
                payload="https://qr.nspk.ru/x", order_id=order.id)
    db.session.add(qr)
    db.session.flush()
    payment = Payment(qr_code_id=qr.id, order_id=order.id, amount_kopecks=order.total_kopecks,
                      status=PaymentStatus.PAID, transaction_id=f"tx-{order.id}",
                      bank_key=f"{qr.bank_order}|{order.total_kopecks}|")
    db.session.add(payment)
    db.session.commit()
    return payment.id


def _failed_events() -> list[int]:
    return [job.payload["receipt_id"] for job in db.session.scalars(
        sa.select(Job).where(Job.name == "test.receipt_failed"))]


@pytest.fixture
def failed_events(app):
    registry(app).subscribe("receipt.failed", "test.receipt_failed")
    return _failed_events


# ------------------------------------------------------------------ external ids


def test_external_ids_carry_an_install_id_made_once_and_kept(app) -> None:
    _use(app, ScriptedRegister(_done_as_sent))
    sale = writing.create_sale_receipt(_paid())
    install = db.session.scalar(sa.select(Installation.install_id))
    assert re.fullmatch(r"[0-9a-f]{8}", install)
    assert sale.external_id == f"sell-{install}-{sale.payment_id}"
    again = writing.create_sale_receipt(_paid())
    assert again.external_id == f"sell-{install}-{again.payment_id}"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Installation)) == 1


def test_another_database_on_the_same_register_never_reuses_our_ids(app) -> None:
    """A restored backup or a second shop starts its payment ids at 1 too: its receipts
    must not be the ones the register already holds for this installation."""
    _use(app, ScriptedRegister(_done_as_sent))
    ours = writing.create_sale_receipt(_paid()).external_id
    db.session.execute(sa.delete(Receipt))
    db.session.execute(sa.delete(Installation))  # the other database's own installation
    db.session.commit()
    theirs = writing.create_sale_receipt(_paid()).external_id
    assert ours.split("-")[0] == theirs.split("-")[0] == "sell"
    assert ours != theirs


def test_install_id_is_made_once_under_concurrent_first_calls(app) -> None:
    values: list[str] = []
    start = threading.Barrier(4)

    def first_call() -> None:
        with app.app_context():
            start.wait()
            values.append(install_id())
            db.session.commit()
            db.session.remove()

    threads = [threading.Thread(target=first_call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(values) == 4 and len(set(values)) == 1
    assert db.session.scalars(sa.select(Installation.install_id)).all() == values[:1]


def test_resubmitted_ids_keep_the_install_id(app) -> None:
    _use(app, ScriptedRegister(lambda draft, ext: RegisterResult(FAIL, ext, None, error="x")))
    receipt = writing.create_sale_receipt(_paid())
    fiscal.submit(receipt.id)
    db.session.refresh(receipt)
    install = install_id()
    assert receipt.external_id == f"sell-{install}-{receipt.payment_id}-r2"


# ------------------------------------------------------------------ answers that do not match


@pytest.mark.parametrize("answer", [
    # The register fiscalized another total (another shop's document under our id).
    lambda draft, ext: RegisterResult(DONE, ext, "u", fiscal=_fiscal_data(draft.total_kopecks
                                                                            + 100)),
    # The register's answer states another total ...
    lambda draft, ext: RegisterResult(DONE, ext, "u", total_kopecks=draft.total_kopecks - 1),
    # ... or other lines (a Raiffeisen answer carries the receipt it holds).
    lambda draft, ext: RegisterResult(
        WAIT, ext, ext, total_kopecks=draft.total_kopecks,
        lines=tuple(AnsweredLine("Чай", line.price_kopecks, line.quantity_milli,
                                 line.amount_kopecks, line.vat) for line in draft.lines)),
    lambda draft, ext: RegisterResult(
        DONE, ext, ext, total_kopecks=draft.total_kopecks,
        lines=tuple(AnsweredLine(line.name, line.price_kopecks, line.quantity_milli,
                                 line.amount_kopecks, line.vat) for line in draft.lines[:1])),
])
def test_an_answer_that_does_not_match_the_receipt_never_marks_it_done(
        app, failed_events, answer) -> None:
    _use(app, ScriptedRegister(answer))
    receipt = writing.create_sale_receipt(_paid())
    assert fiscal.submit(receipt.id) == "failed"
    db.session.refresh(receipt)
    assert receipt.status == ReceiptStatus.FAILED
    assert receipt.fn_number is None and receipt.attempt == 1  # not resubmitted blindly
    assert "does not match the receipt" in receipt.error
    assert failed_events() == [receipt.id]


def test_a_matching_answer_marks_it_done(app, failed_events) -> None:
    def same(draft, ext):
        return RegisterResult(DONE, ext, ext, fiscal=_fiscal_data(draft.total_kopecks),
                              total_kopecks=draft.total_kopecks,
                              lines=tuple(AnsweredLine(x.name, x.price_kopecks, x.quantity_milli,
                                                       x.amount_kopecks, x.vat)
                                          for x in draft.lines))

    _use(app, ScriptedRegister(same))
    receipt = writing.create_sale_receipt(_paid())
    assert fiscal.submit(receipt.id) == "done"
    assert failed_events() == []


# ------------------------------------------------------------------ receipts that cannot be built


def test_a_receipt_the_builder_cannot_build_fails_at_once_with_its_reason(
        app, failed_events) -> None:
    register = ScriptedRegister(_done_as_sent)
    _use(app, register)
    payment_id = _paid()
    # An order saved before the checkout checks: a line no register can carry.
    db.session.execute(sa.update(OrderItem).where(OrderItem.position == 0)
                       .values(measure="parsec"))
    db.session.commit()
    receipt = writing.create_sale_receipt(payment_id)  # no exception: no job retries
    assert receipt.status == ReceiptStatus.FAILED
    assert "parsec" in receipt.error and "bad_line" in receipt.error
    assert failed_events() == [receipt.id]
    assert writing.create_sale_receipt(payment_id).id == receipt.id  # once
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Job)
                             .where(Job.name == "fiscal.submit")) == 0
    assert register.sent == []


def test_a_stored_receipt_that_cannot_be_sent_fails_without_calling_the_register(
        app, failed_events) -> None:
    register = ScriptedRegister(_done_as_sent)
    _use(app, register)
    receipt = writing.create_sale_receipt(_paid())
    receipt.lines = [dict(receipt.lines[0], vat="vat18"), *receipt.lines[1:]]
    db.session.commit()
    assert fiscal.submit(receipt.id) == "failed"
    db.session.refresh(receipt)
    assert "vat18" in receipt.error and register.sent == []
    assert failed_events() == [receipt.id]


# ------------------------------------------------------------------ the register's units


def test_raiffeisen_units_fit_sixteen_characters(app) -> None:
    client = RaiffeisenReceiptsClient("http://127.0.0.1:9", "key")
    for measure in MEASURES:
        line = ReceiptLine("Ткань", 10000, 1000, 10000, measure=measure)
        draft = ReceiptDraft("sell", (line,), 10000, writing.company())
        item = client.receipt_body(draft, external_id="n")["items"][0]
        assert len(item.get("measurementUnit", "")) <= 16, measure


# ------------------------------------------------------------------ the customer's page


def test_the_receipt_page_links_the_ofd_only_over_https(app) -> None:
    _use(app, ScriptedRegister(_done_as_sent))
    receipt = writing.create_sale_receipt(_paid())
    fiscal.submit(receipt.id)
    for url, linked in (("http://ofd.example/receipt?fn=1&i=2", False),
                        ("javascript:alert(1)", False),
                        ("//ofd.example/receipt", False),
                        ("https://ofd.example/receipt?fn=1&i=2", True)):
        receipt = db.session.get(Receipt, receipt.id)
        receipt.ofd_receipt_url = url
        db.session.commit()
        html = app.test_client().get(f"/fiscal/r/{receipt.token}").get_data(as_text=True)
        assert "Кассовый чек" in html
        assert ("Чек на сайте ОФД" in html) is linked, url
        assert (f'href="{url}"' in html.replace("&amp;", "&")) is linked, url


# ------------------------------------------------------------------ ATOL callbacks


def test_an_atol_callback_without_external_id_is_matched_by_uuid(app) -> None:
    receipt = writing.create_sale_receipt(_paid())  # the app's own ATOL client
    receipt.set_status(ReceiptStatus.WAIT)
    receipt.provider_id = "5c7e3f2a-0000-4000-8000-000000000001"
    db.session.commit()
    body = json.dumps({"uuid": receipt.provider_id, "status": "done", "error": None,
                       "timestamp": "06.12.2026 12:00:00", "payload": None}).encode()
    assert fiscal.handle_atol_callback(body) == "poll_scheduled"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Job).where(
        Job.name == "fiscal.poll")) == 1
    other = json.dumps({"uuid": "5c7e3f2a-0000-4000-8000-000000000002",
                        "status": "done"}).encode()
    with pytest.raises(NotFoundError):
        fiscal.handle_atol_callback(other)


# ------------------------------------------------------------------ polling the register


def test_a_report_asked_too_soon_is_asked_again_after_the_delay_without_using_an_attempt(
        app) -> None:
    """ATOL takes one report request a second per document; its client refuses a sooner
    one, and the poll job comes back when the register said, with its attempts intact."""

    class TooSoon(ScriptedRegister):
        def status(self, *, external_id: str, provider_id, operation: str) -> RegisterResult:
            raise ProviderError("too_soon", "asked again within 1 s", provider="atol",
                                retryable=True, retry_after=0.75)

    _use(app, TooSoon(_done_as_sent))
    receipt = writing.create_sale_receipt(_paid())
    receipt.set_status(ReceiptStatus.WAIT)
    receipt.provider_id = "5c7e3f2a-0000-4000-8000-000000000001"
    db.session.execute(sa.delete(Job))
    enqueue("fiscal.poll", {"receipt_id": receipt.id}, max_attempts=1)
    db.session.commit()

    before = utcnow()
    assert Worker(app, worker_id="w").run_once() == 1
    after = utcnow()

    job = db.session.scalars(sa.select(Job)).one()
    assert (job.status, job.attempts) == (JobStatus.QUEUED, 0)
    assert before + timedelta(seconds=0.75) <= job.run_at <= after + timedelta(seconds=0.75)
    assert "too_soon" in job.last_error
    assert db.session.get(Receipt, receipt.id).status == ReceiptStatus.WAIT
