"""Catalog services: each public function commits once or rolls back.

A product is what a receipt line is made of, so it is checked when it is saved: a VAT
rate, payment object or measure that 54-ФЗ or the configured register does not know is
refused here, with a message naming the provider, instead of failing at the register
after the customer has paid.

A product that was ever in an order is never deleted (its orders and receipts name it): it
is archived, out of the till's catalog, and may be restored. Every change is written to the
audit log in the same transaction.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from app import audit
from app.errors import NotFoundError, ValidationError
from app.extensions import db
from app.fiscal import check_line
from app.models import Category, OrderItem, Product
from app.receipt_lines import MAX_NAME, MAX_PRICE_KOPECKS

logger = logging.getLogger(__name__)

FIELDS = ("name", "price_kopecks", "vat", "payment_object", "measure", "is_active",
          # The storefront's (set in the admin panel; app/storefront).
          "is_published", "category_id", "description", "stock_milli")
STOREFRONT_FIELDS = ("is_published", "category_id", "description", "stock_milli")
MAX_DESCRIPTION = 500
MAX_STOCK_MILLI = 10**15


def _check(product: Product) -> None:
    name = (product.name or "").strip()
    if not 0 < len(name) <= MAX_NAME:
        raise ValidationError(_l("Название товара: от 1 до 128 символов"), code="invalid_name")
    product.name = name
    price = product.price_kopecks
    if isinstance(price, bool) or not isinstance(price, int) \
            or not 0 < price <= MAX_PRICE_KOPECKS:
        raise ValidationError(_l("Цена должна быть больше нуля и не больше 42 949 673 ₽"),
                              code="invalid_amount")
    check_line(vat=product.vat, payment_object=product.payment_object, measure=product.measure)
    _check_storefront(product)


def _check_storefront(product: Product) -> None:
    description = (product.description or "").strip()
    if len(description) > MAX_DESCRIPTION:
        raise ValidationError(_l("Описание: не больше 500 символов"), code="invalid_description")
    product.description = description or None
    stock = product.stock_milli
    if stock is not None and (isinstance(stock, bool) or not isinstance(stock, int)
                              or not 0 <= stock <= MAX_STOCK_MILLI):
        raise ValidationError(_l("Остаток — число не меньше нуля"), code="invalid_stock")
    if product.category_id is not None and db.session.get(Category, product.category_id) is None:
        raise ValidationError(_l("Такой категории нет"), code="invalid_category")
    product.is_published = bool(product.is_published)


def create_product(*, name: str, price_kopecks: int, vat: str = "none",
                   payment_object: str = "commodity", measure: str = "piece",
                   is_published: bool = False, category_id: int | None = None,
                   description: str | None = None, stock_milli: int | None = None) -> Product:
    """Add a product to the catalog and commit (the storefront's fields: published or not,
    its category, description and stock in thousandths of the measure, None: not counted).

    :raises ValidationError: a bad name or price, or a VAT rate, payment object or measure
        that the configured register does not document; nothing is saved.
    """
    product = Product(name=name, price_kopecks=price_kopecks, vat=vat,
                      payment_object=payment_object, measure=measure, is_active=True,
                      is_published=is_published, category_id=category_id,
                      description=description, stock_milli=stock_milli)
    _check(product)
    db.session.add(product)
    db.session.flush()
    audit.record("product.create", target_type="product", target_id=product.id,
                 **{field: getattr(product, field) for field in FIELDS})
    db.session.commit()
    logger.info("product %s %r saved", product.id, product.name)
    return product


def _product(product_id: int) -> Product:
    product = db.session.get(Product, product_id)
    if product is None:
        raise NotFoundError(_l("Товар не найден"))
    return product


def update_product(product_id: int, **changes) -> Product:
    """Change a product's fields (see FIELDS) and commit; checked like a new one."""
    unknown = set(changes) - set(FIELDS)
    if unknown:
        raise ValidationError(_l("Неизвестные поля товара: %(fields)s",
                                 fields=", ".join(sorted(unknown))), code="invalid_request")
    product = _product(product_id)
    before = {field: getattr(product, field) for field in changes}
    for field, value in changes.items():
        setattr(product, field, value)
    try:
        _check(product)
    except ValidationError:
        db.session.rollback()
        raise
    changed = {field: [before[field], getattr(product, field)] for field in changes
               if before[field] != getattr(product, field)}
    if changed:
        audit.record("product.update", target_type="product", target_id=product.id, **changed)
    db.session.commit()
    return product


def was_sold(product_id: int) -> bool:
    """Whether any order (paid or not) has a line of this product."""
    return db.session.scalar(sa.select(sa.exists().where(OrderItem.product_id == product_id)))


def _set_active(product_id: int, active: bool, action: str) -> Product:
    product = _product(product_id)
    if product.is_active != active:
        product.is_active = active
        audit.record(action, target_type="product", target_id=product.id, name=product.name)
    db.session.commit()
    logger.info("product %s %s", product.id, action)
    return product


def archive_product(product_id: int) -> Product:
    """Take a product out of the till's catalog (its orders keep it); commit.

    :raises NotFoundError: no such product.
    """
    return _set_active(product_id, False, "product.archive")


def restore_product(product_id: int) -> Product:
    """Put an archived product back in the catalog; commit.

    :raises NotFoundError: no such product.
    """
    return _set_active(product_id, True, "product.restore")


def delete_product(product_id: int) -> bool:
    """Delete a product that was never sold; one that was is archived instead. Commits.

    :returns: True if it was deleted, False if it was archived.
    :raises NotFoundError: no such product.
    """
    product = _product(product_id)
    if was_sold(product_id):
        db.session.rollback()
        archive_product(product_id)
        return False
    audit.record("product.delete", target_type="product", target_id=product.id,
                 name=product.name, price_kopecks=product.price_kopecks)
    db.session.delete(product)
    try:
        db.session.commit()
    except sa.exc.IntegrityError:
        # Sold a moment ago, between the look and the delete: keep it, archived.
        db.session.rollback()
        archive_product(product_id)
        return False
    logger.info("product %s deleted", product_id)
    return True
