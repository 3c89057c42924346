"""The catalog screen and editing products from the till."""

from __future__ import annotations

import pytest

from tests.miniapp.conftest import ANNA, BORIS, Phone


def _names(screen) -> list[str]:
    return [p.one(class_="name").text for p in screen.testid("product")]


def test_the_catalog_shows_names_prices_and_a_unit_for_weighed_goods(till):
    screen = Phone(till, ANNA).get("/miniapp/catalog")
    assert screen.name == "catalog" and screen.status == 200
    assert _names(screen) == ["Капучино 300 мл", "Кофе в зёрнах, Эфиопия",
                              "Круассан с миндалём", "Мёд липовый"]
    beans = screen.section.one(data_product_id=till.products["beans"])
    assert "3\u00a0200,00\u00a0₽ / кг" in beans.text
    assert beans.one(data_testid="add").text == "+ 1 кг"
    assert screen.testid("today") and screen.testid("cart-count")


@pytest.mark.parametrize(("q", "found"), [
    ("кофе", ["Кофе в зёрнах, Эфиопия"]),
    ("КРУАССАН", ["Круассан с миндалём"]),
    ("мед", ["Мёд липовый"]),           # ё and е alike
    ("чай", []),
])
def test_search_by_name_ignores_case(till, q, found):
    screen = Phone(till, ANNA).get("/miniapp/catalog", query_string={"q": q})
    assert _names(screen) == found
    if not found:
        assert "Ничего не нашлось" in screen.text


def test_a_cashier_without_the_right_cannot_edit_the_catalog(till):
    anna = Phone(till, ANNA)
    catalog = anna.get("/miniapp/catalog")
    assert not catalog.testid("new-product") and not catalog.testid("edit")
    for screen in (anna.get("/miniapp/products/new"),
                   anna.post("/miniapp/products", {"name": "Чай", "price": "100",
                                                   "vat": "none", "measure": "piece",
                                                   "payment_object": "commodity"}),
                   anna.post(f"/miniapp/products/{till.products['cappuccino']}",
                             {"name": "Капучино", "price": "1", "vat": "none",
                              "measure": "piece", "payment_object": "commodity"})):
        assert (screen.status, screen.name) == (403, "error")
        assert "менеджер" in screen.text
    catalog = Phone(till, BORIS).get("/miniapp/catalog")
    assert "Чай" not in _names(catalog)
    assert "220,00" in catalog.section.one(data_product_id=till.products["cappuccino"]).text


def test_an_editor_adds_a_product_priced_in_rubles(till):
    boris = Phone(till, BORIS)
    form = boris.get("/miniapp/products/new")
    assert form.name == "product-form"
    vat = form.section.one("select", name="vat")
    assert "НДС 20%" in vat.text and "Без НДС" in vat.text
    assert "Килограмм (кг)" in form.section.one("select", name="measure").text
    assert "Услуга" in form.section.one("select", name="payment_object").text
    saved = boris.post("/miniapp/products", {"name": "Чай с чабрецом", "price": "220,50",
                                             "vat": "vat20", "measure": "piece",
                                             "payment_object": "commodity"})
    assert saved.name == "catalog"
    assert "Чай с чабрецом" in saved.text_of("saved")
    tea = [p for p in saved.testid("product") if "Чай с чабрецом" in p.text]
    assert tea and "220,50\u00a0₽" in tea[0].text


@pytest.mark.parametrize(("field", "changes", "says"), [
    ("price", {"price": "дорого"}, "Цена — сумма в рублях"),
    ("price", {"price": "-5"}, "Цена — сумма в рублях"),
    ("price", {"price": "0"}, "Цена должна быть больше нуля"),
    ("price", {"price": ""}, "Укажите цену"),
    ("vat", {"vat": "vat99"}, "Неизвестная ставка НДС"),
    ("measure", {"measure": "parsec"}, "Неизвестная единица"),
    ("name", {"name": "  "}, "Название товара"),
])
def test_a_bad_product_is_refused_next_to_its_field_and_nothing_is_saved(till, field, changes,
                                                                        says):
    boris = Phone(till, BORIS)
    before = _names(boris.get("/miniapp/catalog"))
    form = {"name": "Чай", "price": "100", "vat": "none", "measure": "piece",
            "payment_object": "commodity", **changes}
    screen = boris.post("/miniapp/products", form)
    assert (screen.status, screen.name) == (422, "product-form")
    errors = screen.section.all(class_="field-error")
    assert [e.attrs.get("data-field") for e in errors] == [field]
    assert says in errors[0].text
    assert screen.section.one("input", name="name").attrs["value"] == form["name"]
    assert _names(boris.get("/miniapp/catalog")) == before


def test_an_editor_changes_a_price_and_a_bad_edit_changes_nothing(till):
    boris = Phone(till, BORIS)
    pid = till.products["croissant"]
    form = boris.get(f"/miniapp/products/{pid}/edit")
    assert form.section.one("input", name="price").attrs["value"] == "185,00"
    values = {"name": "Круассан с миндалём", "vat": "none", "measure": "piece",
              "payment_object": "commodity"}
    refused = boris.post(f"/miniapp/products/{pid}", {**values, "price": "1,999"})
    assert refused.status == 422
    catalog = boris.get("/miniapp/catalog")
    assert "185,00" in catalog.section.one(data_product_id=pid).text
    saved = boris.post(f"/miniapp/products/{pid}", {**values, "price": "199"})
    assert saved.name == "catalog"
    assert "199,00\u00a0₽" in saved.section.one(data_product_id=pid).text


def test_editing_a_product_that_is_not_there_is_not_found(till):
    screen = Phone(till, BORIS).get("/miniapp/products/999999/edit")
    assert (screen.status, screen.name) == (404, "error")
