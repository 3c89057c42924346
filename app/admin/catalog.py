"""The catalog in the admin panel: products with their receipt fields and the storefront's
(published, category, description, stock, photo); archive, restore, delete.

Thin views: the catalog service and app/storefront/photos.py do the work and write the audit
log; a refusal is shown on the page, never as a traceback.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from app.admin.auth import admin_required, viewer_required
from app.admin.blueprint import bp
from app.admin.shop import refused
from app.admin.shop_forms import ActionForm, AdminProductForm, format_stock
from app.catalog import services as catalog_services
from app.errors import KassaError, ValidationError
from app.extensions import db
from app.formatting import search_key
from app.miniapp.forms import PAYMENT_OBJECT_LABELS, unit_label
from app.models import Product
from app.storefront import categories, photos

# -- catalog -----------------------------------------------------------------------------------


@bp.get("/catalog")
@viewer_required
def catalog():
    q = request.args.get("q", "").strip()[:128]
    show = request.args.get("show", "active")
    query = sa.select(Product)
    if show == "archived":
        query = query.where(Product.is_active.is_(False))
    elif show != "all":
        show = "active"
        query = query.where(Product.is_active.is_(True))
    key = search_key(q)
    products = sorted((p for p in db.session.scalars(query) if key in search_key(p.name)),
                      key=lambda p: (search_key(p.name), p.id))
    digests = photos.photo_digests(p.id for p in products)
    return render_template("admin/shop/catalog.html", products=products, q=q, show=show,
                           unit_label=unit_label, objects=PAYMENT_OBJECT_LABELS,
                           action=ActionForm(), format_stock=format_stock,
                           thumbs={pid: photos.photo_url(pid, thumb=True, digest=digest)
                                   for pid, digest in digests.items()},
                           category_names={c.id: c.name for c in categories.categories()})


def _product_page(form: AdminProductForm, product: Product | None, status: int = 200):
    photo = photos.photo_url(product.id, thumb=True) if product is not None else None
    return render_template("admin/shop/product_form.html", form=form, product=product,
                           photo=photo), status


def _product_or_404(product_id: int) -> Product:
    product = db.session.get(Product, product_id)
    if product is None:
        abort(404)
    return product


@bp.route("/catalog/new", methods=["GET", "POST"])
@admin_required
def product_new():
    return _product_edit(None)


@bp.route("/catalog/<int:product_id>/edit", methods=["GET", "POST"])
@admin_required
def product_edit(product_id: int):
    return _product_edit(_product_or_404(product_id))


def _product_edit(product: Product | None):
    shelves = categories.categories()
    if request.method == "GET":
        form = AdminProductForm(formdata=None)
        form.fill_choices(product)
        form.fill_storefront(shelves, product)
        if product is None:
            form.vat.data, form.measure.data, form.payment_object.data = (
                "none", "piece", "commodity")
        else:
            form.fill_from(product)
        return _product_page(form, product)
    form = AdminProductForm()
    form.fill_choices(product)
    form.fill_storefront(shelves)
    if not form.validate():  # the CSRF token
        return _product_page(form, product, 400)
    price = form.price_kopecks()
    stock_ok, stock = form.stock_milli(form.measure.data or "")
    if price is None or not stock_ok:
        return _product_page(form, product, 422)
    values = {**form.values(price), **form.storefront_values()}
    if form.stock_changed():
        values["stock_milli"] = stock
    try:
        # The photo is checked first: a refused photo leaves the product as it was.
        upload = form.uploaded_photo()
        prepared = photos.prepare_photo(upload) if upload is not None else None
        if product is None:
            saved = catalog_services.create_product(**values)
        else:
            saved = catalog_services.update_product(product.id, **values)
    except ValidationError as exc:
        form.show_refusal(exc)
        return _product_page(form, product, 422)
    if prepared is not None:
        photos.save_photo(saved.id, prepared)
    elif form.remove_photo.data:
        photos.delete_photo(saved.id)
    flash(_("Товар «%(name)s» сохранён", name=saved.name), "success")
    return redirect(url_for("admin.catalog", q=saved.name))


def _product_action(product_id: int, act) -> object:
    _product_or_404(product_id)
    try:
        message = act(product_id)
    except KassaError as exc:
        refused(exc)
    else:
        flash(message, "success")
    show = request.form.get("show")
    return redirect(url_for("admin.catalog", show=show if show in ("archived", "all") else None))


@bp.post("/catalog/<int:product_id>/archive")
@admin_required
def product_archive(product_id: int):
    return _product_action(product_id, lambda pid: _(
        "Товар «%(name)s» в архиве", name=catalog_services.archive_product(pid).name))


@bp.post("/catalog/<int:product_id>/restore")
@admin_required
def product_restore(product_id: int):
    return _product_action(product_id, lambda pid: _(
        "Товар «%(name)s» снова в каталоге", name=catalog_services.restore_product(pid).name))


@bp.post("/catalog/<int:product_id>/delete")
@admin_required
def product_delete(product_id: int):
    def act(pid: int) -> str:
        name = db.session.get(Product, pid).name
        if catalog_services.delete_product(pid):
            return _("Товар «%(name)s» удалён", name=name)
        return _("Товар «%(name)s» уже продавали, поэтому он не удалён, а перенесён в архив",
                 name=name)

    return _product_action(product_id, act)
