"""Checkout and the catalog refuse, before any QR code exists, what no receipt can carry:
an unknown measure, payment object or VAT rate, a line that rounds to nothing, a price
over the register's ceiling, and (on saving a product) what the configured register does
not document."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from app.catalog.services import create_product, update_product
from app.errors import ValidationError
from app.extensions import db
from app.fiscal.atol import AtolClient
from app.fiscal.raiffeisen import RaiffeisenReceiptsClient
from app.models import OrderChannel, OrderItem, Product
from app.orders.services import Line, create_order

CART = [
    Line(name="Капучино", price_kopecks=22000, quantity_milli=2000, vat="vat20"),
    Line(name="Доставка", price_kopecks=25000, payment_object="service"),
]


def _use(app, register) -> None:
    """Fiscalize through `register` from now on (as FISCAL_PROVIDER would choose it)."""
    app.extensions["kassa.fiscal"] = register


def test_checkout_refuses_a_line_no_receipt_can_carry(app) -> None:
    for line, code in (
        (Line(name="Чай", price_kopecks=1000, measure="parsec"), "invalid_measure"),
        (Line(name="Чай", price_kopecks=1000, payment_object="gift"), "invalid_payment_object"),
        (Line(name="Чай", price_kopecks=1000, vat="vat18"), "invalid_vat"),
        # 0,001 × 0,01 ₽ rounds to a zero sum, which registers refuse (KKT -3805).
        (Line(name="Чай", price_kopecks=1, quantity_milli=1), "invalid_item"),
    ):
        with pytest.raises(ValidationError) as refused:
            create_order(channel=OrderChannel.MINIAPP, lines=[CART[0], line])
        assert refused.value.code == code, line
        assert re.search("[а-я]", str(refused.value.message))
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OrderItem)) == 0
    # Every measure we know fits the column (PostgreSQL refuses a longer string).
    kept = create_order(channel=OrderChannel.MINIAPP, lines=[
        Line(name="Плёнка", price_kopecks=5, quantity_milli=200_000,
             measure="square_centimeter")])
    assert [item.measure for item in kept.items] == ["square_centimeter"]


def test_a_price_up_to_the_schema_ceiling_is_accepted(app) -> None:
    # ATOL's schema: price <= 42949673 (the PDF's prose said 42 949 672,95).
    order = create_order(channel=OrderChannel.MINIAPP,
                         lines=[Line(name="Слиток", price_kopecks=4_294_967_300)])
    assert order.total_kopecks == 4_294_967_300
    with pytest.raises(ValidationError):
        create_order(channel=OrderChannel.MINIAPP,
                     lines=[Line(name="Слиток", price_kopecks=4_294_967_301)])


def test_saving_a_product_refuses_what_the_register_does_not_document(app) -> None:
    _use(app, RaiffeisenReceiptsClient("http://127.0.0.1:9", "key"))
    # The shop fiscalizes through the bank, which documents no 22% VAT.
    with pytest.raises(ValidationError) as vat:
        create_product(name="Кофе", price_kopecks=30000, vat="vat22")
    assert vat.value.code == "unsupported_vat"
    assert "Райффайзенбанк" in str(vat.value.message)
    assert "vat22" in str(vat.value.message)
    with pytest.raises(ValidationError) as unknown:
        create_product(name="Кофе", price_kopecks=30000, measure="parsec")
    assert unknown.value.code == "invalid_measure"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Product)) == 0
    product = create_product(name="Кофе", price_kopecks=30000, vat="vat20",
                             measure="square_centimeter")
    with pytest.raises(ValidationError):
        update_product(product.id, vat="vat5")
    assert db.session.get(Product, product.id).vat == "vat20"
    _use(app, AtolClient("http://127.0.0.1:9/possystem/v5", "login", "pass", "group"))
    assert create_product(name="Кофе 22", price_kopecks=30000, vat="vat22").id
