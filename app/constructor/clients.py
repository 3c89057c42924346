"""API clients: their keys (shown once, kept as sha256), authentication, revocation and
settings. Each public function that writes commits once."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _l

from app import audit
from app.constructor.signing import new_secret
from app.errors import KassaError, NotFoundError, ValidationError
from app.extensions import READ_ONLY, db
from app.httpclient import UnsafeUrl, check_outbound_url
from app.models import ApiClient, CallbackPreset, utcnow

logger = logging.getLogger(__name__)

KEY_PREFIX = "kassa_"
PREFIX_LENGTH = 12  # ApiClient.key_prefix: "kassa_" and six characters of the secret
MAX_KEY_LENGTH = 128
MAX_NAME = 128
MAX_CALLBACK_URL = 512
# last_used_at is written at most this often per client: a status poll is not a write.
LAST_USED_PRECISION = timedelta(minutes=1)


class AuthError(KassaError):
    """No key, or a key that is unknown or revoked."""

    code = "unauthorized"
    status = 401


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _clean_name(name: str | None) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError(_l("Укажите название клиента API"), code="invalid_name")
    if len(name) > MAX_NAME:
        raise ValidationError(_l("Название — не больше %(max)s символов", max=MAX_NAME),
                              code="invalid_name")
    return name


def _clean_preset(preset: str | CallbackPreset | None) -> CallbackPreset:
    if isinstance(preset, CallbackPreset):
        return preset
    try:
        return CallbackPreset((preset or CallbackPreset.WEBHOOK.value).strip().lower())
    except ValueError:
        raise ValidationError(
            _l("Неизвестный конструктор «%(preset)s»; можно: %(known)s", preset=preset,
               known=", ".join(p.value for p in CallbackPreset)),
            code="invalid_preset") from None


def _clean_url(url: str | None) -> str | None:
    url = (url or "").strip()
    if not url:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:  # "http://[::1" and the like
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.netloc or len(url) > MAX_CALLBACK_URL:
        raise ValidationError(_l("Адрес для уведомлений — ссылка http:// или https:// "
                                 "не длиннее %(max)s символов", max=MAX_CALLBACK_URL),
                              code="invalid_callback_url")
    try:
        check_outbound_url(url, allow_private=current_app.config.get(
            "OUTBOUND_ALLOW_PRIVATE", False))
    except UnsafeUrl as exc:
        if exc.reason == "private":
            message = _l("Адрес для уведомлений ведёт во внутреннюю сеть (%(host)s → "
                         "%(address)s): Kassa отправляет уведомления только на публичные "
                         "адреса", host=exc.host, address=exc.address)
        elif exc.reason == "unresolvable":
            message = _l("Адрес для уведомлений не найден: у имени %(host)s нет IP-адреса",
                         host=exc.host)
        else:
            message = _l("Адрес для уведомлений — ссылка http:// или https:// не длиннее "
                         "%(max)s символов", max=MAX_CALLBACK_URL)
        raise ValidationError(message, code="invalid_callback_url") from None
    return url


def create_client(name: str, *, preset: str | CallbackPreset | None = None,
                  callback_url: str | None = None,
                  settings: dict[str, Any] | None = None) -> tuple[ApiClient, str]:
    """Create an API client and commit it.

    :returns: the client and its key: the only time the key exists in the clear.
    :raises ValidationError: an empty name, an unknown preset, a bad callback URL.
    """
    name, preset = _clean_name(name), _clean_preset(preset)
    callback_url = _clean_url(callback_url)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    settings = dict(settings or {})
    if preset == CallbackPreset.WEBHOOK:
        # The generic webhook signs its callbacks with a secret of its own.
        settings.setdefault("secret", new_secret())
    client = ApiClient(name=name, key_hash=hash_key(key), key_prefix=key[:PREFIX_LENGTH],
                       preset=preset, callback_url=callback_url, settings=settings,
                       active=True)
    db.session.add(client)
    db.session.flush()
    audit.record("api_client.create", target_type="api_client", target_id=client.id,
                 name=name, preset=preset.value, callback_url=callback_url,
                 key_prefix=client.key_prefix)
    db.session.commit()
    logger.info("API client %s %r created (%s)", client.id, name, preset.value)
    return client, key


def authenticate(key: str | None) -> ApiClient:
    """The active client whose key this is.

    :raises AuthError: no key, or an unknown or revoked one (nothing tells which).
    """
    if not key:
        raise AuthError(str(_l("Нужен ключ API: заголовок Authorization: Bearer <ключ>, "
                               "X-Api-Key или параметр token")), code="missing_key")
    if len(key) > MAX_KEY_LENGTH:
        raise AuthError(str(_l("Ключ API неверен или отозван")), code="invalid_key")
    wanted = hash_key(key)
    client = db.session.scalars(
        sa.select(ApiClient).where(ApiClient.key_hash == wanted)
    ).one_or_none()
    if (client is None or not hmac.compare_digest(client.key_hash, wanted)
            or not client.active or client.revoked_at is not None):
        raise AuthError(str(_l("Ключ API неверен или отозван")), code="invalid_key")
    now = utcnow()
    if client.last_used_at is None or now - client.last_used_at > LAST_USED_PRECISION:
        db.session.execute(sa.update(ApiClient).where(ApiClient.id == client.id)
                           .values(last_used_at=now))
        db.session.commit()
    return client


def active_client_id(key: str | None) -> int | None:
    """The id of the active client whose key this is, or None; read on a connection of its
    own (the caller's session is left alone) and written nowhere."""
    if not key or len(key) > MAX_KEY_LENGTH:
        return None
    with db.engine.connect().execution_options(**{READ_ONLY: True}) as conn:
        client_id = conn.scalar(sa.select(ApiClient.id).where(
            ApiClient.key_hash == hash_key(key), ApiClient.active.is_(True),
            ApiClient.revoked_at.is_(None)))
        conn.rollback()
    return client_id


def get_client(client_id: int) -> ApiClient:
    client = db.session.get(ApiClient, client_id)
    if client is None:
        raise NotFoundError(_l("Клиент API не найден"))
    return client


def list_clients() -> list[ApiClient]:
    return list(db.session.scalars(sa.select(ApiClient).order_by(ApiClient.id)))


def revoke_client(client_id: int) -> ApiClient:
    """Revoke a client's key for good (its orders stay); commit. Revoking twice is a no-op."""
    client = get_client(client_id)
    if client.revoked_at is None:
        client.revoked_at = utcnow()
        client.active = False
        audit.record("api_client.revoke", target_type="api_client", target_id=client.id,
                     name=client.name, key_prefix=client.key_prefix)
        db.session.commit()
        logger.info("API client %s revoked", client.id)
    return client


def update_client(client_id: int, *, name: str | None = None,
                  preset: str | CallbackPreset | None = None,
                  callback_url: str | None = None,
                  settings: dict[str, Any] | None = None) -> ApiClient:
    """Change a client's name, preset, callback URL or preset settings; commit.

    `callback_url=""` removes the callback; None leaves a field as it is. The webhook's
    signing secret is kept unless `settings` names a new one.
    """
    client = get_client(client_id)
    changed: dict[str, Any] = {}
    if name is not None and name.strip() != client.name:
        client.name = changed["name"] = _clean_name(name)
    if preset is not None and _clean_preset(preset) != client.preset:
        client.preset = _clean_preset(preset)
        changed["preset"] = client.preset.value
    if callback_url is not None:
        cleaned = _clean_url(callback_url)
        if cleaned != client.callback_url:
            client.callback_url = changed["callback_url"] = cleaned
    if settings is not None:
        merged = {**settings}
        if "secret" in (client.settings or {}) and "secret" not in merged:
            merged["secret"] = client.settings["secret"]
        if client.preset == CallbackPreset.WEBHOOK:
            merged.setdefault("secret", new_secret())
        if merged != client.settings:
            client.settings = merged
            # Which settings changed, never their values: they hold the constructors' tokens.
            changed["settings"] = sorted(merged)
    if changed:
        audit.record("api_client.update", target_type="api_client", target_id=client.id,
                     **changed)
        db.session.commit()
    return client


def client_to_dict(client: ApiClient) -> dict[str, Any]:
    """The client as the CLI and the panel show it (never the key, never the settings'
    secrets)."""
    return {
        "id": client.id, "name": client.name, "key_prefix": client.key_prefix,
        "preset": client.preset.value, "callback_url": client.callback_url,
        "active": client.active and client.revoked_at is None,
        "revoked_at": client.revoked_at.isoformat() if client.revoked_at else None,
        "last_used_at": client.last_used_at.isoformat() if client.last_used_at else None,
        "created_at": client.created_at.isoformat() if client.created_at else None,
    }
