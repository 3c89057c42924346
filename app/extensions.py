"""Unbound Flask extensions; create_app() binds them."""

import contextlib
import functools
import logging
import sqlite3
from collections.abc import Iterator

from flask_babel import Babel
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


logger = logging.getLogger(__name__)

db = SQLAlchemy(model_class=Base)
migrate = Migrate(render_as_batch=True, compare_type=True)
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()


@contextlib.contextmanager
def unit_of_work() -> Iterator[None]:
    """A service's transaction: commit what the block did, or roll all of it back on any
    error (the error goes on)."""
    try:
        yield
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise


# What a database that cannot be reached (or opened, or that stays locked) raises.
DATABASE_UNAVAILABLE = (sa_exc.OperationalError, sa_exc.InterfaceError)


def end_session(_exc: BaseException | None = None) -> None:
    """Teardown of every app context: end the session. If the database went away after the
    work was done (a restart drops every connection), ending it fails; the connection is
    discarded and the request's answer, already made, stands (not a 500 from the server)."""
    try:
        db.session.remove()
    except DATABASE_UNAVAILABLE as exc:
        db.session.registry.clear()
        logger.warning("session ended on a lost database connection: %s",
                       str(exc.orig or exc).strip().splitlines()[0][:200])


def database_failure(exc: sa_exc.DBAPIError, url: str) -> str:
    """One line on why the database at `url` cannot be used: the URL without its password
    and the driver's first line, e.g. 'postgresql+psycopg://kassa:***@db/kassa: connection
    failed: ...'."""
    lines = str(exc.orig if exc.orig is not None else exc).strip().splitlines()
    shown = make_url(url).render_as_string(hide_password=True)
    reason = lines[0] if lines else type(exc).__name__
    if is_missing_table(exc):
        reason += " (has `flask db upgrade` run?)"
    return f"{shown}: {reason}"


def is_missing_table(exc: sa_exc.DBAPIError) -> bool:
    """The schema is not there: SQLite's "no such table", PostgreSQL's undefined_table."""
    return (getattr(exc.orig, "sqlstate", None) == "42P01"
            or str(exc.orig).startswith("no such table"))


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record):
    """SQLite: WAL so readers never block the writer, a busy timeout, and foreign keys.

    synchronous=FULL: a commit waits until the WAL is on disk, so what Kassa answered 200
    for (a bank callback, a paid order) survives a power cut, not only a crash of Kassa.

    pysqlite's own transaction handling is switched off so that every transaction starts
    with BEGIN IMMEDIATE (below): a read-then-write transaction would otherwise fail at once
    with "database is locked" instead of waiting for the busy timeout.
    """
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


# Execution option of a connection whose transactions only read; see `read_only`.
READ_ONLY = "kassa_read_only"


@event.listens_for(Engine, "begin")
def _sqlite_begin(conn):
    """SQLite: BEGIN IMMEDIATE takes the write lock at the start (waiting for it up to the
    busy timeout), so a transaction that reads and then writes never fails on the upgrade.
    A READ_ONLY connection begins deferred: with WAL it reads its snapshot and never waits
    for a writer."""
    if conn.dialect.name == "sqlite":
        deferred = conn.get_execution_options().get(READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if deferred else "BEGIN IMMEDIATE")


def begin_read_only() -> None:
    """Begin the session's transaction with the READ_ONLY execution option, so that on
    SQLite it does not queue behind the writers for their lock (PostgreSQL's reads never
    wait anyway). What follows must only read: on SQLite a write in such a transaction
    could fail at once with "database is locked". A transaction already open is kept."""
    if not db.session().in_transaction():
        db.session.connection(execution_options={READ_ONLY: True})


def read_only(view):
    """Decorate a view that only reads the database (a QR image, a receipt page): its
    transaction begins as `begin_read_only` says."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        begin_read_only()
        return view(*args, **kwargs)

    return wrapper
