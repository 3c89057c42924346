"""QR images, PNG and SVG, rendered once per payload and cached: the SBP payment links
of QR codes and the check codes of receipts."""

from __future__ import annotations

import io
import re
from functools import lru_cache

import qrcode
import qrcode.image.pure
import qrcode.image.svg
from markupsafe import Markup

#: The image formats served, by the extension of their URL.
MIMETYPES = {"png": "image/png", "svg": "image/svg+xml"}


def _qr(payload: str) -> qrcode.QRCode:
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=10, border=4)
    code.add_data(payload)
    code.make(fit=True)
    return code


@lru_cache(maxsize=256)
def render_png(payload: str) -> bytes:
    buffer = io.BytesIO()
    _qr(payload).make_image(image_factory=qrcode.image.pure.PyPNGImage).save(buffer)
    return buffer.getvalue()


@lru_cache(maxsize=256)
def render_svg(payload: str) -> bytes:
    buffer = io.BytesIO()
    _qr(payload).make_image(image_factory=qrcode.image.svg.SvgPathImage).save(buffer)
    return buffer.getvalue()


def render(payload: str, fmt: str) -> tuple[bytes, str]:
    """The image of `payload` in `fmt` (a key of MIMETYPES) and its MIME type."""
    return (render_png(payload) if fmt == "png" else render_svg(payload)), MIMETYPES[fmt]


def inline_svg(payload: str) -> Markup:
    """The QR as inline SVG sized by CSS (black on white, quiet zone included)."""
    svg = render_svg(payload).decode()
    svg = re.sub(r"^<\?xml[^>]*\?>\s*", "", svg)
    svg = re.sub(r'\swidth="[^"]*"\sheight="[^"]*"', ' class="qr-svg" role="img" '
                 'shape-rendering="crispEdges" aria-label="QR"', svg, count=1)
    return Markup(svg)  # noqa: S704 - our renderer's SVG  # nosec B704
