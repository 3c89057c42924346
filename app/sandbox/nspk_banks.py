"""NSPK's list of SBP member bank apps, as https://qr.nspk.ru/proxyapp/c2bmembers.json serves it
(no auth), so Kassa's refresh job (app/storefront/banks.py) has something to fetch in
development and tests:

    GET  /proxyapp/c2bmembers.json   {"version": "1.0", "dictionary": [{"bankName", "logoURL",
                                     "schema", "package_name"}, ...]} from the list shipped with
                                     Kassa (app/checkout/sbp_banks.json, read as a file)
    POST /sandbox/c2bmembers         control: {"dictionary": [...]} serves that list instead,
                                     {"status": 503} answers that status, {} serves the shipped
                                     list again; -> {"ok": true}

The sandbox does not know the banks' Android package names: `package_name` is empty.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, request

from .errors import invalid
from .jsonio import json_response, loads

bp = Blueprint("sandbox_nspk_banks", __name__)

SHIPPED = Path(__file__).resolve().parents[1] / "checkout" / "sbp_banks.json"
LOGO_URL = "https://qr.nspk.ru/proxyapp/logo/{schema}.png"
_KEY = "kassa_sandbox_c2bmembers"


def _override() -> dict[str, Any]:
    return current_app.extensions.setdefault(_KEY, {})


def shipped_members() -> list[dict[str, str]]:
    banks = json.loads(SHIPPED.read_text(encoding="utf-8"))["banks"]
    return [{"bankName": bank["name"], "logoURL": LOGO_URL.format(schema=bank["schema"]),
             "schema": bank["schema"], "package_name": ""} for bank in banks]


@bp.get("/proxyapp/c2bmembers.json")
def c2bmembers() -> Response:
    override = _override()
    if override.get("status"):
        return Response("Service Unavailable", status=override["status"], mimetype="text/plain")
    dictionary = override.get("dictionary")
    return json_response({"version": "1.0",
                          "dictionary": shipped_members() if dictionary is None else dictionary})


@bp.post("/sandbox/c2bmembers")
def control() -> Response:
    try:
        body = loads(request.get_data() or b"{}")
    except ValueError:
        raise invalid("body is not JSON") from None
    if not isinstance(body, dict):
        raise invalid("body must be an object")
    status = body.get("status")
    if status is not None and (isinstance(status, bool) or not isinstance(status, int)
                               or not 400 <= status <= 599):
        raise invalid("status must be an HTTP error status (400-599)")
    dictionary = body.get("dictionary")
    if dictionary is not None and not isinstance(dictionary, list):
        raise invalid("dictionary must be a list")
    override = _override()
    override.clear()
    if status is not None:
        override["status"] = status
    if dictionary is not None:
        override["dictionary"] = dictionary
    return json_response({"ok": True})
