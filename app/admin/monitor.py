"""Monitor of the admin panel: the list of payments and unpaid orders, a payment's or an
order's page with its timeline, and the actions on them. Every action calls the service the
CLI and the Mini App call (app/sbp, app/fiscal, app/jobs); nothing here decides about money.
"""

from __future__ import annotations

import csv
import io

from flask import (
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user

from app.admin import credentials, queries, timeline
from app.admin.auth import (
    REAUTH_WINDOW,
    admin_required,
    note_reauthentication,
    recently_authenticated,
    viewer_required,
)
from app.admin.blueprint import bp
from app.admin.monitor_forms import ActionForm, FilterForm, RefundForm, choices
from app.errors import KassaError
from app.extensions import db
from app.fiscal.services import retry_failed
from app.formatting import format_moscow, format_rubles
from app.jobs import resend_notification, retry_dead
from app.models import Receipt
from app.money import to_string
from app.sbp.bank_events import accept_payment
from app.sbp.cancelling import cancel_order
from app.sbp.refunds import refundable_lines, request_refund

# The refund form asks for the password when the login is older than REAUTH_WINDOW.
bp.add_app_template_global(recently_authenticated, "admin_recently_authenticated")

# Seconds between two looks at a row that is still waiting for the customer.
POLL_SECONDS = 3


def _filter_form() -> FilterForm:
    form = FilterForm(request.args)
    form.cashier.choices = choices([("", _("Все кассиры"))] + [
        (str(ident), name) for ident, name in queries.cashier_choices()])
    form.validate()
    return form


@bp.get("/payments")
@viewer_required
def monitor():
    form = _filter_form()
    filters = form.filters()
    after = request.args.get("after")
    page = queries.list_page(filters, after, size=queries.PAGE_SIZE)
    # The first page, newest first, shows new rows as they come.
    live_top = not after and filters.sort == "-created"
    return render_template("admin/monitor/list.html", form=form, page=page,
                           args=filters.query_args(), first_page=not after,
                           poll_seconds=POLL_SECONDS, live_top=live_top,
                           since=queries.cursor_of_row(page.rows[0]) if page.rows else "")


@bp.get("/payments/fresh")
@viewer_required
def monitor_fresh():
    """The rows newer than `since` (the list's top row), newest first, and the next poller."""
    filters = _filter_form().filters()
    rows = queries.rows_since(filters, request.args.get("since") or None)
    since = queries.cursor_of_row(rows[0]) if rows else request.args.get("since", "")
    return render_template("admin/monitor/_fresh_rows.html", rows=rows, since=since,
                           args=filters.query_args(), poll_seconds=POLL_SECONDS)


@bp.get("/payments/row/<any(o, p):src>/<int:ident>")
@viewer_required
def monitor_row(src: str, ident: int):
    """One row as it is now (the list polls the rows still waiting)."""
    row = queries.row_of(src, ident)
    if row is None:
        abort(404)
    return render_template("admin/monitor/_row.html", row=row, poll_seconds=POLL_SECONDS)


CSV_COLUMNS = ("kind_of_row", "id", "created_msk", "status", "qr_kind", "channel",
               "amount_rub", "refunded_rub", "order_id", "qr_id", "transaction_id", "cashier")


@bp.get("/payments.csv")
@viewer_required
def monitor_csv():
    """The filtered list as CSV, streamed a keyset page at a time."""
    filters = _filter_form().filters()

    def lines():
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        for row in queries.iterate_rows(filters):
            writer.writerow([
                "payment" if row.src == "p" else "order", row.id, format_moscow(row.created_at),
                row.status, row.kind or "", row.channel or "", to_string(row.amount_kopecks),
                to_string(row.refunded_kopecks), row.order_id or "", row.qr_id or "",
                row.transaction_id or "", row.cashier or "",
            ])
            if buffer.tell() > 32_000:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    return Response(stream_with_context(lines()), mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=payments.csv"})


@bp.get("/payments/<int:payment_id>")
@viewer_required
def payment_detail(payment_id: int):
    found = timeline.payment_detail(payment_id)
    if found is None:
        abort(404)
    payment, detail = found
    lines = refundable_lines(payment.id)
    form = RefundForm(line_count=len(lines or ()), formdata=None,
                      mode="lines" if lines else "amount")
    return render_template("admin/monitor/detail.html", payment=payment, detail=detail,
                           lines=lines, refund_form=form, action_form=ActionForm(formdata=None))


@bp.get("/orders/<int:order_id>")
@viewer_required
def order_detail(order_id: int):
    detail = timeline.order_detail(order_id)
    if detail is None:
        abort(404)
    return render_template("admin/monitor/detail.html", payment=None, detail=detail,
                           lines=None, refund_form=None, action_form=ActionForm(formdata=None))


# -- actions ------------------------------------------------------------------------------

def _back(default: str) -> str:
    """Where an action returns: the page it was pressed on, if it is a panel page."""
    back = request.form.get("back") or ""
    return back if back.startswith("/admin/") and "//" not in back and "\\" not in back \
        else default


def _act(default_back: str, action, success: str):
    """Run a service on a valid form; a refusal is flashed in its own words."""
    form = ActionForm()
    if not form.validate():
        abort(400)
    try:
        action()
    except KassaError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    else:
        flash(success, "success")
    return redirect(_back(default_back))


@bp.post("/orders/<int:order_id>/cancel")
@admin_required
def order_cancel(order_id: int):
    return _act(url_for("admin.order_detail", order_id=order_id),
                lambda: cancel_order(order_id), _("Заказ отменён, QR-код банка погашен"))


@bp.post("/payments/<int:payment_id>/accept")
@admin_required
def payment_accept(payment_id: int):
    return _act(url_for("admin.payment_detail", payment_id=payment_id),
                lambda: accept_payment(payment_id), _("Платёж принят: он засчитан в оплату"))


@bp.post("/receipts/<int:receipt_id>/retry")
@admin_required
def receipt_retry(receipt_id: int):
    receipt = db.session.get(Receipt, receipt_id) or abort(404)
    return _act(url_for("admin.payment_detail", payment_id=receipt.payment_id),
                lambda: retry_failed(receipt_id), _("Чек отправлен в кассу ещё раз"))


@bp.post("/jobs/<int:job_id>/retry")
@admin_required
def job_retry(job_id: int):
    return _act(url_for("admin.monitor"), lambda: retry_dead(job_id),
                _("Задача поставлена в очередь заново"))


@bp.post("/jobs/<int:job_id>/resend")
@admin_required
def job_resend(job_id: int):
    return _act(url_for("admin.monitor"), lambda: resend_notification(job_id),
                _("Уведомление будет отправлено ещё раз"))


@bp.post("/payments/<int:payment_id>/refund")
@admin_required
def payment_refund(payment_id: int):
    back = url_for("admin.payment_detail", payment_id=payment_id)
    lines = refundable_lines(payment_id)
    form = RefundForm(line_count=len(lines or ()), quantities=request.form)
    if not form.validate():
        if "csrf_token" in form.errors:
            abort(400)
        for errors in form.errors.values():
            for error in errors:
                flash(error, "error")
        return redirect(back)
    if not recently_authenticated():  # ASVS 3.7.1: money leaves on a fresh password only
        if not request.form.get("password"):
            flash(_("Для возврата введите пароль ещё раз: вход был больше %(n)d минут назад.",
                    n=int(REAUTH_WINDOW.total_seconds() // 60)), "error")
            return redirect(back)
        try:
            credentials.confirm_password(current_user.id, request.form["password"],
                                      request.remote_addr or "unknown")
        except KassaError as exc:
            flash(exc.message, "error")
            return redirect(back)
        note_reauthentication()
    try:
        if form.mode.data == "lines":
            refund = request_refund(payment_id, reason=form.reason.data, lines=form.selection)
        else:
            refund = request_refund(payment_id, form.amount_kopecks, reason=form.reason.data)
    except KassaError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(back)
    flash(_("Возврат %(sum)s отправлен в банк", sum=format_rubles(refund.amount_kopecks)),
          "success")
    return redirect(back)
