"""This installation's identity: one row, made on first need and kept in the database.

The install id tells this shop's documents apart from another's at a shared provider
account: a cash register group keys receipts by our external id, so two databases (a
restored backup, a second shop on the same ATOL group) must never write the same one.
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import TimestampMixin, utcnow

SINGLETON = 1
#: 8 hex characters: short enough for every register's id limits (ATOL external_id 128,
#: Raiffeisen receiptNumber 99 of A-Za-z0-9_-), 4 billion values against collisions.
INSTALL_ID_LENGTH = 8


class Installation(TimestampMixin, db.Model):
    __tablename__ = "installation"
    __table_args__ = (sa.CheckConstraint(f"id = {SINGLETON}", name="single_row"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    install_id: Mapped[str] = mapped_column(sa.String(INSTALL_ID_LENGTH))

    def __repr__(self) -> str:
        return f"<Installation {self.install_id}>"


def install_id() -> str:
    """The install id, made on the first call (inside the caller's transaction).

    Race-safe on PostgreSQL and SQLite: INSERT ... ON CONFLICT DO NOTHING, then read. A
    concurrent first call waits for the other's row and reads it; whichever commits first
    wins, and a rolled-back caller leaves nothing behind.
    """
    found = db.session.scalar(sa.select(Installation.install_id)
                              .where(Installation.id == SINGLETON))
    if found:
        return found
    dialect = postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite
    db.session.execute(
        dialect.insert(Installation)
        .values(id=SINGLETON, install_id=secrets.token_hex(INSTALL_ID_LENGTH // 2),
                created_at=utcnow(), updated_at=utcnow())
        .on_conflict_do_nothing(index_elements=["id"])
    )
    return db.session.scalars(sa.select(Installation.install_id)
                              .where(Installation.id == SINGLETON)).one()
