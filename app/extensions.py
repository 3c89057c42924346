"""Unbound Flask extensions; create_app() binds them."""

import sqlite3

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


db = SQLAlchemy(model_class=Base)
migrate = Migrate(render_as_batch=True, compare_type=True)
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()


# What a database that cannot be reached (or opened, or that stays locked) raises.
DATABASE_UNAVAILABLE = (sa_exc.OperationalError, sa_exc.InterfaceError)


def database_failure(exc: sa_exc.DBAPIError, url: str) -> str:
    """One line on why the database at `url` cannot be used: the URL without its password
    and the driver's first line, e.g. 'postgresql+psycopg://kassa:***@db/kassa: connection
    failed: ...'."""
    lines = str(exc.orig if exc.orig is not None else exc).strip().splitlines()
    shown = make_url(url).render_as_string(hide_password=True)
    return f"{shown}: {lines[0] if lines else type(exc).__name__}"


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record):
    """SQLite: WAL so readers never block the writer, a busy timeout, and foreign keys.

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
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


@event.listens_for(Engine, "begin")
def _sqlite_begin_immediate(conn):
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
