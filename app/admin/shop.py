"""The shop's people and tills in the admin panel: the staff from the Telegram room (and
the admin's own Telegram account), the tills' cash links and static QR codes (the catalog is
app/admin/catalog.py).

Thin views: the people and sbp services do the work and write the audit log; a refusal of
theirs is shown on the page, never as a traceback.
"""

from __future__ import annotations

import base64
import logging

import sqlalchemy as sa
from flask import abort, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user

from app.admin.auth import admin_required, viewer_required
from app.admin.blueprint import bp
from app.admin.shop_forms import (
    ActionForm,
    CashLinkForm,
    StaffFlagsForm,
    StaffForm,
    StaticQrForm,
    TillForm,
)
from app.errors import InvalidStateError, KassaError, ValidationError
from app.extensions import db
from app.models import AccessRequest, AccessStatus, QrCode, QrKind, QrStatus, StaffMember
from app.people import links
from app.people import services as people
from app.qrimage import render_png
from app.sbp import cancelling, qrcodes
from app.telegram import notify

logger = logging.getLogger(__name__)

BOT_USERNAME = "kassa.telegram.username"


def refused(exc: KassaError) -> None:
    """A service's refusal, shown on the next page."""
    flash(str(exc.message), "error")


# -- staff -------------------------------------------------------------------------------------


def _tills() -> list[QrCode]:
    return list(db.session.scalars(sa.select(QrCode).where(
        QrCode.kind == QrKind.CASH_LINK, QrCode.status != QrStatus.CANCELLED
    ).order_by(QrCode.id)))


def _my_telegram() -> StaffMember | None:
    return db.session.get(StaffMember, current_user.staff_id) if current_user.staff_id else None


def _staff_page(add_form: StaffForm | None = None, *, link: str | None = None,
                status: int = 200):
    pending = list(db.session.scalars(sa.select(AccessRequest).where(
        AccessRequest.status == AccessStatus.PENDING).order_by(AccessRequest.id)))
    tills = _tills()
    till_names = {till.id: till.description or till.qr_id for till in
                  db.session.scalars(sa.select(QrCode).where(QrCode.kind == QrKind.CASH_LINK))}
    staff = [member for member in people.staff_list() if member.telegram_id > 0]
    forms = {}
    for member in staff:
        flags = StaffFlagsForm(formdata=None, prefix=f"s{member.id}", cashier=member.is_cashier,
                               manager=member.is_manager,
                               can_edit_catalog=member.can_edit_catalog)
        till = TillForm(formdata=None, prefix=f"t{member.id}")
        till.fill_choices(tills)
        till.till.data = str(member.till_id or "")
        forms[member.id] = (flags, till)
    return render_template("admin/shop/staff.html", pending=pending, staff=staff, forms=forms,
                           till_names=till_names, add_form=add_form or StaffForm(formdata=None),
                           action=ActionForm(), me=_my_telegram(), link=link), status


@bp.get("/staff")
@viewer_required
def staff():
    return _staff_page()


def _member_or_404(staff_id: int) -> StaffMember:
    member = db.session.get(StaffMember, staff_id)
    if member is None:
        abort(404)
    return member


def _to_staff(message_or_exc) -> object:
    if isinstance(message_or_exc, KassaError):
        refused(message_or_exc)
    else:
        flash(message_or_exc, "success")
    return redirect(url_for("admin.staff"))


@bp.post("/staff")
@admin_required
def staff_add():
    form = StaffForm()
    if not form.validate():
        return _staff_page(form, status=400)
    telegram_id = form.telegram_id_value()
    if telegram_id is None:
        return _staff_page(form, status=422)
    try:
        member = people.add_staff(telegram_id, name=form.name.data,
                                  cashier=form.cashier.data, manager=form.manager.data,
                                  can_edit_catalog=form.can_edit_catalog.data)
    except ValidationError as exc:
        field = form.telegram_id if exc.code == "invalid_telegram_id" else form.name
        field.errors = [str(exc.message)]
        return _staff_page(form, status=422)
    return _to_staff(_("Сотрудник %(who)s сохранён", who=member.name or member.telegram_id))


@bp.post("/staff/requests/<int:request_id>/<any(approve, refuse):decision>")
@admin_required
def staff_decide(request_id: int, decision: str):
    access = db.session.get(AccessRequest, request_id)
    if access is None:
        abort(404)
    who = access.name or access.telegram_id
    if access.status != AccessStatus.PENDING:
        return _to_staff(InvalidStateError(_("Запрос уже решён")))
    try:
        access = people.decide_access_as_admin(request_id, approve=decision == "approve")
    except InvalidStateError:  # decided a moment ago, in the bot or another tab
        return _to_staff(InvalidStateError(_("Запрос уже решён")))
    notify.access_decided(access)
    if access.status == AccessStatus.APPROVED:
        return _to_staff(_("%(who)s теперь кассир", who=who))
    return _to_staff(_("Запрос %(who)s отклонён", who=who))


@bp.post("/staff/<int:staff_id>/<any(disable, enable):verb>")
@admin_required
def staff_switch(staff_id: int, verb: str):
    member = _member_or_404(staff_id)
    who = member.name or member.telegram_id
    try:
        if verb == "disable":
            people.disable_staff(member.telegram_id)
            return _to_staff(_("Доступ %(who)s отключён", who=who))
        people.enable_staff(member.telegram_id)
        return _to_staff(_("Доступ %(who)s включён", who=who))
    except KassaError as exc:
        return _to_staff(exc)


@bp.post("/staff/<int:staff_id>/flags")
@admin_required
def staff_flags(staff_id: int):
    member = _member_or_404(staff_id)
    form = StaffFlagsForm(prefix=f"s{member.id}")
    if not form.validate():
        abort(400)
    try:
        people.set_staff_flags(member.telegram_id, cashier=form.cashier.data,
                               manager=form.manager.data,
                               can_edit_catalog=form.can_edit_catalog.data)
    except KassaError as exc:
        return _to_staff(exc)
    return _to_staff(_("Права %(who)s сохранены", who=member.name or member.telegram_id))


@bp.post("/staff/<int:staff_id>/till")
@admin_required
def staff_till(staff_id: int):
    member = _member_or_404(staff_id)
    form = TillForm(prefix=f"t{member.id}")
    form.fill_choices(_tills())
    if not form.validate():
        abort(400)
    try:
        people.assign_till(member.telegram_id, form.till_id())
    except KassaError as exc:
        return _to_staff(exc)
    return _to_staff(_("Касса %(who)s сохранена", who=member.name or member.telegram_id))


def bot_username() -> str | None:
    """The bot's @username: TELEGRAM_BOT_USERNAME, or asked once with getMe; None when the
    bot is off or Telegram cannot be asked now."""
    configured = current_app.config.get("TELEGRAM_BOT_USERNAME")
    if configured:
        return configured.lstrip("@")
    known = current_app.extensions.get(BOT_USERNAME)
    if known:
        return known
    from app.telegram.bot import get_bot

    try:
        username = get_bot().get_me().username
    except Exception as exc:  # the bot is off, Telegram refused or cannot be reached
        logger.warning("bot username unknown: %s: %s", type(exc).__name__, exc)
        return None
    current_app.extensions[BOT_USERNAME] = username
    return username


@bp.post("/staff/telegram-link")
@admin_required
def telegram_link():
    form = ActionForm()
    if not form.validate():
        abort(400)
    username = bot_username()
    if username is None:
        return _to_staff(KassaError(_("Бот не настроен или Telegram сейчас не отвечает: "
                                      "ссылку сделать нельзя.")))
    token = links.new_link_token(current_user.id)
    link = f"https://t.me/{username}?start={links.START_PREFIX}{token}"
    return _staff_page(link=link)


# -- tills and QR codes ------------------------------------------------------------------------


def _tills_page(cash_form: CashLinkForm | None = None, static_form: StaticQrForm | None = None,
                status: int = 200):
    cash_links = list(db.session.scalars(sa.select(QrCode).where(
        QrCode.kind == QrKind.CASH_LINK).order_by(QrCode.id)))
    cashiers: dict[int, list[StaffMember]] = {}
    for member in db.session.scalars(sa.select(StaffMember).where(
            StaffMember.till_id.is_not(None)).order_by(StaffMember.id)):
        cashiers.setdefault(member.till_id, []).append(member)
    statics = list(db.session.scalars(sa.select(QrCode).where(
        QrCode.kind == QrKind.STATIC).order_by(QrCode.id.desc())))
    return render_template(
        "admin/shop/tills.html", cash_links=cash_links, cashiers=cashiers, statics=statics,
        cash_form=cash_form or CashLinkForm(formdata=None),
        static_form=static_form or StaticQrForm(formdata=None), action=ActionForm(),
    ), status


@bp.get("/tills")
@viewer_required
def tills():
    return _tills_page()


def _register_qr(register, forms: dict, field_of, done: str):
    """Register a QR code at the bank with `register()` and show its printable page; a
    refusal is shown next to the field `field_of(exc)`, the bank's on the page."""
    try:
        qr = register()
    except ValidationError as exc:
        field_of(exc).errors = [str(exc.message)]
        return _tills_page(**forms, status=422)
    except KassaError as exc:
        refused(exc)
        return redirect(url_for("admin.tills"))
    flash(done, "success")
    return redirect(url_for("admin.qr_print", qr_code_id=qr.id))


def _text(field) -> str | None:
    return (field.data or "").strip() or None


@bp.post("/tills/cash-links")
@admin_required
def cash_link_create():
    form = CashLinkForm()
    if not form.validate():
        return _tills_page(cash_form=form, status=400)
    return _register_qr(lambda: qrcodes.register_cash_link(description=_text(form.description)),
                        {"cash_form": form}, lambda exc: form.description,
                        _("Кассовая ссылка зарегистрирована"))


@bp.post("/tills/static")
@admin_required
def static_qr_create():
    form = StaticQrForm()
    if not form.validate():
        return _tills_page(static_form=form, status=400)
    ok, amount = form.amount_kopecks()
    if not ok:
        return _tills_page(static_form=form, status=422)
    return _register_qr(
        lambda: qrcodes.create_static_qr(amount_kopecks=amount,
                                         description=_text(form.description)),
        {"static_form": form},
        lambda exc: form.amount if exc.code == "invalid_amount" else form.description,
        _("Статический QR-код создан"))


@bp.post("/tills/static/<int:qr_code_id>/cancel")
@admin_required
def static_qr_cancel(qr_code_id: int):
    qr = db.session.get(QrCode, qr_code_id)
    if qr is None or qr.kind != QrKind.STATIC:
        abort(404)
    try:
        cancelling.cancel_qr(qr_code_id)
    except KassaError as exc:
        refused(exc)
    else:
        flash(_("QR-код отключён: по нему больше не платят"), "success")
    return redirect(url_for("admin.tills"))


@bp.get("/tills/qr/<int:qr_code_id>/print")
@viewer_required
def qr_print(qr_code_id: int):
    qr = db.session.get(QrCode, qr_code_id)
    if qr is None or qr.kind == QrKind.DYNAMIC:
        abort(404)
    png = base64.b64encode(render_png(qr.payload)).decode()
    cashiers = list(db.session.scalars(sa.select(StaffMember).where(
        StaffMember.till_id == qr.id).order_by(StaffMember.id)))
    return render_template("admin/shop/qr_print.html", qr=qr, png=png, cashiers=cashiers)
