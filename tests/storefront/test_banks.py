"""The bank list: the sandbox serves NSPK's c2bmembers.json, the refresh job keeps it in the
bank directory and the pay page's sbp_banks() reads it; when NSPK is down or answers
nonsense the last list stays, and without any the list shipped with Kassa is used."""

from __future__ import annotations

import pytest
import requests

from app.checkout.banks import Bank, sbp_banks, shipped_banks
from app.extensions import db
from app.jobs import registry
from app.models import BankDirectory
from app.storefront.banks import JOB, BankListUnavailable, parse_members, refresh_banks
from tests.storefront.shopadmin_support import audit, members_url, sandbox

SBER, TBANK = "bank100000000111", "bank100000000004"


@pytest.fixture
def nspk():
    server = sandbox()
    yield server
    server.shutdown()


@pytest.fixture
def banks_app(make_app, nspk):
    app = make_app(NSPK_BANKS_URL=members_url(nspk))
    with app.app_context():
        yield app


def _serve(nspk, **body) -> None:
    requests.post(f"{nspk.url}/sandbox/c2bmembers", json=body, timeout=5).raise_for_status()


def test_the_sandbox_serves_the_shipped_list_in_nspks_format(nspk):
    answer = requests.get(members_url(nspk), timeout=5)
    assert answer.status_code == 200
    data = answer.json()
    assert data["version"] == "1.0"
    assert [(e["bankName"], e["schema"]) for e in data["dictionary"]] == [
        (bank.name, bank.schema) for bank in shipped_banks()]
    assert set(data["dictionary"][0]) == {"bankName", "logoURL", "schema", "package_name"}
    assert data["dictionary"][0]["logoURL"].endswith(f"/{SBER}.png")


def test_refresh_stores_nspks_list_and_the_pay_page_offers_it(banks_app, nspk):
    assert sbp_banks() == shipped_banks()  # nothing fetched yet
    _serve(nspk, dictionary=[
        {"bankName": "Новый Банк", "logoURL": "", "schema": "bank100000000999",
         "package_name": "ru.new.bank"},
        {"bankName": "Сломанный", "schema": "intent://nope"},
        {"bankName": "  Т-Банк ", "schema": TBANK},
        {"bankName": "СберБанк", "schema": SBER},
        {"bankName": "Сбер ещё раз", "schema": SBER},
        "junk",
    ])
    directory = refresh_banks()
    # The shipped list's banks first in its order, the new ones after; bad entries dropped.
    assert directory.banks == [{"name": "СберБанк", "schema": SBER},
                               {"name": "Т-Банк", "schema": TBANK},
                               {"name": "Новый Банк", "schema": "bank100000000999"}]
    assert directory.source_url == members_url(nspk)
    assert sbp_banks() == (Bank("СберБанк", SBER), Bank("Т-Банк", TBANK),
                           Bank("Новый Банк", "bank100000000999"))
    assert [entry.details["banks"] for entry in audit("storefront.banks")] == [3]


@pytest.mark.parametrize("fault", [{"status": 503}, {"dictionary": []},
                                   {"dictionary": [{"bankName": "X", "schema": "bad"}]}])
def test_a_failed_fetch_keeps_the_last_list(banks_app, nspk, fault):
    _serve(nspk, dictionary=[{"bankName": "СберБанк", "schema": SBER}])
    refresh_banks()
    _serve(nspk, **fault)
    with pytest.raises(BankListUnavailable, match="остаётся прежний"):
        refresh_banks()
    db.session.expire_all()
    assert db.session.get(BankDirectory, 1).banks == [{"name": "СберБанк", "schema": SBER}]
    assert sbp_banks() == (Bank("СберБанк", SBER),)


def test_without_a_fetched_list_nspk_down_means_the_shipped_list(make_app):
    app = make_app(NSPK_BANKS_URL="http://127.0.0.1:9/proxyapp/c2bmembers.json")
    with app.app_context():
        with pytest.raises(BankListUnavailable):
            refresh_banks()
        assert db.session.get(BankDirectory, 1) is None
        assert sbp_banks() == shipped_banks()
        # The job logs and waits for its next turn: no failure, no retry storm.
        registry().handlers[JOB]({})


def test_the_job_runs_every_nspk_banks_refresh_hours(make_app):
    assert JOB not in registry(make_app()).periodic_jobs  # 0 in tests: off
    assert registry(make_app(NSPK_BANKS_REFRESH_HOURS=24)).periodic_jobs[JOB] == 24 * 3600


def test_the_worker_refreshes_the_list(banks_app, nspk):
    from app.jobs import enqueue
    from app.jobs.worker import Worker

    _serve(nspk, dictionary=[{"bankName": "Т-Банк", "schema": TBANK}])
    enqueue(JOB, {}, key="banks-now")
    db.session.commit()
    Worker(banks_app).run(burst=True)
    db.session.expire_all()
    assert db.session.get(BankDirectory, 1).banks == [{"name": "Т-Банк", "schema": TBANK}]


def test_parse_members_refuses_what_is_not_nspks_format():
    from app.httpclient import ProviderError

    for data in ([], {"version": "1"}, {"dictionary": "x"}):
        with pytest.raises(ProviderError):
            parse_members(data)
