"""The audit log's one door: `record()` adds an entry to the caller's transaction, so the
entry commits with the change it describes, or not at all.

Who acted comes from the entry point, not from the service: the admin panel, the Mini App,
the bot and the command line each call `act_as()` once per request or command; a job or
anything else without an actor is recorded as "system".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import g

from app.extensions import db
from app.models import AuditEntry


@dataclass(frozen=True)
class Actor:
    kind: str                 # "admin", "cashier", "manager", "cli", "system"
    id: int | None = None     # admin_users.id or staff.id
    label: str | None = None  # an email, a name, an OS user
    source: str | None = None  # an IP address, "cli"


SYSTEM = Actor("system")


def act_as(actor: Actor) -> None:
    """Who the rest of this request or command acts as."""
    g.audit_actor = actor


def current_actor() -> Actor:
    return g.get("audit_actor", SYSTEM)


def record(action: str, *, target_type: str | None = None, target_id: Any = None,
           **details: Any) -> AuditEntry:
    """Add an audit entry to the current transaction (the caller commits it with its change).

    :param action: what was done, as `<thing>.<verb>`: "refund.create", "product.update" ...
    :param details: JSON-able facts worth keeping (amounts in kopecks, old and new values).
    """
    actor = current_actor()
    entry = AuditEntry(actor_kind=actor.kind, actor_id=actor.id, actor_label=actor.label,
                       source=actor.source, action=action, target_type=target_type,
                       target_id=None if target_id is None else str(target_id),
                       details=details)
    db.session.add(entry)
    return entry
