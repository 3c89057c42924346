"""The shop's catalog: goods and services a cashier can sell."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import TimestampMixin

# VAT is stored as ATOL's name for the rate (tag 1199), a plain string, so a new rate is a
# change of app/receipt_lines.py (the line vocabulary), not a migration.
from app.receipt_lines import VAT_RATES

__all__ = ["VAT_RATES", "Product"]


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
    # Our measure names (app/receipt_lines.py MEASURES): "square_centimeter" has 17 letters.
    measure: Mapped[str] = mapped_column(sa.String(24), default="piece")
    is_active: Mapped[bool] = mapped_column(default=True)
    # The storefront: shown to customers only when published; a category and a description
    # for its card; the stock in thousandths of the measure (None: not counted, always
    # available; 0: sold out). Paid orders take their lines off it (app/storefront/stock.py).
    is_published: Mapped[bool] = mapped_column(default=False)
    category_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("categories.id", ondelete="SET NULL"), index=True)
    description: Mapped[str | None] = mapped_column(sa.String(500))
    stock_milli: Mapped[int | None] = mapped_column(sa.BigInteger)

    def __repr__(self) -> str:
        return f"<Product {self.id} {self.name!r} {self.price_kopecks}>"
