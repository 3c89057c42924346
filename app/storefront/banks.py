"""NSPK's list of SBP member bank apps, refreshed by the periodic job
`storefront.banks_refresh` (every NSPK_BANKS_REFRESH_HOURS; 0 turns it off) or by
`flask shop banks refresh`, and kept in BankDirectory for every process.

NSPK serves the list at https://qr.nspk.ru/proxyapp/c2bmembers.json:
`{"version": "1.0", "dictionary": [{"bankName", "logoURL", "schema", "package_name"}, ...]}`.
Entries whose scheme is not `bank` + 12 digits are dropped; the banks of the list shipped with
Kassa come first, in its order (the biggest banks), then the rest in NSPK's order. A fetch that
fails or gives no bank changes nothing: the pay page keeps the last list (or the shipped one,
app/checkout/banks.py).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

import requests
from flask import Flask, current_app
from flask_babel import lazy_gettext as _l

from app import audit, jobs
from app.checkout.banks import SCHEMA, forget_cached_banks, shipped_banks
from app.errors import KassaError
from app.extensions import db
from app.httpclient import HttpClient, ProviderError
from app.models import BankDirectory, utcnow
from app.models.storefront import SINGLETON

logger = logging.getLogger(__name__)

JOB = "storefront.banks_refresh"
PROVIDER = "nspk"
MAX_NAME = 128


class BankListUnavailable(KassaError):
    code = "banks_unavailable"
    status = 502


def init_app(app: Flask) -> None:
    registry = jobs.registry(app)
    registry.handler(JOB, refresh_job)
    hours = app.config.get("NSPK_BANKS_REFRESH_HOURS") or 0
    if hours > 0:
        registry.periodic(JOB, hours * 3600)


# -- NSPK's list (no Flask) ------------------------------------------------------------------


def parse_members(data: Any) -> list[dict[str, str]]:
    """NSPK's c2bmembers.json as [{"name", "schema"}, ...]: valid schemes only, each once,
    the shipped list's banks first in its order, then the others in NSPK's order."""
    if not isinstance(data, dict) or not isinstance(data.get("dictionary"), list):
        raise ProviderError("bad_response", "no \"dictionary\" list", provider=PROVIDER)
    found: dict[str, str] = {}
    for entry in data["dictionary"]:
        if not isinstance(entry, dict):
            continue
        schema, name = entry.get("schema"), entry.get("bankName")
        if not isinstance(schema, str) or not SCHEMA.fullmatch(schema.strip()):
            continue
        if not isinstance(name, str) or not name.strip():
            continue
        found.setdefault(schema.strip(), " ".join(name.split())[:MAX_NAME])
    order = {bank.schema: index for index, bank in enumerate(shipped_banks())}
    ranked = sorted(enumerate(found.items()),
                    key=lambda item: (order.get(item[1][0], len(order)), item[0]))
    return [{"name": name, "schema": schema} for _, (schema, name) in ranked]


def fetch_members(url: str, *, timeout: tuple[float, float]) -> list[dict[str, str]]:
    """GET NSPK's list and parse it.

    :raises ProviderError: not reachable, not 200, not JSON, or no valid bank in it.
    """
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    with requests.Session() as session:
        http = HttpClient(f"{parts.scheme}://{parts.netloc}", provider=PROVIDER,
                          timeout=timeout, retries=1, session=session)
        response = http.request("GET", path)
    if response.status != 200:
        raise ProviderError(f"http_{response.status}", f"GET {url} answered {response.status}",
                            provider=PROVIDER, status=response.status)
    try:
        data = response.json()
    except ValueError:
        raise ProviderError("bad_response", "not JSON", provider=PROVIDER) from None
    banks = parse_members(data)
    if not banks:
        raise ProviderError("bad_response", "no bank with a valid scheme", provider=PROVIDER)
    return banks


# -- the service -----------------------------------------------------------------------------


def refresh_banks() -> BankDirectory:
    """Fetch NSPK_BANKS_URL and store the list; commit.

    :raises BankListUnavailable: the fetch failed or gave no bank; the last list stays.
    """
    url = current_app.config["NSPK_BANKS_URL"]
    db.session.rollback()  # no transaction stays open while NSPK is asked
    try:
        banks = fetch_members(url, timeout=current_app.config["HTTP_TIMEOUT"])
    except ProviderError as exc:
        logger.warning("bank list not refreshed from %s, the last one stays: %s", url, exc)
        raise BankListUnavailable(_l("Список банков не обновлён (%(error)s): остаётся прежний",
                                     error=str(exc))) from exc
    directory = db.session.get(BankDirectory, SINGLETON)
    before = list(directory.banks) if directory is not None else None
    if directory is None:
        directory = BankDirectory(id=SINGLETON)
        db.session.add(directory)
    directory.banks, directory.source_url, directory.fetched_at = banks, url[:255], utcnow()
    if before != banks:
        audit.record("storefront.banks", target_type="bank_directory", target_id=SINGLETON,
                     banks=len(banks), source_url=url[:255])
    db.session.commit()
    forget_cached_banks()
    logger.info("bank list refreshed from %s: %d banks", url, len(banks))
    return directory


def refresh_job(payload: dict | None = None) -> None:
    """Job `storefront.banks_refresh`: a failure is logged and waits for the next period."""
    try:
        refresh_banks()
    except BankListUnavailable:
        db.session.rollback()
