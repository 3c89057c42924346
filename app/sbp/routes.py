"""Blueprint "sbp": the bank's callback and QR images. Thin: the use-case modules do the work."""

from __future__ import annotations

import hashlib
import logging

import sqlalchemy as sa
from flask import Blueprint, Response, abort, jsonify, request

from app.extensions import csrf, db, read_only
from app.httpclient import ProviderError
from app.models import QrCode
from app.qrimage import MIMETYPES, render
from app.sbp.bank_events import Outcome, handle_callback
from app.sbp.provider import SignatureError

logger = logging.getLogger(__name__)

bp = Blueprint("sbp", __name__)
csrf.exempt(bp)


@bp.post("/callback")
def callback():
    raw = request.get_data(cache=False)
    try:
        outcome = handle_callback(raw, request.headers)
    except SignatureError as exc:
        logger.warning("bank callback refused from %s: %s", request.remote_addr, exc.message)
        return jsonify(ok=False, error="bad_signature", message=exc.message), 400
    except ProviderError as exc:
        logger.warning("bank callback refused: %s", exc.message)
        # A retryable error is ours (the bank's API could not be asked): 503, send again.
        return jsonify(ok=False, error=exc.code, message=exc.message), (
            503 if exc.retryable else 400)
    if outcome == Outcome.UNKNOWN_ORDER:
        # Not an error of the bank's: the order may be committed a moment from now. Any
        # answer but 200 makes the bank send it again later.
        return jsonify(ok=False, error=outcome, message="unknown order, send it again later"), 404
    return jsonify(ok=True, outcome=outcome)


@bp.get("/qr/<qr_id>.<fmt>")
@read_only
def qr_image(qr_id: str, fmt: str):
    if fmt not in MIMETYPES:
        abort(404)
    payload = db.session.scalar(sa.select(QrCode.payload).where(QrCode.qr_id == qr_id))
    if payload is None:
        abort(404)
    etag = hashlib.sha256(payload.encode()).hexdigest()[:32]
    if request.if_none_match.contains(etag):
        return Response(status=304)
    body, mimetype = render(payload, fmt)
    response = Response(body, mimetype=mimetype)
    response.set_etag(etag)
    # The payload of a QR never changes: let browsers and proxies keep it.
    response.cache_control.public = True
    response.cache_control.max_age = 86400 * 30
    response.cache_control.immutable = True
    return response
