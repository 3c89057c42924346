"""Sandbox-only fault switches of the emulated bank API (no auth).

    POST /sandbox/bank/faults   any of {"down": bool, "slow": seconds, "pay_on_register": bool};
                                -> the faults now in force
    GET  /sandbox/bank/faults   the faults now in force

``down`` makes every bank API endpoint (``/api/...``: QRs, refunds, cash-link orders,
settings) answer 503 ``ERROR.SERVICE_UNAVAILABLE`` without doing anything; ``slow`` holds
each bank API answer back that many seconds after the work is done (0 stops it), so a
client that gives up has still registered its QR; ``pay_on_register`` pays every newly
registered QRDynamic at once, before the registration answers, so the bank's callback races
the caller's commit of the QR. The payer pages and the ``/sandbox/...`` endpoints are not
affected. ``POST /sandbox/reset`` clears them together with the rest of the state.
"""

from __future__ import annotations

from decimal import Decimal

from flask import Blueprint, Response, current_app, request

from .errors import invalid
from .fiscal_state import render_response
from .jsonio import loads
from .state import BANK_FAULT_KEYS, SandboxState

bp = Blueprint("sandbox_bank_control", __name__, url_prefix="/sandbox/bank")

#: Upper bound of the ``slow`` fault, so a typo cannot hang a test run.
MAX_SLOW_SECONDS = 60


def _state() -> SandboxState:
    return current_app.extensions["kassa_sandbox"].state


@bp.get("/faults")
def show_faults() -> Response:
    return render_response(_state().bank_faults_json())


@bp.post("/faults")
def set_faults() -> Response:
    raw = request.get_data(cache=True)
    try:
        body = loads(raw) if raw.strip() else {}
    except ValueError:
        raise invalid("malformed JSON body") from None
    if not isinstance(body, dict):
        raise invalid("the JSON body must be an object")
    unknown = sorted(set(body) - set(BANK_FAULT_KEYS))
    if unknown:
        raise invalid(f"unknown faults {', '.join(unknown)}; known: {', '.join(BANK_FAULT_KEYS)}")
    for key in ("down", "pay_on_register"):
        if key in body and not isinstance(body[key], bool):
            raise invalid(f"{key} must be true or false")
    changes = {key: body[key] for key in ("down", "pay_on_register") if key in body}
    if "slow" in body:
        slow = body["slow"]
        if (
            isinstance(slow, bool)
            or not isinstance(slow, (int, Decimal))
            or not 0 <= slow <= MAX_SLOW_SECONDS
        ):
            raise invalid(f"slow must be a number of seconds from 0 to {MAX_SLOW_SECONDS}")
        changes["slow"] = Decimal(str(slow))
    return render_response(_state().set_bank_faults(changes))
