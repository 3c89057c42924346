"""SSRF (ASVS 5.2.6): a callback URL that an admin or an API client sets is refused when it
is not http(s) or when its host resolves into the internal network, at save time (the
panel's form, `flask api-client create`) and again right before each callback is sent
(DNS may have changed since). Name resolution is replaced: nothing here leaves the machine.
"""

from __future__ import annotations

import ipaddress

import pytest
import sqlalchemy as sa

from app import httpclient
from app.config import load_config
from app.constructor import outbound
from app.constructor.callbacks import SEND_JOB
from app.constructor.clients import create_client
from app.extensions import db
from app.httpclient import UnsafeUrl, check_outbound_url
from app.jobs import enqueue
from app.jobs.worker import Worker
from app.models import ApiClient, CallbackDelivery, Job, JobStatus
from tests.admin.conftest import logged_in, make_admin
from tests.constructor.callback_capture import make_api_order

PUBLIC = "93.184.216.34"
# What the replaced resolver answers for names; an IP literal resolves to itself.
NAMES = {
    "localhost": ["127.0.0.1", "::1"],
    "shop.example": [PUBLIC],
    "half.example": [PUBLIC, "10.1.2.3"],  # one internal address is enough to refuse
}


@pytest.fixture
def dns(monkeypatch):
    """The resolver, as a dict the test may change (name -> addresses)."""
    names = {name: list(addresses) for name, addresses in NAMES.items()}

    def resolve(host: str, port: int) -> list[str]:
        if host in names:
            return names[host]
        try:
            return [str(ipaddress.ip_address(host))]
        except ValueError:
            raise OSError(f"unknown name {host}") from None

    monkeypatch.setattr(httpclient, "resolve_host", resolve)
    return names


@pytest.fixture
def prod(make_app):
    """An app that calls only public addresses, as production does."""
    app = make_app(OUTBOUND_ALLOW_PRIVATE=False)
    with app.app_context():
        yield app


@pytest.mark.parametrize(("url", "reason"), [
    ("http://127.0.0.1/hook", "private"),
    ("http://10.0.0.1/hook", "private"),
    ("http://192.168.1.10:8080/hook", "private"),
    ("http://169.254.169.254/latest/meta-data/", "private"),  # the cloud's metadata
    ("http://[::1]/hook", "private"),
    ("http://[fe80::1]/hook", "private"),
    ("http://[fd00::1]/hook", "private"),
    ("http://[::ffff:127.0.0.1]/hook", "private"),
    ("http://0.0.0.0/hook", "private"),
    ("http://224.0.0.1/hook", "private"),
    ("http://localhost:5000/hook", "private"),
    ("https://half.example/hook", "private"),
    ("https://nowhere.example/hook", "unresolvable"),
    ("file:///etc/passwd", "scheme"),
    ("gopher://127.0.0.1:6379/_FLUSHALL", "scheme"),
])
def test_internal_and_non_http_urls_are_refused(dns, url, reason):
    with pytest.raises(UnsafeUrl) as refused:
        check_outbound_url(url)
    assert refused.value.reason == reason


def test_a_public_address_passes_and_development_may_call_loopback(dns):
    assert check_outbound_url(f"http://{PUBLIC}/") == [PUBLIC]
    assert check_outbound_url("https://shop.example/kassa?x=1") == [PUBLIC]
    assert check_outbound_url("http://127.0.0.1:8099/hook", allow_private=True) == []
    with pytest.raises(UnsafeUrl):  # never another scheme, whatever the setting
        check_outbound_url("file:///etc/passwd", allow_private=True)


def test_numeric_spellings_of_loopback_are_seen_through():
    """The real resolver: the decimal and short forms of 127.0.0.1 are loopback too."""
    for url in ("http://2130706433/", "http://127.1/"):
        with pytest.raises(UnsafeUrl):
            check_outbound_url(url)


def test_production_refuses_private_addresses_by_default(monkeypatch):
    monkeypatch.delenv("OUTBOUND_ALLOW_PRIVATE", raising=False)
    assert load_config("development")["OUTBOUND_ALLOW_PRIVATE"] is True
    assert load_config("testing")["OUTBOUND_ALLOW_PRIVATE"] is True
    monkeypatch.setenv("OUTBOUND_ALLOW_PRIVATE", "0")
    assert load_config("development")["OUTBOUND_ALLOW_PRIVATE"] is False
    monkeypatch.setenv("OUTBOUND_ALLOW_PRIVATE", "maybe")
    with pytest.raises(Exception, match="OUTBOUND_ALLOW_PRIVATE must be 1 or 0"):
        load_config("development")


def _clients() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(ApiClient))


def test_the_panel_refuses_an_internal_callback_url_next_to_its_field(prod, dns):
    admin = logged_in(prod, make_admin())
    response = admin.post("/admin/api-clients", data={
        "name": "Бот", "preset": "webhook",
        "callback_url": "http://169.254.169.254/latest/meta-data/"})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "ведёт во внутреннюю сеть" in html and "169.254.169.254" in html
    assert _clients() == 0

    response = admin.post("/admin/api-clients", data={
        "name": "Бот", "preset": "webhook", "callback_url": "https://shop.example/kassa"})
    assert response.status_code == 200
    assert _clients() == 1

    # Changing a saved client to an internal URL is refused the same way.
    client_id = db.session.scalar(sa.select(ApiClient.id))
    response = admin.post(f"/admin/api-clients/{client_id}", data={
        "name": "Бот", "preset": "webhook", "callback_url": "http://localhost:6379/"})
    assert response.status_code == 422
    assert "ведёт во внутреннюю сеть" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(ApiClient, client_id).callback_url == "https://shop.example/kassa"


def test_the_cli_refuses_an_internal_callback_url_in_one_line(prod, dns):
    result = prod.test_cli_runner().invoke(args=[
        "api-client", "create", "бот", "--callback-url", "http://10.0.0.1/hook"])
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    (line,) = result.output.strip().splitlines()
    assert "invalid_callback_url" in line and "10.0.0.1" in line
    assert _clients() == 0


def test_a_callback_url_that_now_resolves_inside_is_not_called_and_its_job_dies(
        prod, dns, monkeypatch):
    client, _key = create_client("бот", preset="webhook",
                                 callback_url="https://shop.example/kassa")
    order = make_api_order(client.id)
    dns["shop.example"] = ["10.0.0.5"]  # the name was repointed after it was saved
    sent = []
    monkeypatch.setattr(outbound.requests, "request",
                        lambda *args, **kwargs: sent.append(args) or pytest.fail("sent"))
    key = f"{SEND_JOB}:test:{client.id}"
    enqueue(SEND_JOB, {"api_client_id": client.id, "order_id": order.id, "event": "expired",
                       "key": key}, key=key)
    db.session.commit()

    Worker(prod).run_once()

    assert sent == []
    db.session.expire_all()
    job = db.session.scalars(sa.select(Job).where(Job.key == key)).one()
    assert job.status == JobStatus.DEAD and job.attempts == 1
    assert "10.0.0.5" in job.last_error and "internal address" in job.last_error
    (delivery,) = db.session.scalars(sa.select(CallbackDelivery))
    assert not delivery.ok and delivery.status_code is None
    assert delivery.error.startswith("refused: shop.example resolves to 10.0.0.5")


def test_a_redirect_is_not_followed(prod, dns, monkeypatch):
    """Whatever the answer says, the request goes nowhere else (a 3xx is just an answer)."""
    seen = {}

    def request(method, url, **kwargs):
        seen.update(kwargs)
        raise outbound.requests.ConnectionError("not really sent")

    monkeypatch.setattr(outbound.requests, "request", request)
    call = outbound.OutboundRequest("POST", "https://shop.example/kassa", {}, b"{}")
    answer = outbound.send(call, check_address=True)
    assert seen["allow_redirects"] is False
    assert answer.retry and not answer.refused
