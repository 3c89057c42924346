"""QR images under PUBLIC_URL: PNG and SVG of the bank's payload, cached by browsers."""

from app.extensions import db
from app.models import QrCode, QrKind, QrStatus
from tests.helpers import decode_qr

PAYLOAD = "https://qr.nspk.ru/AD100004BAL7227F9BNP6KNE007J9B3K?type=02&bank=100000000007&sum=100&cur=RUB&crc=AB75"


def _qr(app):
    qr = QrCode(
        kind=QrKind.STATIC,
        status=QrStatus.ACTIVE,
        qr_id="AD100004BAL7227F9BNP6KNE007J9B3K",
        bank_order="st-test",
        payload=PAYLOAD,
    )
    db.session.add(qr)
    db.session.commit()
    return qr


def test_png_decodes_to_the_payload_and_is_cacheable(app):
    qr = _qr(app)
    client = app.test_client()
    response = client.get(f"/sbp/qr/{qr.qr_id}.png")
    assert response.status_code == 200
    assert response.mimetype == "image/png"
    assert "immutable" in response.headers["Cache-Control"]
    decoded = decode_qr(response.data)
    assert decoded == PAYLOAD
    again = client.get(
        f"/sbp/qr/{qr.qr_id}.png", headers={"If-None-Match": response.headers["ETag"]}
    )
    assert again.status_code == 304


def test_svg_and_unknown(app):
    qr = _qr(app)
    client = app.test_client()
    svg = client.get(f"/sbp/qr/{qr.qr_id}.svg")
    assert svg.status_code == 200
    assert svg.mimetype == "image/svg+xml"
    assert b"<svg" in svg.data
    assert client.get("/sbp/qr/NOPE.png").status_code == 404
    assert client.get(f"/sbp/qr/{qr.qr_id}.gif").status_code == 404
