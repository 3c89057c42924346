"""The storefront's categories: added, renamed, moved up or down, deleted (services commit).

A category only groups the published catalog for customers; deleting one leaves its products
without a category (they stay in the catalog and the storefront).
"""

from __future__ import annotations

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from app import audit
from app.errors import NotFoundError, ValidationError
from app.extensions import db
from app.formatting import search_key
from app.models import Category, Product

MAX_NAME = 64


def categories() -> list[Category]:
    """Every category in the storefront's order."""
    return list(db.session.scalars(sa.select(Category).order_by(Category.position, Category.id)))


def _clean_name(name: str, *, other_than: int | None = None) -> str:
    name = " ".join((name or "").split())
    if not 0 < len(name) <= MAX_NAME:
        raise ValidationError(_l("Название категории: от 1 до 64 символов"),
                              code="invalid_category_name")
    if any(search_key(category.name) == search_key(name) and category.id != other_than
           for category in categories()):
        raise ValidationError(_l("Категория «%(name)s» уже есть", name=name),
                              code="duplicate_category")
    return name


def _category(category_id: int) -> Category:
    category = db.session.get(Category, category_id)
    if category is None:
        raise NotFoundError(_l("Категория не найдена"))
    return category


def add_category(name: str) -> Category:
    """A new category at the end of the list; commit.

    :raises ValidationError: an empty or long name, or one that is already there.
    """
    name = _clean_name(name)
    last = db.session.scalar(sa.select(sa.func.max(Category.position)))
    category = Category(name=name, position=(last + 1) if last is not None else 0)
    db.session.add(category)
    db.session.flush()
    audit.record("category.create", target_type="category", target_id=category.id, name=name)
    db.session.commit()
    return category


def rename_category(category_id: int, name: str) -> Category:
    category = _category(category_id)
    name = _clean_name(name, other_than=category_id)
    if name != category.name:
        audit.record("category.rename", target_type="category", target_id=category_id,
                     name=[category.name, name])
        category.name = name
    db.session.commit()
    return category


def move_category(category_id: int, step: int) -> Category:
    """Move a category one place up (step -1) or down (+1); commit. The ends stay put."""
    category = _category(category_id)
    ordered = categories()
    index = ordered.index(category)
    target = index + (1 if step > 0 else -1)
    if 0 <= target < len(ordered):
        ordered[index], ordered[target] = ordered[target], ordered[index]
        audit.record("category.move", target_type="category", target_id=category_id,
                     position=[index, target])
    for position, each in enumerate(ordered):
        each.position = position
    db.session.commit()
    return category


def delete_category(category_id: int) -> str:
    """Delete a category; its products keep everything else. Commit; returns its name."""
    category = _category(category_id)
    name = category.name
    db.session.execute(sa.update(Product).where(Product.category_id == category_id)
                       .values(category_id=None))
    audit.record("category.delete", target_type="category", target_id=category_id, name=name)
    db.session.delete(category)
    db.session.commit()
    return name
