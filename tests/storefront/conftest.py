"""The shop as a customer's phone calls it: requests signed with initData of our test bot, a
published catalog (one product counted in stock, one sold out, one weighed, one not
published), the storefront switched on."""

from __future__ import annotations

import json
import time

import pytest
import sqlalchemy as sa

from app.catalog.services import create_product
from app.extensions import db
from app.models import Category, Product
from app.storefront.settings import update_settings
from app.telegram.initdata import sign_init_data
from tests.miniapp.screen import Screen

TOKEN = "7000000002:AAtest-token-for-the-shop"
OLGA, PETR = 7101, 7102
SHOP_PATH = "/shop"


def init_data(user_id: int, *, token: str = TOKEN, age: int = 0,
              first_name: str = "Ольга") -> str:
    fields = {"auth_date": str(int(time.time()) - age), "query_id": "AAS",
              "user": json.dumps({"id": user_id, "first_name": first_name,
                                  "username": f"u{user_id}"}, ensure_ascii=False)}
    return sign_init_data(fields, bot_token=token)


class Customer:
    """One customer's Mini App: every request carries their signed initData."""

    def __init__(self, app, user_id: int | None, *, platform: str | None = None, **signing):
        self.client = app.test_client()
        self.headers = {"HX-Request": "true"}
        if user_id is not None:
            self.headers["Authorization"] = f"tma {init_data(user_id, **signing)}"
        if platform:
            self.headers["X-Telegram-Platform"] = platform

    def get(self, url: str, **kwargs) -> Screen:
        return Screen(self.client.get(SHOP_PATH + url, headers=self.headers, **kwargs))

    def post(self, url: str, data=None) -> Screen:
        return Screen(self.client.post(SHOP_PATH + url, data=data or {}, headers=self.headers))


def cart_form(*lines, **extra) -> dict:
    """The cart as shop.js posts it: (product_id, qty[, price seen]) lines, plus `extra`."""
    form = {"product_id": [str(line[0]) for line in lines], "qty": [line[1] for line in lines]}
    if any(len(line) > 2 for line in lines):
        form["price"] = [str(line[2]) if len(line) > 2 else "" for line in lines]
    return {**form, **extra}


def seed_shop(app, *, enabled: bool = True) -> dict[str, int]:
    """Tea (counted: 3 left), honey (weighed, not counted), a sold-out mug, a hidden draft;
    pickup and delivery offered. Returns product ids by short name."""
    with app.app_context():
        drinks = Category(name="Чай", position=1)
        goods = Category(name="Посуда", position=2)
        db.session.add_all([drinks, goods])
        db.session.commit()
        made = {
            "tea": create_product(name="Чай улун", price_kopecks=25000),
            "honey": create_product(name="Мёд гречишный", price_kopecks=90000,
                                    measure="kilogram"),
            "mug": create_product(name="Кружка", price_kopecks=50000),
            "draft": create_product(name="Черновик", price_kopecks=10000),
        }
        ids = {name: p.id for name, p in made.items()}
        for name, values in {
            "tea": {"is_published": True, "category_id": drinks.id, "stock_milli": 3000,
                    "description": "Тайваньский улун"},
            "honey": {"is_published": True, "category_id": drinks.id},
            "mug": {"is_published": True, "category_id": goods.id, "stock_milli": 0},
        }.items():
            db.session.execute(sa.update(Product).where(Product.id == ids[name])
                               .values(**values))
        db.session.commit()
        update_settings(storefront_enabled=enabled, pickup_enabled=True,
                        pickup_address="ул. Ленина, 1", delivery_enabled=True,
                        delivery_terms="По городу, 300 ₽ курьеру")
        return ids


@pytest.fixture
def shop(make_app):
    """The storefront on, our bot's token; the bank is unreachable."""
    app = make_app(TELEGRAM_BOT_TOKEN=TOKEN)
    app.products = seed_shop(app)
    return app


@pytest.fixture
def bank_shop(make_stack):
    """Like `shop`, with the sandbox bank and register over real HTTP."""
    stack = make_stack(TELEGRAM_BOT_TOKEN=TOKEN)
    stack.app.products = seed_shop(stack.app)
    return stack
