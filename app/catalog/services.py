"""Catalog services: each public function commits once or rolls back.

A product is what a receipt line is made of, so it is checked when it is saved: a VAT
rate, payment object or measure that 54-ФЗ or the configured register does not know is
refused here, with a message naming the provider, instead of failing at the register
after the customer has paid.
"""

from __future__ import annotations

import logging

from flask_babel import lazy_gettext as _l

from app.errors import NotFoundError, ValidationError
from app.extensions import db
from app.fiscal import check_line
from app.models import Product
from app.receipt_lines import MAX_NAME, MAX_PRICE_KOPECKS

logger = logging.getLogger(__name__)

FIELDS = ("name", "price_kopecks", "vat", "payment_object", "measure", "is_active")


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


def create_product(*, name: str, price_kopecks: int, vat: str = "none",
                   payment_object: str = "commodity", measure: str = "piece") -> Product:
    """Add a product to the catalog and commit.

    :raises ValidationError: a bad name or price, or a VAT rate, payment object or measure
        that the configured register does not document; nothing is saved.
    """
    product = Product(name=name, price_kopecks=price_kopecks, vat=vat,
                      payment_object=payment_object, measure=measure, is_active=True)
    _check(product)
    db.session.add(product)
    db.session.commit()
    logger.info("product %s %r saved", product.id, product.name)
    return product


def update_product(product_id: int, **changes) -> Product:
    """Change a product's fields (see FIELDS) and commit; checked like a new one."""
    unknown = set(changes) - set(FIELDS)
    if unknown:
        raise ValidationError(_l("Неизвестные поля товара: %(fields)s",
                                 fields=", ".join(sorted(unknown))), code="invalid_request")
    product = db.session.get(Product, product_id)
    if product is None:
        raise NotFoundError(_l("Товар не найден"))
    for field, value in changes.items():
        setattr(product, field, value)
    try:
        _check(product)
    except ValidationError:
        db.session.rollback()
        raise
    db.session.commit()
    return product
