"""The page of admins and invites: who may act on it, roles, disabling, never the last admin,
and the CSRF token every form and htmx request carries."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import AdminInvite, AdminRole, AdminUser, AuditEntry
from tests.admin.accounts_support import csrf_token, is_logged_in
from tests.admin.conftest import PASSWORD, logged_in, make_admin


def state(email: str) -> tuple[str, bool]:
    db.session.expire_all()
    user = db.session.scalars(sa.select(AdminUser).where(AdminUser.email == email)).one()
    return user.role.value, user.active


def flash_after(client, response) -> str:
    assert response.headers["Location"] == "/admin/admins"
    return client.get("/admin/admins").get_data(as_text=True)


def test_the_page_lists_admins_and_says_there_are_no_invites(admin_client):
    make_admin("second@example.com", AdminRole.VIEWER)
    page = admin_client.get("/admin/admins").get_data(as_text=True)
    assert "owner@example.com" in page
    assert "second@example.com" in page
    assert "Приглашений пока нет" in page
    assert "Создать приглашение" in page
    assert 'href="/admin/admins"' in page  # in the menu


def test_a_viewer_reads_the_page_without_its_buttons(viewer_client):
    page = viewer_client.get("/admin/admins").get_data(as_text=True)
    assert "viewer@example.com" in page
    for button in ("Создать приглашение", "Сменить роль", "Отключить"):
        assert button not in page


def test_a_viewer_can_do_nothing_here(app, viewer_client):
    owner = make_admin()
    client = logged_in(app, owner)
    client.post("/admin/admins/invites", data={"role": "viewer"})
    invite_id = db.session.scalar(sa.select(AdminInvite.id))
    viewer_id = db.session.scalar(sa.select(AdminUser.id).where(AdminUser.email.like("viewer%")))
    audit_before = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry))
    attempts = [
        ("/admin/admins/invites", {"role": "admin"}),
        (f"/admin/admins/invites/{invite_id}/revoke", {}),
        (f"/admin/admins/{viewer_id}/role", {f"u{viewer_id}-role": "admin"}),
        (f"/admin/admins/{owner.id}/disable", {}),
        (f"/admin/admins/{owner.id}/enable", {}),
    ]
    for path, data in attempts:
        assert viewer_client.post(path, data=data).status_code == 403, path
    assert state("viewer@example.com") == ("viewer", True)
    assert state("owner@example.com") == ("admin", True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AdminInvite)) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)) == audit_before


def test_a_stranger_is_sent_to_log_in_and_changes_nothing(app):
    owner = make_admin()
    response = app.test_client().post(f"/admin/admins/{owner.id}/disable")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/admin/login")
    assert state("owner@example.com") == ("admin", True)


def test_an_admin_changes_a_role_and_it_is_recorded(app, admin_client):
    other = make_admin("second@example.com", AdminRole.VIEWER)
    page = flash_after(admin_client, admin_client.post(
        f"/admin/admins/{other.id}/role", data={f"u{other.id}-role": "admin"}))
    assert "Роль изменена" in page
    assert state("second@example.com") == ("admin", True)
    entry = db.session.scalars(sa.select(AuditEntry)).one()
    assert (entry.action, entry.target_id, entry.details["old"], entry.details["new"]) == (
        "admin.role", str(other.id), "viewer", "admin")
    assert (entry.actor_kind, entry.actor_label) == ("admin", "owner@example.com")
    unknown = admin_client.post(f"/admin/admins/{other.id}/role",
                                data={f"u{other.id}-role": "owner"})
    assert "Неверный вариант" in flash_after(admin_client, unknown)
    assert state("second@example.com") == ("admin", True)


def test_a_disabled_admin_is_logged_out_and_can_be_enabled(app, admin_client):
    other = make_admin("second@example.com", AdminRole.ADMIN)
    theirs = logged_in(app, other)
    assert is_logged_in(theirs)
    page = flash_after(admin_client, admin_client.post(f"/admin/admins/{other.id}/disable"))
    assert "Учётная запись отключена" in page
    assert "отключена" in page
    assert state("second@example.com") == ("admin", False)
    assert not is_logged_in(theirs)
    flash_after(admin_client, admin_client.post(f"/admin/admins/{other.id}/enable"))
    assert state("second@example.com") == ("admin", True)
    assert list(db.session.scalars(sa.select(AuditEntry.action).order_by(AuditEntry.id))) == [
        "admin.disable", "admin.enable"]


@pytest.mark.parametrize(("path", "data"), [
    ("/admin/admins/{id}/disable", {}),
    ("/admin/admins/{id}/role", {"u{id}-role": "viewer"}),
])
def test_the_last_admin_is_never_taken_away(app, path, data):
    owner = make_admin()
    make_admin("viewer@example.com", AdminRole.VIEWER)
    make_admin("gone@example.com", AdminRole.ADMIN).active = False
    db.session.commit()
    client = logged_in(app, owner)
    response = client.post(path.format(id=owner.id),
                           data={key.format(id=owner.id): value for key, value in data.items()})
    assert "Это последний администратор" in flash_after(client, response)
    assert state("owner@example.com") == ("admin", True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)) == 0


def test_with_two_admins_one_may_step_down(app, admin_client):
    owner_id = db.session.scalar(sa.select(AdminUser.id))
    make_admin("second@example.com", AdminRole.ADMIN)
    flash_after(admin_client, admin_client.post(f"/admin/admins/{owner_id}/role",
                                                data={f"u{owner_id}-role": "viewer"}))
    assert state("owner@example.com") == ("viewer", True)
    # Now a viewer: the panel refuses them the next action.
    assert admin_client.post(f"/admin/admins/{owner_id}/disable").status_code == 403


def test_an_unknown_account_or_invite_is_a_message(admin_client):
    assert "Учётная запись не найдена" in flash_after(
        admin_client, admin_client.post("/admin/admins/999/disable"))
    assert "Приглашение не найдено" in flash_after(
        admin_client, admin_client.post("/admin/admins/invites/999/revoke"))


# --- CSRF (on in production; the testing config turns it off, so these apps turn it on) ---

def test_a_login_without_the_csrf_token_is_refused(make_app):
    app = make_app(WTF_CSRF_ENABLED=True)
    with app.app_context():
        make_admin()
        client = app.test_client()
        data = {"email": "owner@example.com", "password": PASSWORD}
        assert client.post("/admin/login", data=data).status_code == 400
        assert not is_logged_in(client)
        data["csrf_token"] = csrf_token(client.get("/admin/login").get_data(as_text=True))
        assert client.post("/admin/login", data=data).status_code == 302
        assert is_logged_in(client)


def test_acting_without_the_csrf_token_is_refused(make_app):
    app = make_app(WTF_CSRF_ENABLED=True)
    with app.app_context():
        owner = make_admin()
        other = make_admin("second@example.com")
        client = logged_in(app, owner)
        refused = client.post(f"/admin/admins/{other.id}/disable")
        assert refused.status_code == 400
        assert "Обновите страницу" in refused.get_data(as_text=True)
        assert client.post("/admin/admins/invites", data={"role": "admin"}).status_code == 400
        assert client.post("/admin/logout").status_code == 400
        assert state("second@example.com") == ("admin", True)
        assert db.session.scalar(sa.select(sa.func.count()).select_from(AdminInvite)) == 0

        # htmx sends the page's token in a header; a form sends it as a field.
        token = csrf_token(client.get("/admin/admins").get_data(as_text=True))
        done = client.post(f"/admin/admins/{other.id}/disable", headers={"X-CSRFToken": token,
                                                                          "HX-Request": "true"})
        assert done.status_code == 302
        assert state("second@example.com") == ("admin", False)
        assert client.post(f"/admin/admins/{other.id}/enable",
                           data={"csrf_token": token}).status_code == 302
        assert state("second@example.com") == ("admin", True)
