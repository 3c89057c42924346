"""An admin ties their Telegram account to the panel: the panel shows a one-time t.me link,
the bot's /start link-<token> makes that account a manager who gets the managers' alerts.
The link works once and for 15 minutes."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import AdminUser, AuditEntry, StaffMember, TelegramLinkToken, utcnow
from app.telegram import messages
from tests.admin.conftest import logged_in, make_admin
from tests.telegram.conftest import MANAGER, STRANGER

ADMIN_TG = 9001


@pytest.fixture
def admin(telegram) -> AdminUser:
    return make_admin()


def _link(telegram, admin: AdminUser) -> str:
    """The admin asks the panel for a link; the page shows it once."""
    client = logged_in(telegram.app, admin)
    page = client.post("/admin/staff/telegram-link", follow_redirects=True).get_data(as_text=True)
    match = re.search(r'data-testid="telegram-link"[^>]*>([^<]+)<', page)
    assert match, page
    return html.unescape(match.group(1))


def _start(telegram, user_id: int, link: str) -> str:
    start = link.rsplit("?start=", 1)[1]
    before = len(telegram.messages(user_id))
    telegram.text(user_id, f"/start {start}", first_name="Ирина")
    telegram.run_jobs()
    sent = telegram.messages(user_id)
    assert len(sent) == before + 1
    return sent[-1]["text"]


def test_an_admin_links_their_telegram_and_gets_the_managers_alerts(telegram, admin):
    link = _link(telegram, admin)
    assert re.fullmatch(r"https://t\.me/kassa_bot\?start=link-[A-Za-z0-9_-]{32}", link)
    assert len(link.rsplit("=", 1)[1]) <= 64  # Telegram's limit on a start parameter
    stored = db.session.scalars(sa.select(TelegramLinkToken)).one()
    assert stored.token_hash not in link  # only the hash is kept

    reply = _start(telegram, ADMIN_TG, link)
    assert "Telegram привязан к панели администратора (owner@example.com)" in reply
    db.session.expire_all()
    member = db.session.get(StaffMember, admin.staff_id)
    assert (member.telegram_id, member.is_manager, member.is_cashier, member.active) == (
        ADMIN_TG, True, False, True)
    entry = db.session.scalars(sa.select(AuditEntry).where(
        AuditEntry.action == "admin.telegram_link")).one()
    assert entry.details["telegram_id"] == ADMIN_TG

    panel = logged_in(telegram.app, admin).get("/admin/staff").get_data(as_text=True)
    assert f"Привязан Telegram ID {ADMIN_TG}" in panel

    # A managers' alert: someone asks for access; the admin's Telegram gets it too.
    telegram.press(STRANGER, messages.ASK_ACCESS)
    telegram.run_jobs()
    for chat in (MANAGER, ADMIN_TG):
        assert any("ID 3001" in m["text"] for m in telegram.messages(chat)), chat


def test_a_link_works_once(telegram, admin):
    link = _link(telegram, admin)
    assert "привязан" in _start(telegram, ADMIN_TG, link)
    reply = _start(telegram, STRANGER, link)
    assert reply == messages.admin_link_refused()
    assert db.session.scalars(sa.select(StaffMember).where(
        StaffMember.telegram_id == STRANGER)).first() is None
    db.session.expire_all()
    assert db.session.get(StaffMember, db.session.get(AdminUser, admin.id).staff_id).telegram_id \
        == ADMIN_TG


def test_a_link_expires_after_15_minutes(telegram, admin):
    link = _link(telegram, admin)
    stored = db.session.scalars(sa.select(TelegramLinkToken)).one()
    assert timedelta(minutes=14) < stored.expires_at - utcnow() <= timedelta(minutes=15)
    stored.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert _start(telegram, ADMIN_TG, link) == messages.admin_link_refused()
    assert _start(telegram, ADMIN_TG, link.replace("start=link-", "start=link-x")) \
        == messages.admin_link_refused()
    db.session.expire_all()
    assert db.session.get(AdminUser, admin.id).staff_id is None


def test_no_link_without_a_bot(app):
    client = logged_in(app, make_admin())
    page = client.post("/admin/staff/telegram-link", follow_redirects=True).get_data(as_text=True)
    assert "Бот не настроен" in page
    assert "t.me/" not in page
    assert db.session.scalars(sa.select(TelegramLinkToken)).first() is None
