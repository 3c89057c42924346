"""Sandbox-only control endpoints of the emulated cash registers (no auth).

    POST /sandbox/fiscal/faults   any of {"down": bool, "slow": seconds, "fail_next": n,
                                  "lose_answer_next": n, "expire_tokens": true}; -> the faults
    GET  /sandbox/fiscal/state    documents, counts per external_id, tokens, requests, callbacks
    GET  /sandbox/fiscal/receipt?fn=&i=&fp=   the document an ``ofd_receipt_url`` points to

Faults: ``down`` makes every fiscal endpoint answer 503 without doing anything; ``slow``
sleeps that long before each fiscal answer (0 stops it); ``fail_next`` makes the next n
newly registered documents (ATOL or Raiffeisen) end in fail / FAILED with KKT error -3803;
``lose_answer_next`` registers the next n registration calls (ATOL sell/sell_refund,
Raiffeisen PUT; a repeated external_id counts too) but answers 502 with no body;
``expire_tokens`` expires every ATOL token issued so far (the next call gets 401, code 11).
``POST /sandbox/reset`` clears all of it together with the bank state.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import Blueprint, Response, current_app, request

from .errors import BankError, invalid
from .fiscal_state import FAULT_KEYS, FiscalState, render_response
from .jsonio import loads

bp = Blueprint("sandbox_fiscal_control", __name__, url_prefix="/sandbox/fiscal")

#: Upper bound of the ``slow`` fault, so a typo cannot hang a test run.
MAX_SLOW_SECONDS = 60


def _fiscal() -> FiscalState:
    return current_app.extensions["kassa_sandbox"].state.fiscal


def _count(body: dict[str, Any], key: str) -> None:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise invalid(f"{key} must be a non-negative integer")


@bp.post("/faults")
def faults() -> Response:
    raw = request.get_data(cache=True)
    try:
        body = loads(raw) if raw.strip() else {}
    except ValueError:
        raise invalid("malformed JSON body") from None
    if not isinstance(body, dict):
        raise invalid("the JSON body must be an object")
    unknown = sorted(set(body) - set(FAULT_KEYS))
    if unknown:
        raise invalid(f"unknown faults {', '.join(unknown)}; known: {', '.join(FAULT_KEYS)}")
    for key in ("down", "expire_tokens"):
        if key in body and not isinstance(body[key], bool):
            raise invalid(f"{key} must be true or false")
    for key in ("fail_next", "lose_answer_next"):
        if key in body:
            _count(body, key)
    if "slow" in body:
        slow = body["slow"]
        if (
            isinstance(slow, bool)
            or not isinstance(slow, (int, Decimal))
            or not 0 <= slow <= MAX_SLOW_SECONDS
        ):
            raise invalid(f"slow must be a number of seconds from 0 to {MAX_SLOW_SECONDS}")
    return render_response(_fiscal().set_faults(body))


@bp.get("/state")
def state() -> Response:
    return render_response(_fiscal().snapshot())


@bp.get("/receipt")
def receipt() -> Response:
    found = _fiscal().find_receipt(
        request.args.get("fn", ""), request.args.get("i", ""), request.args.get("fp", "")
    )
    if found is None:
        raise BankError(404, "ERROR.NOT_FOUND", "no fiscalized receipt with this fn/i/fp")
    return render_response(found)
