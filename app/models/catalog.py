"""The shop's catalog: goods and services a cashier can sell."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import TimestampMixin

# VAT rates as ATOL names them (tag 1199). Kept as a plain string so that a new rate
# (the 2025-2026 changes added 5, 7 and 22 %) is a configuration change, not a migration.
VAT_RATES = (
    "none", "vat0", "vat5", "vat7", "vat10", "vat20", "vat22",
    "vat105", "vat107", "vat110", "vat120", "vat122",
)


class Product(TimestampMixin, db.Model):
    __tablename__ = "products"
    __table_args__ = (
        sa.CheckConstraint("price_kopecks > 0", name="price_positive"),
        sa.Index("ix_products_active_name", "is_active", "name"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(128))
    price_kopecks: Mapped[int] = mapped_column(sa.BigInteger)
    vat: Mapped[str] = mapped_column(sa.String(8), default="none")
    payment_object: Mapped[str] = mapped_column(sa.String(32), default="commodity")
    measure: Mapped[str] = mapped_column(sa.String(16), default="piece")
    is_active: Mapped[bool] = mapped_column(default=True)

    def __repr__(self) -> str:
        return f"<Product {self.id} {self.name!r} {self.price_kopecks}>"
