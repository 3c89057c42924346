"""Who acted, as the audit log records it, from the entry points other than the panel: the
command line (the OS user), the Mini App (the cashier and their address) and the bot (the
manager who pressed a button)."""

from __future__ import annotations

import getpass

import click
import sqlalchemy as sa

from app import audit
from app.cli import KassaCommand
from app.extensions import db
from app.models import AccessRequest, AuditEntry
from app.people.services import active_cashier
from tests.miniapp.conftest import TOKEN as MINIAPP_TOKEN
from tests.miniapp.conftest import Phone
from tests.telegram.conftest import MANAGER, STRANGER, fakebot, telegram  # noqa: F401 - fixtures


def _entries():
    db.session.rollback()
    return db.session.scalars(sa.select(AuditEntry).order_by(AuditEntry.id)).all()


def _recording(action: str):
    def record():
        audit.record(action, target_type="test", target_id=1)
        db.session.commit()
    return record


def test_a_command_acts_as_the_os_user(app):
    result = app.test_cli_runner().invoke(args=["cashier", "add", "1001", "--name", "Анна"])
    assert result.exit_code == 0, result.output
    user = getpass.getuser()
    assert [(e.action, e.actor_kind, e.actor_label, e.source) for e in _entries()] == [
        ("staff.add", "cli", user, "cli")]


def test_a_failing_command_still_fails_in_one_line(app):
    @click.command("refusing", cls=KassaCommand)
    def refusing():
        from app.errors import ValidationError

        raise ValidationError("нельзя", code="nope")

    app.cli.add_command(refusing)
    result = app.test_cli_runner().invoke(args=["refusing"])
    assert result.exit_code == 1 and "nope: нельзя" in result.output


def test_the_mini_app_acts_as_the_cashier_from_their_address(make_app):
    app = make_app(TELEGRAM_BOT_TOKEN=MINIAPP_TOKEN)
    with app.app_context():
        from app.people.services import add_staff

        add_staff(1001, name="Анна", can_edit_catalog=True)
        cashier_id = active_cashier(1001).id
        phone = Phone(app, 1001)
        response = phone.client.post(
            "/miniapp/products", headers=phone.headers, environ_base={"REMOTE_ADDR": "10.1.2.3"},
            data={"name": "Чай", "price": "100", "vat": "none", "measure": "piece",
                  "payment_object": "commodity"})
        assert response.status_code == 200
        refused = Phone(app, 5550001).client.post("/miniapp/products", data={"name": "Кофе"})
        assert refused.status_code == 403
        (entry,) = [e for e in _entries() if e.action.startswith("product.")]
        assert (entry.action, entry.actor_kind, entry.actor_id, entry.actor_label,
                entry.source) == ("product.create", "cashier", cashier_id, "Анна", "10.1.2.3")


def test_the_bot_acts_as_the_manager_who_decides(telegram):  # noqa: F811
    telegram.text(STRANGER, "/start")
    telegram.run_jobs()
    telegram.press(STRANGER, "access:ask")
    telegram.run_jobs()
    access = db.session.scalars(sa.select(AccessRequest)).one()
    telegram.press(MANAGER, f"access:approve:{access.id}", first_name="Пётр")
    telegram.run_jobs()
    (entry,) = [e for e in _entries() if e.action.startswith("access.")]
    assert (entry.action, entry.actor_kind, entry.actor_label, entry.source) == (
        "access.approve", "manager", "Пётр", "telegram")
