"""API clients in the panel: a key created and shown once (then only its prefix), the
webhook's signing secret, preset settings kept without echoing secrets, a revoked key
refused by the API, the delivery log with its retries, the test button, and a viewer who
reads but changes nothing."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from app.admin import integrations
from app.constructor import clients
from app.extensions import db
from app.models import (
    AdminRole,
    ApiClient,
    AuditEntry,
    CallbackDelivery,
    CallbackPreset,
    utcnow,
)
from tests.admin.conftest import logged_in, make_admin
from tests.admin.page import page


def _create(client, **form):
    return client.post("/admin/api-clients", data={"preset": "salebot", **form})


def test_a_new_key_is_shown_once_and_works(app, admin_client):
    assert "Клиентов API пока нет" in admin_client.get("/admin/api-clients").get_data(
        as_text=True)
    response = _create(admin_client, name="Бот цветочного")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    key = page(response).one(data_testid="key").text
    (saved,) = db.session.scalars(sa.select(ApiClient)).all()
    assert (saved.name, saved.preset) == ("Бот цветочного", CallbackPreset.SALEBOT)
    assert clients.authenticate(key).id == saved.id        # the API takes it
    assert key not in (saved.key_hash, saved.key_prefix)   # only a fingerprint is kept

    listing = admin_client.get("/admin/api-clients").get_data(as_text=True)
    assert key not in listing and f"{saved.key_prefix}…" in listing
    assert key not in admin_client.get(f"/admin/api-clients/{saved.id}").get_data(as_text=True)
    entry = db.session.scalars(sa.select(AuditEntry).where(
        AuditEntry.action == "api_client.create")).one()
    assert entry.actor_label == "owner@example.com"


def test_a_webhook_client_gets_its_signing_secret(app, admin_client):
    response = _create(admin_client, name="Свой сервер", preset="webhook",
                       callback_url="https://shop.example/kassa")
    secret = page(response).one(data_testid="signing-secret").text
    client = db.session.scalars(sa.select(ApiClient)).one()
    assert secret and secret in client.settings.values()
    assert client.callback_url == "https://shop.example/kassa"


@pytest.mark.parametrize(("form", "field", "text"), [
    ({"name": " "}, "name", "Укажите название"),
    ({"name": "Бот", "callback_url": "ftp://x"}, "callback_url", "http:// или https://"),
])
def test_a_bad_form_is_refused_next_to_its_field(app, admin_client, form, field, text):
    response = _create(admin_client, **form)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert re.search(rf'data-field="{field}">[^<]*{re.escape(text)}', html)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ApiClient)) == 0


def test_settings_are_saved_secrets_not_echoed_and_a_revoked_key_is_refused(app,
                                                                            admin_client):
    client, key = clients.create_client("Бот", preset="salebot")
    url = f"/admin/api-clients/{client.id}"
    form = {"name": "Бот в Salebot", "preset": "salebot", "callback_url": "",
            "setting_api_key": "sb-secret-123", "setting_test_client_id": "777"}
    assert admin_client.post(url, data=form).status_code == 302
    db.session.expire_all()
    assert client.name == "Бот в Salebot"
    assert client.settings == {"api_key": "sb-secret-123", "test_client_id": "777"}
    html = admin_client.get(url).get_data(as_text=True)
    assert "sb-secret-123" not in html and "задан; оставьте пустым" in html

    form["setting_api_key"] = ""  # an empty secret keeps the saved one
    admin_client.post(url, data=form)
    db.session.expire_all()
    assert client.settings["api_key"] == "sb-secret-123"

    response = admin_client.post(f"{url}/revoke", follow_redirects=True)
    assert "отозван" in page(response).one(data_testid="state").text
    assert not page(response).testid("edit-client")
    with pytest.raises(clients.AuthError):
        clients.authenticate(key)


def test_the_delivery_log_shows_each_attempt(app, admin_client):
    client, _key = clients.create_client("Бот", preset="webhook",
                                         callback_url="https://shop.example/hook")
    now = utcnow()
    db.session.add_all([
        CallbackDelivery(api_client_id=client.id, event="paid", attempt=1, at=now,
                         method="POST", url="https://shop.example/hook", status_code=502,
                         response_excerpt="Bad Gateway", ok=False, duration_ms=40),
        CallbackDelivery(api_client_id=client.id, event="paid", attempt=2, at=now,
                         method="POST", url="https://shop.example/hook", status_code=200,
                         request_body='{"status": "paid"}', ok=True, duration_ms=12),
    ])
    db.session.commit()
    rows = page(admin_client.get(f"/admin/api-clients/{client.id}")).one(
        data_testid="deliveries").all("tr", data_delivery_id=True)
    assert [(r.attrs["class"], r.all("td")[2].text) for r in rows] == [
        ("ok", "2"), ("failed", "1")]
    assert "Bad Gateway" in rows[1].text and '{"status": "paid"}' in rows[0].text


def test_the_test_button_sends_a_sample_callback(app, admin_client, monkeypatch):
    client, _key = clients.create_client("Бот", preset="webhook",
                                         callback_url="https://shop.example/hook")
    sent = []

    def send_test(client_id):
        sent.append(client_id)
        return CallbackDelivery(ok=False, status_code=None, error="connection refused")

    monkeypatch.setattr(integrations, "_send_test", lambda: send_test)
    response = admin_client.post(f"/admin/api-clients/{client.id}/test",
                                 follow_redirects=True)
    assert sent == [client.id]
    assert "не доставлено: connection refused" in response.get_data(as_text=True)


def test_a_viewer_reads_but_cannot_create_or_revoke(app):
    client, key = clients.create_client("Бот", preset="leadteh")
    viewer = logged_in(app, make_admin("viewer@example.com", AdminRole.VIEWER))
    listing = page(viewer.get("/admin/api-clients"))
    assert not listing.testid("new-client")
    assert "Бот" in listing.one(data_testid="clients").text
    assert not page(viewer.get(f"/admin/api-clients/{client.id}")).testid("edit-client")
    assert _create(viewer, name="Чужой").status_code == 403
    assert viewer.post(f"/admin/api-clients/{client.id}/revoke").status_code == 403
    assert clients.authenticate(key).id == client.id
    nav = page(viewer.get("/admin/api-clients")).one("nav")
    assert "API" in [a.text for a in nav.all("a")]
