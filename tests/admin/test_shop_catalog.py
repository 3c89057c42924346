"""The catalog page: a product added, changed, archived and restored, deleted only when it
was never sold; a viewer sees it all and changes nothing."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from app.catalog.services import create_product
from app.extensions import db
from app.models import AuditEntry, OrderChannel, Product
from app.orders.services import catalog_lines, create_order
from tests.admin.conftest import logged_in, make_admin

FORM = {"name": "Капучино", "price": "220,50", "vat": "vat20", "measure": "piece",
        "payment_object": "commodity"}


def _audit(action: str) -> list[AuditEntry]:
    return list(db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == action)))


def _product(name: str) -> Product | None:
    db.session.expire_all()
    return db.session.scalars(sa.select(Product).where(Product.name == name)).first()


def _names(page: str) -> list[str]:
    return re.findall(r'<tr data-product-id="\d+">\s*<td>([^<]+)</td>', page)


def test_an_admin_adds_a_product_and_finds_it(admin_client):
    page = admin_client.get("/admin/catalog").get_data(as_text=True)
    assert "В каталоге пока нет товаров" in page

    response = admin_client.post("/admin/catalog/new", data=FORM, follow_redirects=True)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Товар «Капучино» сохранён" in page
    product = _product("Капучино")
    assert (product.price_kopecks, product.vat, product.is_active) == (22050, "vat20", True)
    assert "220,50" in page
    (entry,) = _audit("product.create")
    assert (entry.actor_kind, entry.actor_label, entry.target_id) == (
        "admin", "owner@example.com", str(product.id))

    create_product(name="Эспрессо", price_kopecks=15000)
    found = admin_client.get("/admin/catalog?q=КАПУЧ").get_data(as_text=True)
    assert _names(found) == ["Капучино"]
    assert "Ничего не найдено" in admin_client.get("/admin/catalog?q=чай").get_data(as_text=True)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("price", "двести", "Цена — сумма в рублях"),
    ("price", "0", "Цена должна быть больше нуля"),
    ("name", "   ", "Название товара: от 1 до 128 символов"),
    ("vat", "vat99", "НДС"),
])
def test_a_bad_product_is_refused_next_to_its_field(admin_client, field, value, message):
    response = admin_client.post("/admin/catalog/new", data={**FORM, field: value})
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Product)) == 0


def test_an_admin_changes_the_price_and_the_journal_keeps_both(admin_client):
    product = create_product(name="Чай", price_kopecks=10000)
    form = admin_client.get(f"/admin/catalog/{product.id}/edit").get_data(as_text=True)
    assert 'value="Чай"' in form and 'value="100,00"' in form

    response = admin_client.post(f"/admin/catalog/{product.id}/edit",
                                 data={**FORM, "name": "Чай", "price": "120"})
    assert response.status_code == 302
    assert _product("Чай").price_kopecks == 12000
    (entry,) = _audit("product.update")
    assert entry.details["price_kopecks"] == [10000, 12000]


def test_archive_and_restore(admin_client):
    product = create_product(name="Круассан", price_kopecks=9000)
    admin_client.post(f"/admin/catalog/{product.id}/archive")
    assert _product("Круассан").is_active is False
    assert "Круассан" not in _names(admin_client.get("/admin/catalog").get_data(as_text=True))
    archived = admin_client.get("/admin/catalog?show=archived").get_data(as_text=True)
    assert _names(archived) == ["Круассан"]
    with pytest.raises(Exception, match="не найден в каталоге"):
        catalog_lines([(product.id, 1000)])  # the till cannot sell it

    admin_client.post(f"/admin/catalog/{product.id}/restore")
    assert _product("Круассан").is_active is True
    assert [e.action for e in db.session.scalars(
        sa.select(AuditEntry).order_by(AuditEntry.id))][-2:] == [
        "product.archive", "product.restore"]


def test_a_never_sold_product_is_deleted_a_sold_one_archived(admin_client):
    never = create_product(name="Пробник", price_kopecks=100)
    sold = create_product(name="Латте", price_kopecks=25000)
    create_order(channel=OrderChannel.MINIAPP, lines=catalog_lines([(sold.id, 1000)]))

    page = admin_client.post(f"/admin/catalog/{never.id}/delete",
                             follow_redirects=True).get_data(as_text=True)
    assert "Товар «Пробник» удалён" in page
    assert _product("Пробник") is None

    page = admin_client.post(f"/admin/catalog/{sold.id}/delete",
                             follow_redirects=True).get_data(as_text=True)
    assert "уже продавали" in page and "перенесён в архив" in page
    assert _product("Латте").is_active is False
    assert [e.target_id for e in _audit("product.delete")] == [str(never.id)]
    assert [e.target_id for e in _audit("product.archive")] == [str(sold.id)]


def test_a_viewer_sees_the_catalog_but_changes_nothing(viewer_client):
    product = create_product(name="Сок", price_kopecks=15000)
    page = viewer_client.get("/admin/catalog").get_data(as_text=True)
    assert _names(page) == ["Сок"]
    assert "Добавить товар" not in page
    assert f"/admin/catalog/{product.id}/archive" not in page
    assert viewer_client.get("/admin/catalog/new").status_code == 403
    for path in (f"/admin/catalog/{product.id}/archive", f"/admin/catalog/{product.id}/delete",
                 f"/admin/catalog/{product.id}/edit", "/admin/catalog/new"):
        assert viewer_client.post(path, data={**FORM, "price": "1"}).status_code == 403, path
    assert _product("Сок").is_active is True
    assert _product("Сок").price_kopecks == 15000
    assert _audit("product.archive") == []


def test_a_form_without_its_csrf_token_is_refused(make_app):
    app = make_app(WTF_CSRF_ENABLED=True)
    with app.app_context():
        client = logged_in(app, make_admin())
        product = create_product(name="Вода", price_kopecks=5000)
        assert client.post("/admin/catalog/new", data=FORM).status_code == 400
        assert client.post(f"/admin/catalog/{product.id}/archive").status_code == 400
        assert _product("Вода").is_active is True
        page = client.get("/admin/catalog").get_data(as_text=True)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        assert client.post(f"/admin/catalog/{product.id}/archive",
                           data={"csrf_token": token}).status_code == 302
        assert _product("Вода").is_active is False
