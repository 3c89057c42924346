"""The Mini App as a cashier's phone calls it: requests signed with initData of our test bot."""

from __future__ import annotations

import json
import time

import pytest

from app.catalog.services import create_product
from app.people.services import add_staff
from app.telegram.initdata import sign_init_data
from tests.miniapp.screen import Screen

TOKEN = "7000000001:AAtest-token-for-kassa"
ANNA, BORIS, STRANGER = 1001, 1002, 5550001


def init_data(user_id: int, *, token: str = TOKEN, age: int = 0) -> str:
    fields = {"auth_date": str(int(time.time()) - age), "query_id": "AAH",
              "user": json.dumps({"id": user_id, "first_name": "Анна"}, ensure_ascii=False)}
    return sign_init_data(fields, bot_token=token)


class Phone:
    """One cashier's Mini App: every request carries their signed initData."""

    def __init__(self, app, user_id: int | None, **signing):
        self.client = app.test_client()
        self.headers = {"HX-Request": "true"}
        if user_id is not None:
            self.headers["Authorization"] = f"tma {init_data(user_id, **signing)}"

    def get(self, url: str, **kwargs) -> Screen:
        return Screen(self.client.get(url, headers=self.headers, **kwargs))

    def post(self, url: str, data=None) -> Screen:
        return Screen(self.client.post(url, data=data or {}, headers=self.headers))


def seed_till(app) -> dict[str, int]:
    """Anna sells; Boris sells and may edit the catalog. Returns product ids by short name."""
    with app.app_context():
        add_staff(ANNA, name="Анна")
        add_staff(BORIS, name="Борис", can_edit_catalog=True)
        products = {
            "cappuccino": create_product(name="Капучино 300 мл", price_kopecks=22000),
            "croissant": create_product(name="Круассан с миндалём", price_kopecks=18500),
            "beans": create_product(name="Кофе в зёрнах, Эфиопия", price_kopecks=320000,
                                    measure="kilogram"),
            "honey": create_product(name="Мёд липовый", price_kopecks=90000, measure="kilogram"),
        }
        return {name: product.id for name, product in products.items()}


@pytest.fixture
def till(make_app):
    """A testing app with our bot's token, two cashiers and a small catalog. The bank is
    unreachable (nothing listens at its URL)."""
    app = make_app(TELEGRAM_BOT_TOKEN=TOKEN)
    app.products = seed_till(app)
    return app


@pytest.fixture
def bank_till(make_stack):
    """Like `till`, with the sandbox bank and register over real HTTP."""
    stack = make_stack(TELEGRAM_BOT_TOKEN=TOKEN)
    stack.app.products = seed_till(stack.app)
    return stack


def cart_form(*lines: tuple[int, str], **extra) -> dict:
    """The form the cart posts: product ids and quantities (as typed), plus `extra`."""
    return {"product_id": [str(pid) for pid, _ in lines], "qty": [q for _, q in lines],
            **extra}
