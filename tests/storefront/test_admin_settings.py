"""The storefront's page of the panel: the switch, pickup and delivery, the welcome text,
the categories; the product form's storefront fields and the catalog list showing them.
An admin acts, a viewer only reads; every change is in the journal."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from app.catalog.services import create_product
from app.extensions import db
from app.models import AdminRole, Category, Product
from app.storefront import categories as shelves
from app.storefront.settings import shop_settings, storefront_enabled
from tests.admin.conftest import logged_in, make_admin
from tests.storefront.shopadmin_support import audit

SETTINGS = {"storefront_enabled": "y", "pickup_enabled": "y",
            "pickup_address": "ул. Ленина, 1, с 10 до 20", "delivery_enabled": "y",
            "delivery_terms": "По городу за 2 часа, 300 ₽ курьеру",
            "welcome_text": "Свежая выпечка каждое утро"}
PRODUCT = {"name": "Кофе в зёрнах", "price": "1200", "vat": "none", "measure": "kilogram",
           "payment_object": "commodity"}


@pytest.fixture
def admin(app):
    return logged_in(app, make_admin())


@pytest.fixture
def viewer(app):
    return logged_in(app, make_admin("viewer@example.com", AdminRole.VIEWER))


def _settings():
    db.session.expire_all()
    return shop_settings()


def _category_names() -> list[str]:
    db.session.expire_all()
    return [category.name for category in shelves.categories()]


def test_an_admin_switches_the_storefront_on_with_pickup_and_delivery(admin):
    page = admin.get("/admin/storefront").get_data(as_text=True)
    assert re.search(r'<a href="/admin/storefront"\s+aria-current="page">Магазин</a>', page)
    assert not storefront_enabled()

    response = admin.post("/admin/storefront", data=SETTINGS, follow_redirects=True)
    assert response.status_code == 200
    assert "магазин включён" in response.get_data(as_text=True)
    settings = _settings()
    assert (settings.storefront_enabled, settings.pickup_address, settings.delivery_enabled,
            settings.delivery_terms, settings.welcome_text) == (
        True, "ул. Ленина, 1, с 10 до 20", True, "По городу за 2 часа, 300 ₽ курьеру",
        "Свежая выпечка каждое утро")
    (entry,) = audit("shop.settings")
    assert entry.actor_label == "owner@example.com"
    assert entry.details["storefront_enabled"] == [False, True]

    # Off again, delivery only: the form shows what is saved.
    response = admin.post("/admin/storefront", data={
        **SETTINGS, "storefront_enabled": "", "pickup_enabled": ""}, follow_redirects=True)
    assert "магазин выключен" in response.get_data(as_text=True)
    settings = _settings()
    assert (settings.storefront_enabled, settings.pickup_enabled) == (False, False)
    page = admin.get("/admin/storefront").get_data(as_text=True)
    assert "По городу за 2 часа" in page
    assert len(audit("shop.settings")) == 2


@pytest.mark.parametrize(("changes", "message"), [
    ({"pickup_enabled": "", "delivery_enabled": ""}, "Включите самовывоз или доставку"),
    ({"pickup_address": "  "}, "Укажите адрес"),
    ({"welcome_text": "ы" * 501}, "Не больше 500 символов"),
])
def test_settings_that_leave_a_customer_stuck_are_refused(admin, changes, message):
    response = admin.post("/admin/storefront", data={**SETTINGS, **changes})
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert not storefront_enabled()
    assert audit("shop.settings") == []


def test_a_viewer_reads_the_settings_and_changes_nothing(viewer):
    page = viewer.get("/admin/storefront").get_data(as_text=True)
    assert "выключен" in page
    assert 'action="/admin/storefront"' not in page
    category = shelves.add_category("Кофе")
    for path in ("/admin/storefront", "/admin/storefront/categories",
                 f"/admin/storefront/categories/{category.id}/rename",
                 f"/admin/storefront/categories/{category.id}/down",
                 f"/admin/storefront/categories/{category.id}/delete"):
        assert viewer.post(path, data={**SETTINGS, "name": "Чай"}).status_code == 403, path
    assert not storefront_enabled()
    assert _category_names() == ["Кофе"]


def test_categories_are_added_renamed_reordered_and_deleted(admin):
    for name in ("Кофе", "Выпечка", "Чай"):
        response = admin.post("/admin/storefront/categories", data={"name": name},
                              follow_redirects=True)
        assert f"Категория «{name}» добавлена" in response.get_data(as_text=True)
    refused = admin.post("/admin/storefront/categories", data={"name": "кофе"})
    assert refused.status_code == 422
    assert "Категория «кофе» уже есть" in refused.get_data(as_text=True)
    assert _category_names() == ["Кофе", "Выпечка", "Чай"]

    tea = db.session.scalars(sa.select(Category).where(Category.name == "Чай")).one()
    admin.post(f"/admin/storefront/categories/{tea.id}/up")
    assert _category_names() == ["Кофе", "Чай", "Выпечка"]
    admin.post(f"/admin/storefront/categories/{tea.id}/up")
    admin.post(f"/admin/storefront/categories/{tea.id}/up")  # already first: stays
    assert _category_names() == ["Чай", "Кофе", "Выпечка"]
    page = admin.get("/admin/storefront").get_data(as_text=True)
    assert re.findall(r'data-category-id="(\d+)"', page)[0] == str(tea.id)

    admin.post(f"/admin/storefront/categories/{tea.id}/rename",
               data={f"c{tea.id}-name": "Чай листовой"})
    assert _category_names() == ["Чай листовой", "Кофе", "Выпечка"]

    product = create_product(name="Улун", price_kopecks=30000, category_id=tea.id,
                             is_published=True)
    response = admin.post(f"/admin/storefront/categories/{tea.id}/delete",
                          follow_redirects=True)
    assert "её товары остались в каталоге" in response.get_data(as_text=True)
    assert _category_names() == ["Кофе", "Выпечка"]
    db.session.expire_all()
    kept = db.session.get(Product, product.id)
    assert (kept.category_id, kept.is_published, kept.is_active) == (None, True, True)
    assert [e.action for e in audit("category.create")] == ["category.create"] * 3
    assert len(audit("category.rename")) == 1 and len(audit("category.delete")) == 1


def test_the_product_form_publishes_with_category_description_and_stock(admin):
    coffee = shelves.add_category("Зерно")
    form = admin.get("/admin/catalog/new").get_data(as_text=True)
    assert "Показывать в магазине" in form and 'enctype="multipart/form-data"' in form
    assert f'<option value="{coffee.id}">Зерно</option>' in form

    response = admin.post("/admin/catalog/new", data={
        **PRODUCT, "is_published": "y", "category": str(coffee.id),
        "description": "Светлая обжарка", "stock": "2,5"})
    assert response.status_code == 302
    product = db.session.scalars(sa.select(Product)).one()
    assert (product.is_published, product.category_id, product.description,
            product.stock_milli) == (True, coffee.id, "Светлая обжарка", 2500)

    catalog = admin.get("/admin/catalog").get_data(as_text=True)
    row = re.search(rf'<tr data-product-id="{product.id}">(.*?)</tr>', catalog, re.S).group(1)
    assert "показан" in row and "Зерно" in row and "2,5 кг" in row

    edit = admin.get(f"/admin/catalog/{product.id}/edit").get_data(as_text=True)
    assert 'value="2,5"' in edit and "Светлая обжарка" in edit
    assert re.search(r'id="is_published"[^>]*checked|checked[^>]*id="is_published"', edit)


def test_stock_is_in_the_products_measure_and_optional(admin):
    response = admin.post("/admin/catalog/new", data={**PRODUCT, "measure": "piece",
                                                      "stock": "2,5"})
    assert response.status_code == 422
    assert "Остаток в шт — целое число" in response.get_data(as_text=True)
    response = admin.post("/admin/catalog/new", data={**PRODUCT, "stock": "много"})
    assert response.status_code == 422
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Product)) == 0

    admin.post("/admin/catalog/new", data={**PRODUCT, "name": "Чай", "stock": ""})
    admin.post("/admin/catalog/new", data={**PRODUCT, "name": "Сахар", "stock": "0"})
    stocks = dict(db.session.execute(sa.select(Product.name, Product.stock_milli)).all())
    assert stocks == {"Чай": None, "Сахар": 0}
    catalog = admin.get("/admin/catalog").get_data(as_text=True)
    assert "не считается" in catalog and ">нет<" in catalog
    hidden = re.search(r'<tr data-product-id="\d+">\s*<td>Чай</td>(.*?)</tr>', catalog, re.S)
    assert "скрыт" in hidden.group(1)


def test_saving_the_form_does_not_undo_a_sale_made_meanwhile(admin):
    product = create_product(name="Круассан", price_kopecks=18500, stock_milli=10_000)
    form = admin.get(f"/admin/catalog/{product.id}/edit").get_data(as_text=True)
    seen = re.search(r'name="stock_seen" type="hidden" value="([^"]*)"', form).group(1)
    assert seen == "10"
    # A customer buys 3 while the admin is typing a new price.
    db.session.execute(sa.update(Product).where(Product.id == product.id)
                       .values(stock_milli=7_000))
    db.session.commit()
    admin.post(f"/admin/catalog/{product.id}/edit", data={
        **PRODUCT, "name": "Круассан", "price": "190", "measure": "piece", "stock": "10",
        "stock_seen": seen})
    db.session.expire_all()
    saved = db.session.get(Product, product.id)
    assert (saved.price_kopecks, saved.stock_milli) == (19000, 7_000)
    # Typing a new stock sets it.
    admin.post(f"/admin/catalog/{product.id}/edit", data={
        **PRODUCT, "name": "Круассан", "price": "190", "measure": "piece", "stock": "20",
        "stock_seen": "7"})
    db.session.expire_all()
    assert db.session.get(Product, product.id).stock_milli == 20_000
