"""Counting and single use hold when requests arrive at the same moment (threads with their
own connections stand in for web processes)."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from app.admin import services
from app.errors import KassaError
from app.extensions import db
from app.models import AdminInvite, AdminRole, AdminUser, LoginThrottle
from tests.admin.conftest import make_admin

NEW_PASSWORD = "a new long password"


def at_once(app, count: int, work) -> list:
    """Run work(number) in `count` threads released together; each outcome or exception."""
    barrier = threading.Barrier(count)
    outcomes: list = [None] * count

    def run(number: int):
        with app.app_context():
            barrier.wait()
            try:
                outcomes[number] = work(number)
            except KassaError as exc:
                outcomes[number] = exc
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(number,)) for number in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def test_failures_at_the_same_moment_are_all_counted(make_app):
    app = make_app()
    ip = "192.0.2.50"
    outcomes = at_once(app, services.IP_FAILURES, lambda number: services.authenticate(
        f"guess{number}@example.com", "wrong password", ip))
    codes = sorted(outcome.code for outcome in outcomes)
    assert codes == ["invalid_credentials"] * (services.IP_FAILURES - 1) + ["ip_blocked"]
    with app.app_context():
        assert db.session.scalar(sa.select(LoginThrottle.blocked_until)) is not None


def test_an_invite_used_at_the_same_moment_registers_one_account(make_app):
    app = make_app()
    with app.app_context():
        owner = make_admin()
        _invite, token = services.create_invite(AdminRole.ADMIN, None, created_by=owner.id)
    outcomes = at_once(app, 4, lambda number: services.register_with_invite(
        token, f"guest{number}@example.com", NEW_PASSWORD).id)
    registered = [outcome for outcome in outcomes if isinstance(outcome, int)]
    refused = {outcome.code for outcome in outcomes if isinstance(outcome, KassaError)}
    assert len(registered) == 1
    assert refused == {"invalid_invite"}
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(AdminUser)) == 2
        assert db.session.scalar(sa.select(AdminInvite.used_by)) == registered[0]


def test_two_first_registrations_at_once_make_one_admin(make_app):
    app = make_app()
    outcomes = at_once(app, 3, lambda number: services.register_first_admin(
        f"first{number}@example.com", NEW_PASSWORD).id)
    assert sum(isinstance(outcome, int) for outcome in outcomes) == 1
    assert {outcome.code for outcome in outcomes if isinstance(outcome, KassaError)} == {
        "registration_closed"}
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(AdminUser)) == 1


def test_two_admins_disabling_each_other_at_once_leave_one(make_app):
    app = make_app()
    with app.app_context():
        ids = [make_admin("a@example.com").id, make_admin("b@example.com").id]
    outcomes = at_once(app, 2, lambda number: services.disable_admin(ids[number]).id)
    assert sum(isinstance(outcome, int) for outcome in outcomes) == 1
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(AdminUser)
                                 .where(AdminUser.active.is_(True))) == 1
