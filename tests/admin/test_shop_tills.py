"""Tills and QR codes against the sandbox bank: a cash link and static QR codes registered
from the panel, their printable stickers read by a phone's decoder, a static QR cancelled;
a bank that does not answer is said so; a viewer prints but registers nothing."""

from __future__ import annotations

import base64
import html
import re

import pytest
import requests
import sqlalchemy as sa

from app.config import SANDBOX_MERCHANT_ID, SANDBOX_SECRET_KEY
from app.extensions import db
from app.models import AdminRole, AuditEntry, QrCode, QrKind, QrStatus
from app.people.services import add_staff, assign_till
from app.sandbox import SandboxSettings, start_sandbox
from app.sbp.qrcodes import create_static_qr
from tests.admin.conftest import logged_in, make_admin
from tests.helpers import decode_qr


@pytest.fixture
def bank():
    sandbox = start_sandbox(SandboxSettings(merchant_id=SANDBOX_MERCHANT_ID,
                                            secret_key=SANDBOX_SECRET_KEY, callback_url=None))
    yield sandbox
    sandbox.shutdown()


@pytest.fixture
def banked(make_app, bank):
    """The app pointed at the sandbox bank, in an app context."""
    app = make_app(RAIFFEISEN_API_URL=bank.url)
    with app.app_context():
        yield app


def _sticker(page: str) -> str:
    """What a phone reads from the sticker's QR image on a printable page."""
    data = re.search(r'src="data:image/png;base64,([^"]+)"', page).group(1)
    return decode_qr(base64.b64decode(data))


def _bank_reads(bank, qr: QrCode) -> str:
    """What a phone reads from the bank's own image of the QR code."""
    image = requests.get(f"{bank.url}/api/sbp/v1/qr/{qr.qr_id}/image", timeout=5)
    assert image.status_code == 200
    return decode_qr(image.content)


def _qrs(kind: QrKind) -> list[QrCode]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(QrCode).where(QrCode.kind == kind)))


def test_a_registered_cash_link_prints_the_banks_qr(banked, bank):
    client = logged_in(banked, make_admin())
    assert "Касс пока нет" in client.get("/admin/tills").get_data(as_text=True)

    response = client.post("/admin/tills/cash-links", data={"description": "Касса у входа"},
                           follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "Кассовая ссылка зарегистрирована" in page
    (link,) = _qrs(QrKind.CASH_LINK)
    assert (link.status, link.description) == (QrStatus.INACTIVE, "Касса у входа")
    assert _sticker(page) == link.payload == _bank_reads(bank, link)
    assert link.payload in html.unescape(page)  # its text, under the sticker
    assert "5×5 см" in page

    assign_till(add_staff(8001, name="Ольга").telegram_id, link.id)
    tills = client.get("/admin/tills").get_data(as_text=True)
    assert "Касса у входа" in tills and "Ольга" in tills
    entry = db.session.scalars(sa.select(AuditEntry).where(
        AuditEntry.action == "cash_link.create")).one()
    assert (entry.actor_label, entry.details["qr_id"]) == ("owner@example.com", link.qr_id)


def test_static_qrs_with_and_without_a_sum_and_cancelled(banked, bank):
    client = logged_in(banked, make_admin())
    response = client.post("/admin/tills/static", data={"amount": "пятьсот"})
    assert response.status_code == 422
    assert "Сумма в рублях" in response.get_data(as_text=True)
    response = client.post("/admin/tills/static", data={"amount": "", "description": "Я" * 200})
    assert response.status_code == 422
    assert _qrs(QrKind.STATIC) == []

    page = client.post("/admin/tills/static", data={"amount": "499,90", "description": "Кофе"},
                       follow_redirects=True).get_data(as_text=True)
    assert "Статический QR-код создан" in page and "499,90" in page
    client.post("/admin/tills/static", data={"amount": "", "description": "Чаевые"})
    fixed, free = sorted(_qrs(QrKind.STATIC), key=lambda q: q.id)
    assert (fixed.amount_kopecks, free.amount_kopecks) == (49990, None)
    assert _sticker(page) == fixed.payload == _bank_reads(bank, fixed)
    printed = client.get(f"/admin/tills/qr/{free.id}/print").get_data(as_text=True)
    assert _sticker(printed) == free.payload == _bank_reads(bank, free)

    listing = client.get("/admin/tills").get_data(as_text=True)
    assert "Кофе" in listing and "Чаевые" in listing and "любая" in listing

    page = client.post(f"/admin/tills/static/{fixed.id}/cancel",
                       follow_redirects=True).get_data(as_text=True)
    assert "QR-код отключён" in page
    assert db.session.get(QrCode, fixed.id).status == QrStatus.CANCELLED
    at_bank = {q["qrId"]: q["qrStatus"] for q in
               requests.get(f"{bank.url}/sandbox/state", timeout=5).json()["qrs"]}
    assert at_bank[fixed.qr_id] == "CANCELLED" and at_bank[free.qr_id] != "CANCELLED"
    assert "не печатайте" in client.get(
        f"/admin/tills/qr/{fixed.id}/print").get_data(as_text=True)


def test_a_bank_that_does_not_answer_is_said_so(app):
    client = logged_in(app, make_admin())  # the app's bank is a closed port
    for path, data in [("/admin/tills/cash-links", {"description": "Касса"}),
                       ("/admin/tills/static", {"amount": "100"})]:
        response = client.post(path, data=data, follow_redirects=True)
        page = response.get_data(as_text=True)
        assert response.status_code == 200
        assert 'class="flash flash-error"' in page and "Traceback" not in page
    assert _qrs(QrKind.CASH_LINK) == _qrs(QrKind.STATIC) == []


def test_a_viewer_prints_but_registers_nothing(banked, bank):
    qr = create_static_qr(amount_kopecks=10000)
    viewer = logged_in(banked, make_admin("viewer@example.com", role=AdminRole.VIEWER))
    page = viewer.get("/admin/tills").get_data(as_text=True)
    assert "Создать QR-код" not in page and "Зарегистрировать кассу" not in page
    assert _sticker(viewer.get(f"/admin/tills/qr/{qr.id}/print").get_data(as_text=True)) \
        == qr.payload
    assert viewer.post("/admin/tills/cash-links", data={}).status_code == 403
    assert viewer.post("/admin/tills/static", data={"amount": "5"}).status_code == 403
    assert viewer.post(f"/admin/tills/static/{qr.id}/cancel").status_code == 403
    assert len(_qrs(QrKind.STATIC)) == 1 and _qrs(QrKind.CASH_LINK) == []
    assert db.session.get(QrCode, qr.id).status == QrStatus.ACTIVE
