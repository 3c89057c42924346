"""Blueprint "fiscal": the register's callback and the customer's receipt page."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import Blueprint, Response, abort, current_app, jsonify, render_template, request

from app.extensions import csrf, db, read_only
from app.fiscal import services, writing
from app.fiscal.check import check_qr_payload
from app.httpclient import ProviderError
from app.models import Receipt, ReceiptStatus
from app.qrimage import MIMETYPES, render

logger = logging.getLogger(__name__)

bp = Blueprint("fiscal", __name__)
csrf.exempt(bp)


@bp.post("/atol/callback")
def atol_callback():
    if current_app.config["FISCAL_PROVIDER"] != "atol":
        abort(404)
    try:
        outcome = services.handle_atol_callback(request.get_data(cache=False))
    except ProviderError as exc:
        return jsonify(ok=False, error=exc.code, message=exc.message), 400
    return jsonify(ok=True, outcome=outcome)


def _receipt(token: str) -> Receipt:
    receipt = db.session.scalars(sa.select(Receipt).where(Receipt.token == token)).one_or_none()
    if receipt is None:
        abort(404)
    return receipt


def _ofd_link(url: str | None) -> str | None:
    """The OFD's receipt page, linked only over https: the URL comes from the register's
    answer, and a customer's page must not send them to a plain-http or script address."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    return url.strip() if parts.scheme.lower() == "https" and parts.netloc else None


@bp.get("/r/<token>")
@read_only
def receipt_page(token: str):
    receipt = _receipt(token)
    return render_template(
        "fiscal/receipt.html", receipt=receipt, lines=receipt.lines,
        check=check_qr_payload(receipt) if receipt.status == ReceiptStatus.DONE else None,
        company=writing.company(), company_name=current_app.config.get("COMPANY_NAME"),
        ofd_url=_ofd_link(receipt.ofd_receipt_url),
    )


@bp.get("/r/<token>/check.<fmt>")
@read_only
def receipt_check_qr(token: str, fmt: str):
    receipt = _receipt(token)
    payload = check_qr_payload(receipt) if receipt.status == ReceiptStatus.DONE else None
    if payload is None or fmt not in MIMETYPES:
        abort(404)
    body, mimetype = render(payload, fmt)
    response = Response(body, mimetype=mimetype)
    response.cache_control.public = True
    response.cache_control.max_age = 86400
    return response
