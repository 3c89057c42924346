"""The storefront's settings: one row, made on first need (services commit)."""

from __future__ import annotations

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.dialects import postgresql, sqlite

from app import audit
from app.errors import ValidationError
from app.extensions import db
from app.jobs import publish
from app.models import ShopSettings, utcnow
from app.models.storefront import SINGLETON

FIELDS = ("storefront_enabled", "pickup_enabled", "pickup_address", "delivery_enabled",
          "delivery_terms", "welcome_text")


def shop_settings() -> ShopSettings:
    """The settings row, inserted with the defaults on the first call (race-safe: INSERT ...
    ON CONFLICT DO NOTHING, then read); the insert is left to the caller's transaction."""
    found = db.session.get(ShopSettings, SINGLETON)
    if found is not None:
        return found
    dialect = postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite
    db.session.execute(
        dialect.insert(ShopSettings)
        .values(id=SINGLETON, storefront_enabled=False, pickup_enabled=True,
                delivery_enabled=False, created_at=utcnow(), updated_at=utcnow())
        .on_conflict_do_nothing(index_elements=["id"])
    )
    return db.session.scalars(sa.select(ShopSettings).where(ShopSettings.id == SINGLETON)).one()


def current_settings() -> ShopSettings:
    """The settings for reading: the row, or the defaults when none was saved yet (a
    transient object, nothing written)."""
    return db.session.get(ShopSettings, SINGLETON) or ShopSettings(
        id=SINGLETON, storefront_enabled=False, pickup_enabled=True, delivery_enabled=False)


def storefront_enabled() -> bool:
    """Whether customers may buy in the bot (read-only: no row means off)."""
    found = db.session.get(ShopSettings, SINGLETON)
    return bool(found and found.storefront_enabled)


def update_settings(**changes) -> ShopSettings:
    """Change the settings (see FIELDS), write the change to the audit log, and commit.

    :raises ValidationError: an unknown field, or neither pickup nor delivery left on.
    """
    unknown = set(changes) - set(FIELDS)
    if unknown:
        raise ValidationError(_l("Неизвестные настройки: %(fields)s",
                                 fields=", ".join(sorted(unknown))), code="invalid_request")
    settings = shop_settings()
    before = {field: getattr(settings, field) for field in changes}
    for field, value in changes.items():
        setattr(settings, field, (value.strip() or None) if isinstance(value, str) else value)
    if not (settings.pickup_enabled or settings.delivery_enabled):
        db.session.rollback()
        raise ValidationError(_l("Включите самовывоз или доставку: иначе покупателю нечего "
                                 "выбрать"), code="no_delivery_method")
    changed = {field: [before[field], getattr(settings, field)] for field in changes
               if before[field] != getattr(settings, field)}
    if changed:
        settings.updated_at = utcnow()
        audit.record("shop.settings", target_type="shop_settings", target_id=SINGLETON,
                     **changed)
        if "storefront_enabled" in changed:
            # The bot's default menu button follows the switch (app/storefront/notify.py).
            publish("storefront.switched", {"enabled": settings.storefront_enabled},
                    key=f"storefront-{settings.updated_at.isoformat()}")
    db.session.commit()
    return settings


def set_storefront(enabled: bool) -> ShopSettings:
    """Switch the storefront on or off; commit."""
    return update_settings(storefront_enabled=enabled)
