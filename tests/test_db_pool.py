"""Pooled connections: one that died while idle is replaced before a request uses it, and
one used a moment ago costs no extra round trip (app/extensions.py)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from app import extensions
from app.extensions import db
from app.models import Order


def _kill(dbapi_connection, backend_pid: int | None) -> None:
    """What a database restart does to a pooled connection."""
    if backend_pid is None:
        dbapi_connection.close()  # SQLite: there is no server; close it under the pool
        return
    # From outside the pool: the pool's only idle connection is the one to kill.
    admin = sa.create_engine(db.engine.url, poolclass=NullPool)
    with admin.connect() as other:
        assert other.execute(sa.text("SELECT pg_terminate_backend(:pid)"),
                             {"pid": backend_pid}).scalar()
        other.commit()
    admin.dispose()


@pytest.fixture
def pings(monkeypatch):
    calls = []
    dialect = db.engine.dialect
    real = dialect.do_ping

    def counting(dbapi_connection):
        calls.append(dbapi_connection)
        return real(dbapi_connection)

    monkeypatch.setattr(dialect, "do_ping", counting)
    return calls


def test_a_connection_that_died_while_idle_is_replaced_before_use(app, monkeypatch, pings):
    db.session.remove()
    with db.engine.connect() as connection:
        killed = connection.connection.dbapi_connection
        backend_pid = (connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
                       if connection.dialect.name == "postgresql" else None)
    _kill(killed, backend_pid)  # while it waits in the pool
    monkeypatch.setattr(extensions, "PING_AFTER_IDLE_SECONDS", 0)

    # The next request's first statement works: the dead connection was found and replaced.
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Order)) == 0
    assert pings == [killed]
    assert db.session.connection().connection.dbapi_connection is not killed


def test_a_connection_used_a_moment_ago_is_not_pinged(app, pings):
    db.session.remove()
    for _ in range(3):
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Order)) == 0
        db.session.remove()  # the end of a request: the connection goes back to the pool
    assert pings == []
