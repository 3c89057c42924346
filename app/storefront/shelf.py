"""What the customer may buy: published, active products, by category and search, with
their stock and photos (read only)."""

from __future__ import annotations

import sqlalchemy as sa

from app.extensions import db
from app.formatting import search_key
from app.models import Category, Product
from app.storefront.photos import photo_digests, photo_url

PIECE = "piece"
UNIT = 1000


def on_sale():
    """The condition of a product a customer may see."""
    return sa.and_(Product.is_active.is_(True), Product.is_published.is_(True))


def categories() -> list[Category]:
    """Categories that have something on sale, in the shop's order."""
    used = sa.select(Product.category_id).where(on_sale(), Product.category_id.is_not(None))
    return list(db.session.scalars(
        sa.select(Category).where(Category.id.in_(used))
        .order_by(Category.position, Category.name)))


def products(q: str = "", category_id: int | None = None) -> list[Product]:
    """Products on sale in a category (any if None) whose name or description contains `q`,
    any case, е and ё alike (in Python: SQLite's lower() knows only ASCII), by name."""
    query = sa.select(Product).where(on_sale())
    if category_id is not None:
        query = query.where(Product.category_id == category_id)
    found = list(db.session.scalars(query))
    key = search_key(q)
    if key:
        found = [p for p in found
                 if key in search_key(p.name) or key in search_key(p.description or "")]
    return sorted(found, key=lambda p: (p.name.casefold(), p.id))


def product(product_id: int) -> Product | None:
    return db.session.scalar(sa.select(Product).where(Product.id == product_id, on_sale()))


def sold_out(product: Product) -> bool:
    """Stock counted and nothing (or less than one piece) left."""
    if product.stock_milli is None:
        return False
    return product.stock_milli < (UNIT if product.measure == PIECE else 1)


def photo_urls(products, *, thumb: bool = False) -> dict[int, str]:
    """{product id: photo URL} of those that have a photo: one query for a whole list."""
    digests = photo_digests(product.id for product in products)
    return {pid: photo_url(pid, thumb=thumb, digest=digest) for pid, digest in digests.items()}
