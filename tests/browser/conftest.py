"""The Mini App in headless chromium against Kassa, the sandbox bank and register over real
HTTP, with a worker (receipts) and a fake Bot API (the bot's notifications stay on
loopback). One browser per module; a fresh context (storage, injected Telegram proxy) per
test."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from playwright.sync_api import sync_playwright

from app.catalog.services import create_product
from app.people.services import add_staff
from tests.browser.client import (
    BOT_TOKEN,
    CASHIER_TELEGRAM_ID,
    Client,
    launch,
    new_context,
    take_csp_violations,
)
from tests.conftest import Stack
from tests.telegram.fakebot import FakeBotApi

TEA_PRICE = 25000        # 250,00 ₽ a piece
CHEESE_PRICE = 89000     # 890,00 ₽ a kilogram


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


@pytest.fixture(autouse=True)
def no_csp_violations():
    """Every browser test fails if a page it opened broke the Content-Security-Policy
    (an inline style or handler, an injected <style>, eval): contexts made by
    `new_context` or passed to `watch_csp` report them."""
    take_csp_violations()
    yield
    assert take_csp_violations() == []


@pytest.fixture(scope="module")
def fakebot():
    api = FakeBotApi().start()
    yield api
    api.stop()


@dataclass
class Shop:
    stack: Stack
    bot: FakeBotApi
    tea_id: int
    cheese_id: int
    cashier_id: int

    @property
    def url(self) -> str:
        return self.stack.web.url


@pytest.fixture
def shop(make_stack, fakebot) -> Shop:
    """Kassa with a bot token, two products (one weighed) and an active cashier; a worker
    makes the receipts."""
    stack = make_stack(TELEGRAM_BOT_TOKEN=BOT_TOKEN, TELEGRAM_API_URL=fakebot.url)
    with stack.app.app_context():
        tea = create_product(name="Чай улун", price_kopecks=TEA_PRICE)
        cheese = create_product(name="Сыр гауда", price_kopecks=CHEESE_PRICE,
                                measure="kilogram")
        cashier = add_staff(CASHIER_TELEGRAM_ID, name="Анна Кассирова")
        built = Shop(stack=stack, bot=fakebot, tea_id=tea.id, cheese_id=cheese.id,
                     cashier_id=cashier.id)
    stack.start_worker()
    return built


@pytest.fixture
def open_client(browser):
    """open_client(url, theme=...) -> a Client on a new page of its own context."""
    contexts = []

    def opener(url: str, theme: str = "light", *, telegram: bool = True) -> Client:
        context = new_context(browser, theme, telegram=telegram)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(5000)
        page.goto(url)
        return Client(page, theme)

    yield opener
    for context in contexts:
        context.close()
