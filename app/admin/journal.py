"""Journal of the admin panel: the audit log, newest first, filtered by action, actor and
Moscow dates, paged by keyset (`before` = the last id shown). Read-only: there is no route
that changes an entry, and the database refuses it anyway (app/models/audit.py)."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from flask import render_template, request
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, IntegerField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import NumberRange, Optional

from app.admin.auth import viewer_required
from app.admin.blueprint import bp
from app.extensions import db, read_only
from app.models import AuditEntry
from app.reports import moscow_day_start

PAGE_SIZE = 50
ACTOR_KINDS = [("", _l("Все")), ("admin", _l("Администратор")), ("manager", _l("Менеджер")),
               ("cashier", _l("Кассир")), ("cli", _l("Командная строка")),
               ("system", _l("Система"))]
ACTOR_LABELS = dict(ACTOR_KINDS[1:])


class JournalFilter(FlaskForm):
    """The filter bar; a GET form (a link to a filtered journal can be shared)."""

    class Meta:
        csrf = False

    action = StringField(_l("Действие"), validators=[Optional()],
                         description=_l("например, refund или refund.create"))
    actor_kind = SelectField(_l("Кто"), default="",
                             choices=[SelectChoice(value, label) for value, label in ACTOR_KINDS])
    actor = StringField(_l("Имя, e-mail или ID"), validators=[Optional()])
    date_from = DateField(_l("С"), validators=[Optional()])
    date_to = DateField(_l("По"), validators=[Optional()])
    before = IntegerField(validators=[Optional(), NumberRange(min=1)])


def journal_query(form: JournalFilter):
    """The entries the filter selects, newest first (before the keyset, if any)."""
    query = sa.select(AuditEntry)
    action = (form.action.data or "").strip().lower()
    if action:
        # "refund" finds every refund.*; "refund.create" only that action.
        query = query.where(sa.or_(AuditEntry.action == action,
                                   AuditEntry.action.startswith(f"{action}.", autoescape=True)))
    if form.actor_kind.data:
        query = query.where(AuditEntry.actor_kind == form.actor_kind.data)
    actor = (form.actor.data or "").strip()
    if actor:
        # SQLite's lower() knows ASCII only: a Cyrillic name is also looked for as typed
        # and with a capital first letter ("пётр" finds "Пётр" on both databases).
        wanted = sa.or_(
            sa.func.lower(AuditEntry.actor_label).contains(actor.lower(), autoescape=True),
            *(AuditEntry.actor_label.contains(variant, autoescape=True)
              for variant in {actor, actor.capitalize()}))
        if actor.isdigit():
            wanted = sa.or_(wanted, AuditEntry.actor_id == int(actor))
        query = query.where(wanted)
    if form.date_from.data:
        query = query.where(AuditEntry.at >= moscow_day_start(form.date_from.data))
    if form.date_to.data:
        query = query.where(
            AuditEntry.at < moscow_day_start(form.date_to.data) + timedelta(days=1))
    if form.before.data:
        query = query.where(AuditEntry.id < form.before.data)
    return query.order_by(AuditEntry.id.desc())


def _filter_args() -> dict:
    """The query string of the filters, without the keyset."""
    return {name: value for name, value in request.args.items() if name != "before" and value}


@bp.get("/journal")
@viewer_required
@read_only
def journal():
    form = JournalFilter(request.args)
    valid = form.validate()
    entries = []
    if valid:
        entries = list(db.session.scalars(journal_query(form).limit(PAGE_SIZE + 1)))
    more = len(entries) > PAGE_SIZE
    entries = entries[:PAGE_SIZE]
    first_args = _filter_args()
    next_args = {**first_args, "before": entries[-1].id} if more else None
    return render_template("admin/journal.html", form=form, entries=entries,
                           first_args=first_args, next_args=next_args,
                           paged=bool(form.before.data), filtered=bool(first_args),
                           actor_labels=ACTOR_LABELS)
