"""Product photos: uploaded in the panel's product form, redrawn to 800 px and a 240 px thumb,
served by Kassa with a year's immutable caching; a new photo gets a new URL; a file that is
not an image, too big or a decompression bomb is refused and nothing is saved."""

from __future__ import annotations

import io
import re

import pytest
import sqlalchemy as sa
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from app.catalog.services import create_product
from app.errors import ValidationError
from app.extensions import db
from app.models import Product, ProductPhoto
from app.storefront.photos import MAX_BYTES, photo_url, prepare_photo, save_photo
from tests.admin.conftest import logged_in, make_admin
from tests.storefront.shopadmin_support import audit, image_bytes, noise_png, read_image

FORM = {"name": "Круассан", "price": "185", "vat": "none", "measure": "piece",
        "payment_object": "commodity", "is_published": "y", "stock": "", "description": ""}


@pytest.fixture
def admin(app):
    return logged_in(app, make_admin())


def _post(client, path: str, photo: bytes | None, filename: str = "photo.png", **fields):
    """POST the form as a browser does (multipart), encoded in memory (werkzeug's test
    client spools a big body to a temporary file it leaves open)."""
    data = {**FORM, **fields}
    if photo is not None:
        data["photo"] = FileStorage(io.BytesIO(photo), filename=filename)
    boundary, body = encode_multipart(data)
    return client.post(path, data=body,
                       content_type=f"multipart/form-data; boundary={boundary}")


def _product(name: str) -> Product | None:
    db.session.expire_all()
    return db.session.scalars(sa.select(Product).where(Product.name == name)).first()


def _photo_count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(ProductPhoto))


def test_an_uploaded_photo_is_resized_served_cached_and_replaced(admin):
    response = _post(admin, "/admin/catalog/new", image_bytes(2000, 1000, "JPEG"), "big.jpg")
    assert response.status_code == 302, response.get_data(as_text=True)
    product = _product("Круассан")
    image_url, thumb_url = photo_url(product), photo_url(product, thumb=True)
    assert re.fullmatch(rf"/shop/photos/{product.id}-[0-9a-f]{{16}}\.jpg", image_url)
    assert thumb_url == image_url.replace(".jpg", "-thumb.jpg")

    served = admin.get(image_url)
    assert served.status_code == 200
    assert served.mimetype == "image/jpeg"
    assert served.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert read_image(served.data).size == (800, 400)
    assert read_image(admin.get(thumb_url).data).size == (240, 120)
    etag = served.headers["ETag"]
    again = admin.get(image_url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    # Anyone may load it (an <img> in the customer's Mini App carries no initData).
    assert db.session.get(Product, product.id) is not None
    catalog = admin.get("/admin/catalog").get_data(as_text=True)
    assert f'src="{thumb_url}"' in catalog
    (entry,) = audit("product.photo")
    assert entry.actor_label == "owner@example.com"

    # A new photo: a new URL; the old one is gone (404), so no cache can show it again.
    response = _post(admin, f"/admin/catalog/{product.id}/edit",
                     image_bytes(300, 600, "PNG", colour=(0, 90, 200)))
    assert response.status_code == 302
    new_url = photo_url(product)
    assert new_url != image_url
    assert admin.get(image_url).status_code == 404
    assert admin.get(thumb_url).status_code == 404
    assert read_image(admin.get(new_url).data).size == (300, 600)  # small ones stay small
    assert _photo_count() == 1


def test_the_photo_is_turned_upright_and_flattened_on_white():
    # EXIF orientation 6: the camera was turned; the picture must be stored upright.
    upright = prepare_photo(image_bytes(400, 200, "JPEG", exif_orientation=6))
    assert (upright.width, upright.height) == (200, 400)
    assert "exif" not in read_image(upright.image).info
    transparent = prepare_photo(image_bytes(10, 10, "PNG", mode="RGBA", colour=(0, 0, 0, 0)))
    assert read_image(transparent.image).getpixel((5, 5)) >= (250, 250, 250)


@pytest.mark.parametrize(("upload", "filename", "message"), [
    (b"%PDF-1.7 not a picture at all", "menu.pdf", "Это не фотография"),
    (b"", "empty.jpg", "Файл пустой"),
    (image_bytes(50, 50, "JPEG")[:200], "cut.jpg", "Фото повреждено"),
])
def test_a_file_that_is_not_an_image_is_refused_and_nothing_saved(admin, upload, filename,
                                                                  message):
    response = _post(admin, "/admin/catalog/new", upload, filename)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert message in page
    assert 'data-field="photo"' in page
    assert _product("Круассан") is None
    assert _photo_count() == 0


def test_a_refused_photo_leaves_the_product_and_its_photo_as_they_were(admin):
    product = create_product(name="Чай", price_kopecks=10000)
    save_photo(product.id, image_bytes(100, 100))
    before = photo_url(product)
    response = _post(admin, f"/admin/catalog/{product.id}/edit", b"GIF89a-broken",
                     "x.gif", name="Чай зелёный", price="150")
    assert response.status_code == 422
    assert _product("Чай").price_kopecks == 10000
    assert _product("Чай зелёный") is None
    assert photo_url(product) == before


def test_a_photo_over_5_mb_is_refused_with_a_clear_message(make_app):
    # The panel's forms post with their CSRF token, so the size limit must be raised before
    # Flask-WTF reads the body: a 3 MB photo passes, a 5+ MB one is refused in Russian.
    app = make_app(WTF_CSRF_ENABLED=True)
    with app.app_context():
        client = logged_in(app, make_admin())
        page = client.get("/admin/catalog/new").get_data(as_text=True)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        big = noise_png(1000, 1000)
        assert 2 * 1024 * 1024 < len(big) < MAX_BYTES
        response = _post(client, "/admin/catalog/new", big, csrf_token=token)
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
        assert read_image(client.get(photo_url(_product("Круассан"))).data).size == (800, 800)

        huge = big + b"\0" * (MAX_BYTES - len(big) + 1)
        response = _post(client, "/admin/catalog/new", huge, csrf_token=token, name="Багет")
        assert response.status_code == 422
        assert "Фото больше 5 МБ" in response.get_data(as_text=True)
        assert _product("Багет") is None


def test_a_decompression_bomb_is_refused_before_it_is_decoded():
    bomb = image_bytes(10_000, 10_000, "PNG", mode="1", colour=0)  # 100 megapixels
    assert len(bomb) < 100_000
    with pytest.raises(ValidationError, match="не больше 40 мегапикселей"):
        prepare_photo(bomb)


def test_removing_the_photo(admin):
    product = create_product(name="Сок", price_kopecks=15000)
    save_photo(product.id, image_bytes(100, 100))
    url = photo_url(product)
    page = admin.get(f"/admin/catalog/{product.id}/edit").get_data(as_text=True)
    assert photo_url(product, thumb=True) in page and "Убрать фото" in page
    response = _post(admin, f"/admin/catalog/{product.id}/edit", None, name="Сок",
                     price="150", remove_photo="y")
    assert response.status_code == 302
    assert photo_url(product) is None
    assert admin.get(url).status_code == 404
    assert [e.action for e in audit("product.photo_delete")] == ["product.photo_delete"]


@pytest.mark.parametrize("path", [
    "/shop/photos/1-0123456789abcdef.jpg", "/shop/photos/x-0123456789abcdef.jpg",
    "/shop/photos/1-0123456789abcdef.png", "/shop/photos/1.jpg"])
def test_an_unknown_photo_is_404(app, path):
    assert app.test_client().get(path).status_code == 404
