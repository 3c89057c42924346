"""The storefront's page of the panel (/admin/storefront): the switch, pickup and delivery,
the welcome text, and the categories (added, renamed, moved, deleted).

Thin views: app.storefront.settings and app.storefront.categories check, audit and commit;
their refusals are shown on the page.
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, StringField, TextAreaField

from app.admin.auth import admin_required, viewer_required
from app.admin.blueprint import bp
from app.admin.shop_forms import ActionForm
from app.errors import KassaError, ValidationError
from app.storefront import categories as shelves
from app.storefront.settings import shop_settings, update_settings

LIMITS = {"pickup_address": 255, "delivery_terms": 500, "welcome_text": 500}


class StorefrontForm(FlaskForm):
    storefront_enabled = BooleanField(_l("Магазин в боте включён"), description=_l(
        "Покупатели открывают магазин командой /start; сотрудники по-прежнему видят кассу"))
    pickup_enabled = BooleanField(_l("Самовывоз"))
    pickup_address = StringField(_l("Адрес самовывоза"),
                                 description=_l("Например «ул. Ленина, 1, с 10 до 20»"))
    delivery_enabled = BooleanField(_l("Доставка"))
    delivery_terms = TextAreaField(_l("Условия доставки"), description=_l(
        "Район, сроки, стоимость — покупатель читает это перед оплатой"))
    welcome_text = TextAreaField(_l("Приветствие"),
                                 description=_l("Над каталогом магазина, до 500 символов"))

    def fill_from(self, settings) -> None:
        for name in ("storefront_enabled", "pickup_enabled", "pickup_address",
                     "delivery_enabled", "delivery_terms", "welcome_text"):
            getattr(self, name).data = getattr(settings, name)

    def changes(self) -> dict | None:
        """The settings typed, or None with a field's error set."""
        for name, limit in LIMITS.items():
            if len((getattr(self, name).data or "").strip()) > limit:
                getattr(self, name).errors = [str(_l("Не больше %(n)s символов", n=limit))]
                return None
        if self.pickup_enabled.data and not (self.pickup_address.data or "").strip():
            self.pickup_address.errors = [str(_l("Укажите адрес: покупатель должен знать, "
                                                 "куда прийти"))]
            return None
        return {"storefront_enabled": bool(self.storefront_enabled.data),
                "pickup_enabled": bool(self.pickup_enabled.data),
                "pickup_address": self.pickup_address.data or "",
                "delivery_enabled": bool(self.delivery_enabled.data),
                "delivery_terms": self.delivery_terms.data or "",
                "welcome_text": self.welcome_text.data or ""}


class CategoryForm(FlaskForm):
    name = StringField(_l("Название категории"))


def _page(form: StorefrontForm | None = None, add_form: CategoryForm | None = None,
          status: int = 200):
    if form is None:
        form = StorefrontForm(formdata=None)
        form.fill_from(shop_settings())
    rows = shelves.categories()
    rename = {}
    for category in rows:
        rename_form = CategoryForm(formdata=None, prefix=f"c{category.id}")
        rename_form.name.data = category.name
        rename[category.id] = rename_form
    page = render_template("admin/storefront/settings.html", form=form, categories=rows,
                           rename=rename, add_form=add_form or CategoryForm(formdata=None),
                           action=ActionForm())
    return page, status


@bp.get("/storefront")
@viewer_required
def storefront():
    return _page()


@bp.post("/storefront")
@admin_required
def storefront_save():
    form = StorefrontForm()
    if not form.validate():
        return _page(form, status=400)
    changes = form.changes()
    if changes is None:
        return _page(form, status=422)
    try:
        settings = update_settings(**changes)
    except ValidationError as exc:
        flash(str(exc.message), "error")
        return _page(form, status=422)
    if settings.storefront_enabled:
        flash(_("Настройки магазина сохранены; магазин включён"), "success")
    else:
        flash(_("Настройки магазина сохранены; магазин выключен"), "success")
    return redirect(url_for("admin.storefront"))


def _to_page(message_or_exc) -> object:
    if isinstance(message_or_exc, KassaError):
        flash(str(message_or_exc.message), "error")
    else:
        flash(message_or_exc, "success")
    return redirect(url_for("admin.storefront") + "#categories")


@bp.post("/storefront/categories")
@admin_required
def category_add():
    form = CategoryForm()
    if not form.validate():
        abort(400)
    try:
        category = shelves.add_category(form.name.data or "")
    except ValidationError as exc:
        form.name.errors = [str(exc.message)]
        return _page(add_form=form, status=422)
    return _to_page(_("Категория «%(name)s» добавлена", name=category.name))


@bp.post("/storefront/categories/<int:category_id>/rename")
@admin_required
def category_rename(category_id: int):
    form = CategoryForm(prefix=f"c{category_id}")
    if not form.validate():
        abort(400)
    try:
        category = shelves.rename_category(category_id, form.name.data or "")
    except KassaError as exc:
        return _to_page(exc)
    return _to_page(_("Категория «%(name)s» сохранена", name=category.name))


@bp.post("/storefront/categories/<int:category_id>/<any(up, down):direction>")
@admin_required
def category_move(category_id: int, direction: str):
    if not ActionForm().validate():
        abort(400)
    try:
        shelves.move_category(category_id, -1 if direction == "up" else 1)
    except KassaError as exc:
        return _to_page(exc)
    return redirect(url_for("admin.storefront") + "#categories")


@bp.post("/storefront/categories/<int:category_id>/delete")
@admin_required
def category_delete(category_id: int):
    if not ActionForm().validate():
        abort(400)
    try:
        name = shelves.delete_category(category_id)
    except KassaError as exc:
        return _to_page(exc)
    return _to_page(_("Категория «%(name)s» удалена; её товары остались в каталоге",
                      name=name))
