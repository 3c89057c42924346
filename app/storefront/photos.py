"""Product photos: resized on upload (Pillow) and kept in the database, served by Kassa.

An upload is checked and redrawn before anything is stored: it must be an image Pillow
reads (JPEG, PNG, WebP, GIF), no bigger than 5 MB and 40 megapixels (a small file that
unpacks into a huge picture, a "decompression bomb", is refused before it is decoded). It is
turned upright (EXIF orientation), flattened onto white, and stored as two JPEGs: `image`
(fits 800x800) for the product card and `thumb` (fits 240x240) for the catalog. Metadata
(EXIF, GPS) is not copied.

The URL carries the image's digest (`/shop/photos/<product id>-<digest>.jpg`), so a photo
never changes under its URL: browsers and Telegram's webview cache it for a year, and a new
photo gets a new URL. A stale digest answers 404.
"""

from __future__ import annotations

import hashlib
import io
import logging
import warnings
from dataclasses import dataclass

import sqlalchemy as sa
from flask import Blueprint, Flask, Response, abort, current_app, request
from flask_babel import lazy_gettext as _l
from PIL import Image, ImageOps, UnidentifiedImageError

from app import audit
from app.errors import NotFoundError, ValidationError
from app.extensions import db
from app.models import Product, ProductPhoto, utcnow

logger = logging.getLogger(__name__)

MAX_BYTES = 5 * 1024 * 1024
MAX_PIXELS = 40_000_000
IMAGE_SIZE = 800
THUMB_SIZE = 240
QUALITY = 82
FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
CACHE_CONTROL = "public, max-age=31536000, immutable"
# The panel's product form carries the photo: its requests may be this big (the app's
# MAX_CONTENT_LENGTH, 1 MB, stays for everything else).
UPLOAD_ENDPOINTS = frozenset({"admin.product_new", "admin.product_edit"})
UPLOAD_MAX_REQUEST = MAX_BYTES + 256 * 1024

PREFIX = "/shop/photos"
bp = Blueprint("storefront_photos", __name__)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    # Before every other before_request function: Flask-WTF's CSRF check reads the form,
    # and the request's size limit must be raised before the body is parsed.
    app.before_request_funcs.setdefault(None, []).insert(0, _allow_photo_uploads)


def _allow_photo_uploads() -> None:
    if request.endpoint in UPLOAD_ENDPOINTS and request.method == "POST":
        request.max_content_length = UPLOAD_MAX_REQUEST


@dataclass(frozen=True)
class PreparedPhoto:
    """An upload redrawn: the two JPEGs, the image's size, its digest."""

    image: bytes
    thumb: bytes
    width: int
    height: int
    digest: str


def _refuse(message) -> ValidationError:
    return ValidationError(message, code="invalid_photo")


def _jpeg(picture: Image.Image) -> bytes:
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=QUALITY, optimize=True)
    return out.getvalue()


def _flatten(picture: Image.Image) -> Image.Image:
    """RGB on white (a transparent PNG's background is white, not black)."""
    if picture.mode in ("RGBA", "LA", "P", "PA"):
        picture = picture.convert("RGBA")
        white = Image.new("RGB", picture.size, (255, 255, 255))
        white.paste(picture, mask=picture.getchannel("A"))
        return white
    return picture.convert("RGB")


def prepare_photo(data: bytes) -> PreparedPhoto:
    """Check and redraw an upload; nothing is stored.

    :raises ValidationError: empty, over 5 MB, not an image, too many pixels, or broken.
    """
    if not data:
        raise _refuse(_l("Файл пустой: выберите фотографию"))
    if len(data) > MAX_BYTES:
        raise _refuse(_l("Фото больше 5 МБ: уменьшите его и загрузите снова"))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=FORMATS) as probe:
                width, height = probe.size
                if width * height > MAX_PIXELS:
                    raise _refuse(_l("Фото слишком большое: не больше 40 мегапикселей"))
                probe.verify()
            # verify() leaves the file unusable: open it again to draw it.
            with Image.open(io.BytesIO(data), formats=FORMATS) as opened:
                opened.seek(0)
                picture = _flatten(ImageOps.exif_transpose(opened))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _refuse(_l("Фото слишком большое: не больше 40 мегапикселей")) from None
    except UnidentifiedImageError:
        raise _refuse(_l("Это не фотография: загрузите файл JPEG, PNG или WebP")) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:  # a truncated or broken file
        logger.info("photo refused: %s: %s", type(exc).__name__, exc)
        raise _refuse(_l("Фото повреждено и не читается: загрузите другой файл")) from None
    picture.thumbnail((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.LANCZOS)
    image = _jpeg(picture)
    thumb_picture = picture.copy()
    thumb_picture.thumbnail((THUMB_SIZE, THUMB_SIZE), Image.Resampling.LANCZOS)
    return PreparedPhoto(image=image, thumb=_jpeg(thumb_picture), width=picture.width,
                         height=picture.height,
                         digest=hashlib.sha256(image).hexdigest()[:16])


def photo_of(product_id: int) -> ProductPhoto | None:
    return db.session.scalar(sa.select(ProductPhoto).where(ProductPhoto.product_id == product_id))


def save_photo(product_id: int, data: bytes | PreparedPhoto) -> ProductPhoto:
    """Give a product its photo (replacing the one it had), write the audit log, commit.

    :param data: the uploaded file's bytes, or a photo already prepared by prepare_photo().
    :raises NotFoundError: no such product.
    :raises ValidationError: see prepare_photo(); nothing is stored.
    """
    prepared = data if isinstance(data, PreparedPhoto) else prepare_photo(data)
    if db.session.get(Product, product_id) is None:
        raise NotFoundError(_l("Товар не найден"))
    photo = photo_of(product_id)
    before = photo.digest if photo is not None else None
    if photo is None:
        photo = ProductPhoto(product_id=product_id)
        db.session.add(photo)
    photo.digest, photo.content_type = prepared.digest, "image/jpeg"
    photo.image, photo.thumb = prepared.image, prepared.thumb
    photo.width, photo.height = prepared.width, prepared.height
    photo.updated_at = utcnow()
    audit.record("product.photo", target_type="product", target_id=product_id,
                 digest=[before, prepared.digest], width=prepared.width,
                 height=prepared.height, bytes=len(prepared.image))
    db.session.commit()
    logger.info("product %s photo %s (%dx%d)", product_id, prepared.digest, prepared.width,
                prepared.height)
    return photo


def delete_photo(product_id: int) -> bool:
    """Take a product's photo away; commit. Returns whether it had one."""
    photo = photo_of(product_id)
    if photo is None:
        db.session.rollback()
        return False
    audit.record("product.photo_delete", target_type="product", target_id=product_id,
                 digest=photo.digest)
    db.session.delete(photo)
    db.session.commit()
    return True


def photo_digests(product_ids) -> dict[int, str]:
    """{product id: digest} of those that have a photo: one query for a whole list."""
    ids = list(product_ids)
    if not ids:
        return {}
    return dict(db.session.execute(
        sa.select(ProductPhoto.product_id, ProductPhoto.digest)
        .where(ProductPhoto.product_id.in_(ids))).all())


def photo_url(product, thumb: bool = False, *, digest: str | None = None,
              external: bool = False) -> str | None:
    """The photo's URL, or None when it has none: a path on Kassa's own host (works in
    and outside a request), or with `external` the full URL under PUBLIC_URL.

    :param product: a Product or its id.
    :param digest: the digest when already known (photo_digests() for a list): no query.
    """
    product_id = product if isinstance(product, int) else product.id
    if digest is None:
        digest = db.session.scalar(sa.select(ProductPhoto.digest)
                                   .where(ProductPhoto.product_id == product_id))
        if digest is None:
            return None
    name = f"{product_id}-{digest}-thumb.jpg" if thumb else f"{product_id}-{digest}.jpg"
    path = f"{PREFIX}/{name}"
    return f"{current_app.config['PUBLIC_URL']}{path}" if external else path


@bp.get(f"{PREFIX}/<name>")
def photo(name: str):
    stem, dot, ext = name.partition(".")
    if ext != "jpg" or not dot:
        abort(404)
    thumb = stem.endswith("-thumb")
    stem = stem.removesuffix("-thumb")
    product_id, _, digest = stem.partition("-")
    if not product_id.isdigit() or len(digest) != 16:
        abort(404)
    column = ProductPhoto.thumb if thumb else ProductPhoto.image
    row = db.session.execute(sa.select(column).where(
        ProductPhoto.product_id == int(product_id), ProductPhoto.digest == digest)).first()
    db.session.rollback()
    if row is None:
        abort(404)
    etag = f"{digest}-t" if thumb else digest
    response = Response(row[0], mimetype="image/jpeg")
    response.set_etag(etag)
    response.headers["Cache-Control"] = CACHE_CONTROL
    return response.make_conditional(request)
