"""Demo data for `flask demo seed`: a coffee shop's catalog."""

from __future__ import annotations

import sqlalchemy as sa

from app.extensions import db
from app.models import Product

DEMO_PRODUCTS = [
    ("Капучино 300 мл", 22000, "none", "commodity", "piece"),
    ("Американо 250 мл", 16000, "none", "commodity", "piece"),
    ("Круассан с миндалём", 18500, "none", "commodity", "piece"),
    ("Кофе в зёрнах, Эфиопия", 320000, "none", "commodity", "kilogram"),
    ("Доставка по городу", 25000, "none", "service", "piece"),
]


def seed() -> int:
    """Add the demo products that are missing; commit. Returns how many were added."""
    existing = set(db.session.scalars(sa.select(Product.name)))
    added = 0
    for name, price, vat, payment_object, measure in DEMO_PRODUCTS:
        if name in existing:
            continue
        db.session.add(Product(name=name, price_kopecks=price, vat=vat,
                               payment_object=payment_object, measure=measure))
        added += 1
    db.session.commit()
    return added
