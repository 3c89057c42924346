"""What the storefront's admin tests share (helper "shopadmin"): images made with Pillow,
the panel's clients, the sandbox's NSPK list, the audit log."""

from __future__ import annotations

import io

import sqlalchemy as sa
from PIL import Image

from app.config import SANDBOX_MERCHANT_ID, SANDBOX_SECRET_KEY
from app.extensions import db
from app.models import AuditEntry
from app.sandbox import SandboxSettings, start_sandbox


def image_bytes(width: int, height: int, fmt: str = "PNG", *, colour=(200, 40, 40),
                mode: str = "RGB", exif_orientation: int | None = None) -> bytes:
    picture = Image.new(mode, (width, height), colour)
    out = io.BytesIO()
    if exif_orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        picture.save(out, fmt, exif=exif.tobytes())
    else:
        picture.save(out, fmt)
    return out.getvalue()


def noise_png(width: int, height: int) -> bytes:
    """An image that does not compress: its file is about width x height x 3 bytes."""
    import os

    picture = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
    out = io.BytesIO()
    picture.save(out, "PNG", compress_level=1)
    return out.getvalue()


def read_image(data: bytes) -> Image.Image:
    picture = Image.open(io.BytesIO(data))
    picture.load()
    return picture


def audit(action: str) -> list[AuditEntry]:
    return list(db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == action)
                                   .order_by(AuditEntry.id)))


def sandbox():
    """A sandbox (its NSPK list at <url>/proxyapp/c2bmembers.json); the caller shuts it down."""
    return start_sandbox(SandboxSettings(merchant_id=SANDBOX_MERCHANT_ID,
                                         secret_key=SANDBOX_SECRET_KEY, callback_url=None))


def members_url(server) -> str:
    return f"{server.url}/proxyapp/c2bmembers.json"
