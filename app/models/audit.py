"""The audit log: who did what to money or to the shop, when and from where. Rows are only
ever added: the database itself refuses to change or delete one (triggers below, created
with the table by `create_all` and by the migration)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import UTCDateTime, utcnow


class AuditEntry(db.Model):
    __tablename__ = "audit_log"
    __table_args__ = (sa.Index("ix_audit_log_target", "target_type", "target_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # Who: "admin" (admin_users.id), "cashier"/"manager" (staff.id), "cli", "system".
    actor_kind: Mapped[str] = mapped_column(sa.String(16))
    actor_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    actor_label: Mapped[str | None] = mapped_column(sa.String(254))
    # From where: the client's address for the web, the OS user for the command line.
    source: Mapped[str | None] = mapped_column(sa.String(128))
    action: Mapped[str] = mapped_column(sa.String(64), index=True)   # "refund.create" ...
    target_type: Mapped[str | None] = mapped_column(sa.String(32))   # "payment", "product" ...
    target_id: Mapped[str | None] = mapped_column(sa.String(64))
    details: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)

    def __repr__(self) -> str:
        return f"<AuditEntry {self.id} {self.action} {self.target_type}:{self.target_id}>"


# Append-only, enforced by the database for every writer (the panel, a script, a psql session).
_SQLITE_TRIGGERS = [
    f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
    for verb in ("UPDATE", "DELETE")
]
_POSTGRESQL_TRIGGERS = [
    "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$",
    "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
]
APPEND_ONLY_DDL = {"sqlite": _SQLITE_TRIGGERS, "postgresql": _POSTGRESQL_TRIGGERS}

for _dialect, _statements in APPEND_ONLY_DDL.items():
    for _statement in _statements:
        sa.event.listen(AuditEntry.__table__, "after_create",
                        sa.DDL(_statement).execute_if(dialect=_dialect))
