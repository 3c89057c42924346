"""API clients in the admin panel: the bots built in constructors that create payments
through /api/v1. List, create (the key is shown once, on the answer to the form), preset,
callback URL and preset settings, revoke, the callback delivery log and a test callback.

Thin views: app/constructor/clients.py creates, changes and revokes (and writes the audit
log); app/constructor/callbacks.py sends the test callback. A refusal is shown on the page.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectChoice, SelectField, StringField

from app.admin.auth import admin_required, viewer_required
from app.admin.blueprint import bp
from app.admin.shop_forms import ActionForm
from app.constructor import clients
from app.errors import KassaError, ValidationError
from app.extensions import db
from app.models import ApiClient, CallbackDelivery, CallbackPreset

PRESET_LABELS = {
    CallbackPreset.SALEBOT: "Salebot",
    CallbackPreset.PUZZLEBOT: "PuzzleBot",
    CallbackPreset.LEADTEH: "Leadteh",
    CallbackPreset.SMARTBOT: "SmartBot Pro",
    CallbackPreset.BOTMOTHER: "Botmother",
    CallbackPreset.BOTHELP: "BotHelp",
    CallbackPreset.WEBHOOK: _l("Свой сервер (webhook с подписью)"),
}

# The settings each preset reads (app/constructor/presets.py): (name, label, secret).
# A secret is never shown back; leaving its field empty keeps it.
PRESET_SETTINGS: dict[CallbackPreset, list[tuple[str, object, bool]]] = {
    CallbackPreset.SALEBOT: [("api_key", _l("API-ключ проекта Salebot"), True)],
    CallbackPreset.PUZZLEBOT: [
        ("token", _l("API-токен бота PuzzleBot"), True),
        ("variables", _l("Какие переменные менять (через запятую)"), False),
        ("scenario_id", _l("ID сценария, который запустить"), False)],
    CallbackPreset.LEADTEH: [],
    CallbackPreset.SMARTBOT: [],
    CallbackPreset.BOTMOTHER: [("platform", _l("Платформа (tg)"), False)],
    CallbackPreset.BOTHELP: [
        ("client_id", _l("Client ID из API BotHelp"), False),
        ("client_secret", _l("Client Secret из API BotHelp"), True),
        ("variables", _l("Какие поля менять (через запятую)"), False)],
    CallbackPreset.WEBHOOK: [],
}
# For the test button: the end user a sample callback addresses (every preset but webhook).
TEST_CLIENT = ("test_client_id", _l("ID пользователя для проверки"), False)
LOG_ROWS = 50


class ClientForm(FlaskForm):
    name = StringField(_l("Название"), description=_l("Например «Бот в Salebot»"))
    preset = SelectField(_l("Конструктор"), choices=[
        SelectChoice(preset.value, label) for preset, label in PRESET_LABELS.items()])
    callback_url = StringField(
        _l("Адрес для уведомлений"),
        description=_l("Входящий вебхук конструктора или ваш сервер; для Salebot, PuzzleBot "
                       "и BotHelp не нужен"))


def _send_test():
    """The constructor room's test callback (a seam the panel's tests replace)."""
    from app.constructor.callbacks import send_test

    return send_test


def _client_or_404(client_id: int) -> ApiClient:
    client = db.session.get(ApiClient, client_id)
    if client is None:
        abort(404)
    return client


def _fields(preset: CallbackPreset) -> list[tuple[str, object, bool]]:
    extra = [] if preset == CallbackPreset.WEBHOOK else [TEST_CLIENT]
    return PRESET_SETTINGS.get(preset, []) + extra


def _signing_secret(client: ApiClient) -> str | None:
    settings = client.settings or {}
    return settings.get("secret")


def _list_page(form: ClientForm | None = None, *, created: ApiClient | None = None,
               key: str | None = None, status: int = 200):
    return render_template(
        "admin/integrations/list.html", clients=clients.list_clients(), labels=PRESET_LABELS,
        form=form or ClientForm(formdata=None), action=ActionForm(), created=created, key=key,
        secret=_signing_secret(created) if created else None,
    ), status


def _detail_page(client: ApiClient, form: ClientForm | None = None, status: int = 200):
    if form is None:
        form = ClientForm(formdata=None, name=client.name, preset=client.preset.value,
                          callback_url=client.callback_url or "")
    deliveries = list(db.session.scalars(
        sa.select(CallbackDelivery).where(CallbackDelivery.api_client_id == client.id)
        .order_by(CallbackDelivery.at.desc(), CallbackDelivery.id.desc()).limit(LOG_ROWS)))
    return render_template(
        "admin/integrations/detail.html", client=client, form=form, labels=PRESET_LABELS,
        fields=_fields(client.preset), settings=client.settings or {}, action=ActionForm(),
        deliveries=deliveries, secret=_signing_secret(client), can_test=_send_test() is not None,
    ), status


def _show_refusal(form: ClientForm, exc: ValidationError) -> None:
    field = {"invalid_name": form.name, "invalid_preset": form.preset,
             "invalid_callback_url": form.callback_url}.get(exc.code)
    if field is None:
        flash(str(exc.message), "error")
    else:
        field.errors = [str(exc.message)]


@bp.get("/api-clients")
@viewer_required
def api_clients():
    return _list_page()


@bp.post("/api-clients")
@admin_required
def api_client_create():
    form = ClientForm()
    if not form.validate():
        return _list_page(form, status=400)
    try:
        client, key = clients.create_client(form.name.data or "", preset=form.preset.data,
                                            callback_url=form.callback_url.data)
    except ValidationError as exc:
        _show_refusal(form, exc)
        return _list_page(form, status=422)
    # The key exists in the clear only in this answer: never in a redirect, flash or log.
    response = _list_page(created=client, key=key)
    return response[0], response[1], {"Cache-Control": "no-store"}


@bp.get("/api-clients/<int:client_id>")
@viewer_required
def api_client(client_id: int):
    return _detail_page(_client_or_404(client_id))


def _submitted_settings(client: ApiClient, preset: CallbackPreset) -> dict:
    """The preset's settings from the form: an empty secret keeps the one saved."""
    saved = client.settings or {}
    settings = {}
    for name, _label, secret in _fields(preset):
        value = (request.form.get(f"setting_{name}") or "").strip()
        if value:
            settings[name] = value
        elif secret and saved.get(name):
            settings[name] = saved[name]
    if saved.get("secret"):  # the webhook's signing secret stays
        settings["secret"] = saved["secret"]
    return settings


@bp.post("/api-clients/<int:client_id>")
@admin_required
def api_client_update(client_id: int):
    client = _client_or_404(client_id)
    form = ClientForm()
    if not form.validate():
        return _detail_page(client, form, 400)
    try:
        preset = CallbackPreset(form.preset.data)
        clients.update_client(client.id, name=form.name.data or "", preset=preset,
                              callback_url=form.callback_url.data or "",
                              settings=_submitted_settings(client, preset))
    except ValidationError as exc:
        db.session.rollback()
        _show_refusal(form, exc)
        return _detail_page(_client_or_404(client_id), form, 422)
    flash(_("Настройки «%(name)s» сохранены", name=form.name.data.strip()), "success")
    return redirect(url_for("admin.api_client", client_id=client_id))


@bp.post("/api-clients/<int:client_id>/revoke")
@admin_required
def api_client_revoke(client_id: int):
    client = _client_or_404(client_id)
    form = ActionForm()
    if not form.validate():
        abort(400)
    clients.revoke_client(client.id)
    flash(_("Ключ «%(name)s» отозван: запросы с ним больше не принимаются",
            name=client.name), "success")
    return redirect(url_for("admin.api_client", client_id=client_id))


@bp.post("/api-clients/<int:client_id>/test")
@admin_required
def api_client_test(client_id: int):
    _client_or_404(client_id)
    form = ActionForm()
    send_test = _send_test()
    if not form.validate() or send_test is None:
        abort(400)
    try:
        delivery = send_test(client_id)
    except KassaError as exc:
        flash(str(exc.message), "error")
    else:
        if delivery.ok:
            flash(_("Тестовое уведомление доставлено (ответ %(code)s)",
                    code=delivery.status_code), "success")
        else:
            flash(_("Тестовое уведомление не доставлено: %(why)s",
                    why=delivery.error or _("ответ %(code)s", code=delivery.status_code)),
                  "error")
    return redirect(url_for("admin.api_client", client_id=client_id))
