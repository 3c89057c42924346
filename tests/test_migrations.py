"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

import os
import uuid

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from app import create_app
from app.extensions import db


@pytest.fixture
def fresh_url(tmp_path):
    base = os.environ.get("TEST_DATABASE_URL")
    if not base or not base.startswith("postgresql"):
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
        return
    name = f"kassa_mig_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    yield base.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


def test_upgrade_matches_models_and_downgrade_is_clean(fresh_url):
    app = create_app({"APP_ENV": "testing", "SQLALCHEMY_DATABASE_URI": fresh_url,
                      "LOG_LEVEL": "WARNING"})
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
        assert diff == [], f"models and migrations differ: {diff}"
        downgrade(revision="base")
        with db.engine.connect() as conn:
            left = set(sa.inspect(conn).get_table_names()) - {"alembic_version"}
        assert left == set()
        db.engine.dispose()


def test_upgrade_keeps_the_rows_of_a_shop_already_running(fresh_url):
    """Later migrations rebuild `orders` (SQLite's batch mode copies a table and drops the
    old one) while QR codes point at its rows: the upgrade must neither fail nor lose them."""
    app = create_app({"APP_ENV": "testing", "SQLALCHEMY_DATABASE_URI": fresh_url,
                      "LOG_LEVEL": "WARNING"})
    with app.app_context():
        upgrade(revision="0006_signed_payment_keys")
        now = "2026-12-01 10:00:00+00:00"
        with db.engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO orders (id, public_id, status, channel, total_kopecks, created_at,"
                " updated_at) VALUES (1, 'abc', 'paid', 'cli', 15000, :now, :now)"), {"now": now})
            conn.execute(sa.text(
                "INSERT INTO qr_codes (id, kind, status, qr_id, bank_order, amount_kopecks,"
                " payload, order_id, needs_review, created_at, updated_at) VALUES (1, 'dynamic',"
                " 'paid', 'AD1', 'abc-1', 15000, 'https://qr.nspk.ru/AD1', 1, false, :now,"
                " :now)"), {"now": now})
        upgrade()
        with db.engine.connect() as conn:
            assert conn.execute(sa.text(
                "SELECT o.total_kopecks, q.qr_id FROM orders o JOIN qr_codes q"
                " ON q.order_id = o.id")).all() == [(15000, "AD1")]
        downgrade(revision="base")
        db.engine.dispose()  # before the fixture drops the database under it
