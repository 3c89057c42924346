"""Demo data for `flask demo seed`: a coffee shop's catalog and the demo cashier (who
opens the Mini App in demo mode: a development install without a bot token)."""

from __future__ import annotations

import sqlalchemy as sa

from app.catalog.services import create_product
from app.extensions import db
from app.models import Product
from app.people.services import demo_cashier

DEMO_PRODUCTS = [
    ("Капучино 300 мл", 22000, "none", "commodity", "piece"),
    ("Американо 250 мл", 16000, "none", "commodity", "piece"),
    ("Круассан с миндалём", 18500, "none", "commodity", "piece"),
    ("Кофе в зёрнах, Эфиопия", 320000, "none", "commodity", "kilogram"),
    ("Доставка по городу", 25000, "none", "service", "piece"),
]


def seed() -> int:
    """Add the demo products that are missing (each checked and committed by the catalog
    service) and the demo cashier. Returns how many products were added."""
    demo_cashier()
    existing = set(db.session.scalars(sa.select(Product.name)))
    added = 0
    for name, price, vat, payment_object, measure in DEMO_PRODUCTS:
        if name in existing:
            continue
        create_product(name=name, price_kopecks=price, vat=vat,
                       payment_object=payment_object, measure=measure)
        added += 1
    db.session.rollback()  # end the read-only transaction when nothing was added
    return added
