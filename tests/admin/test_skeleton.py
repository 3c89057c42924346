"""The panel's frame: who may see it, and the audit log that nothing may rewrite."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app import audit
from app.extensions import db
from app.models import AuditEntry


def test_the_panel_asks_a_stranger_to_log_in(app):
    response = app.test_client().get("/admin/")
    assert response.status_code == 302
    assert "/admin/login" in response.headers["Location"]


def test_a_logged_in_viewer_sees_the_panel_read_only(viewer_client):
    page = viewer_client.get("/admin/").get_data(as_text=True)
    assert "viewer@example.com" in page
    assert "только просмотр" in page


def test_an_audit_entry_commits_with_its_change_and_is_never_rewritten(app):
    audit.act_as(audit.Actor("cli", label="root", source="cli"))
    audit.record("product.update", target_type="product", target_id=7, price_kopecks=[100, 200])
    db.session.commit()
    entry = db.session.scalars(sa.select(AuditEntry)).one()
    assert (entry.actor_kind, entry.actor_label, entry.target_id) == ("cli", "root", "7")
    entry.action = "product.delete"
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        db.session.commit()
    db.session.rollback()
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        db.session.execute(sa.delete(AuditEntry))
    db.session.rollback()
    assert db.session.scalars(sa.select(AuditEntry.action)).all() == ["product.update"]
