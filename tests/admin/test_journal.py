"""The journal: the audit log newest first, filtered by action, actor and Moscow dates,
paged by keyset; read-only."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from app import audit
from app.extensions import db
from app.models import AuditEntry
from app.orders.services import shop_day_start
from tests.admin.page import page


def _entry(action, *, kind="admin", label="owner@example.com", at=None, **details):
    audit.act_as(audit.Actor(kind, 1, label, "10.0.0.1"))
    entry = audit.record(action, target_type="payment", target_id=7, **details)
    if at is not None:
        entry.at = at
    db.session.commit()
    return entry


def _actions(client, query=""):
    root = page(client.get(f"/admin/journal{query}"))
    rows = root.all("tr", data_entry=True)
    return [row.all("code")[0].text for row in rows], root


def test_newest_first_with_who_what_and_from_where(app, admin_client):
    _entry("refund.create", amount_kopecks=5000)
    _entry("product.update", kind="cli", label="root")
    actions, root = _actions(admin_client)
    assert actions == ["product.update", "refund.create"]
    text = root.one("table", id="journal").text
    assert "Командная строка: root" in text and "Администратор: owner@example.com" in text
    assert "10.0.0.1" in text and "amount_kopecks: 5000" in text and "payment 7" in text


def test_filters_by_action_actor_and_moscow_dates(app, viewer_client):
    today = shop_day_start()
    _entry("refund.create", at=today - timedelta(days=2))
    _entry("refund.cancel", kind="manager", label="Пётр", at=today - timedelta(seconds=1))
    _entry("product.update", kind="cli", label="root", at=today + timedelta(minutes=1))
    day = lambda moment: moment.date().isoformat()  # noqa: E731 - Moscow date of a UTC moment
    from app.formatting import MOSCOW

    yesterday = day((today - timedelta(seconds=1)).astimezone(MOSCOW))
    assert _actions(viewer_client, "?action=refund")[0] == ["refund.cancel", "refund.create"]
    assert _actions(viewer_client, "?action=refund.create")[0] == ["refund.create"]
    assert _actions(viewer_client, "?actor_kind=cli")[0] == ["product.update"]
    assert _actions(viewer_client, "?actor=пётр")[0] == ["refund.cancel"]
    assert _actions(viewer_client, f"?date_from={yesterday}&date_to={yesterday}")[0] == [
        "refund.cancel"]
    actions, root = _actions(viewer_client, "?action=catalog")
    assert actions == [] and "Под этот фильтр ничего не подходит." in root.text


def test_keyset_pages_keep_the_filter(app, admin_client, monkeypatch):
    from app.admin import journal

    monkeypatch.setattr(journal, "PAGE_SIZE", 2)
    for n in range(5):
        _entry(f"refund.n{n}")
    _entry("product.update")
    actions, root = _actions(admin_client, "?action=refund")
    assert actions == ["refund.n4", "refund.n3"]
    seen = list(actions)
    while (link := root.all("a", rel="next")):
        href = link[0].attrs["href"]
        assert "action=refund" in href
        actions, root = _actions(admin_client, href.removeprefix("/admin/journal"))
        seen += actions
    assert seen == ["refund.n4", "refund.n3", "refund.n2", "refund.n1", "refund.n0"]


def test_an_empty_journal_says_so_and_nothing_edits_it(app, admin_client):
    assert "Журнал пока пуст" in page(admin_client.get("/admin/journal")).text
    entry = _entry("refund.create")
    for method in ("post", "put", "delete", "patch"):
        response = getattr(admin_client, method)(f"/admin/journal?id={entry.id}")
        assert response.status_code == 405
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)) == 1


def test_a_bad_date_is_told_not_crashed(admin_client):
    root = page(admin_client.get("/admin/journal?date_from=31.02.2026"))
    assert root.all("span", class_="field-error")
