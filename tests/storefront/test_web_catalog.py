"""The catalog a customer sees: published products on sale only, by category and search,
sold-out products that cannot be added, a product's card."""

from __future__ import annotations

import sqlalchemy as sa

from app.extensions import db
from app.models import Category, Product
from tests.storefront.conftest import OLGA, Customer
from tests.storefront.shopadmin_support import image_bytes, read_image


def _names(screen) -> list[str]:
    return [node.one(class_="name").text for node in screen.testid("product")]


def test_the_catalog_shows_only_published_products_on_sale(shop):
    with shop.app_context():
        db.session.execute(sa.update(Product).where(Product.id == shop.products["honey"])
                           .values(is_active=False))
        db.session.commit()
    screen = Customer(shop, OLGA).get("/catalog")
    assert _names(screen) == ["Кружка", "Чай улун"]  # no draft, no archived honey
    assert "250,00\u00a0₽" in screen.text


def test_a_sold_out_product_shows_it_and_cannot_be_added(shop):
    screen = Customer(shop, OLGA).get("/catalog")
    mug, _honey, tea = screen.testid("product")
    assert mug.one(data_testid="sold-out").text == "Нет в наличии"
    assert not mug.all(data_testid="add")
    assert tea.one(data_testid="add") and not tea.all(data_testid="sold-out")
    card = Customer(shop, OLGA).get(f"/products/{shop.products['mug']}")
    assert card.text_of("sold-out") == "Нет в наличии" and not card.testid("add")


def test_a_weighed_product_is_priced_per_its_measure(shop):
    screen = Customer(shop, OLGA).get("/catalog")
    assert "900,00\u00a0₽ / кг" in screen.text


def test_categories_in_the_shops_order_filter_the_catalog(shop):
    customer = Customer(shop, OLGA)
    screen = customer.get("/catalog")
    assert [c.text for c in screen.testid("category")] == ["Чай", "Посуда"]
    with shop.app_context():
        drinks = db.session.scalar(sa.select(Category.id).where(Category.name == "Чай"))
    assert _names(customer.get(f"/catalog?category={drinks}")) == ["Мёд гречишный",
                                                                  "Чай улун"]


def test_search_ignores_case_and_yo(shop):
    customer = Customer(shop, OLGA)
    assert _names(customer.get("/catalog?q=МЕД")) == ["Мёд гречишный"]
    assert _names(customer.get("/catalog?q=тайваньский")) == ["Чай улун"]  # the description
    empty = customer.get("/catalog?q=кофе")
    assert "Ничего не нашлось" in empty.text_of("no-products")


def test_a_product_card_and_an_unpublished_one(shop):
    customer = Customer(shop, OLGA)
    card = customer.get(f"/products/{shop.products['tea']}")
    assert (card.status, card.name) == (200, "product")
    assert card.text_of("name") == "Чай улун"
    assert card.text_of("description") == "Тайваньский улун"
    assert card.testid("add")
    hidden = customer.get(f"/products/{shop.products['draft']}")
    assert (hidden.status, hidden.name) == (404, "error")


def test_a_product_with_a_photo_shows_its_thumb_served_by_kassa(shop):
    from app.storefront.photos import save_photo

    with shop.app_context():
        photo = save_photo(shop.products["tea"], image_bytes(1200, 900))
        digest = photo.digest
    screen = Customer(shop, OLGA).get("/catalog")
    tea = screen.testid("product")[2]
    src = tea.one("img").attrs["src"]
    assert src == f"/shop/photos/{shop.products['tea']}-{digest}-thumb.jpg"
    thumb = shop.test_client().get(src)
    assert thumb.status_code == 200 and thumb.mimetype == "image/jpeg"
    assert max(read_image(thumb.data).size) <= 240


def test_without_a_photo_a_product_shows_its_initial(shop):
    tea = Customer(shop, OLGA).get("/catalog").testid("product")[2]
    assert not tea.all("img")
    assert tea.one(class_="pic none").text == "Ч"
