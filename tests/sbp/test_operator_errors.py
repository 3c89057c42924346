"""Operator mistakes: `flask qr create` checks everything before it writes or calls the bank,
and says what is wrong in one line."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from app.errors import ValidationError
from app.extensions import db
from app.models import CashLinkActivation, Order, OrderChannel, QrCode
from app.money import format_rubles
from app.orders.services import create_amount_order
from app.receipt_lines import MAX_PRICE_KOPECKS
from app.sbp import qrcodes

pytestmark = pytest.mark.slow

MAX_SUM = format_rubles(MAX_PRICE_KOPECKS)  # 42 949 673,00 ₽, ATOL's ceiling


def _rows(stack) -> dict:
    with stack.app.app_context():
        return {model.__name__: db.session.scalar(sa.select(sa.func.count()).select_from(model))
                for model in (Order, QrCode, CashLinkActivation)}


def _nothing_happened(stack) -> None:
    assert _rows(stack) == {"Order": 0, "QrCode": 0, "CashLinkActivation": 0}
    state = stack.bank_state()
    assert (state["qrs"], state["orders"]) == ([], [])


@pytest.mark.parametrize(("args", "complaint"), [
    (["--amount", "100", "--ttl", "0"], "invalid_ttl: Срок действия QR-кода — от 1 до 4320 "
                                        "минут (3 суток), а не 0"),
    (["--amount", "100", "--ttl", "4321"], "invalid_ttl: Срок действия QR-кода"),
    (["--amount", "100", "--ttl", "-5"], "invalid_ttl: Срок действия QR-кода"),
    (["--type", "cash-link", "--amount", "100", "--ttl", "99999"],
     "invalid_ttl: Срок действия QR-кода"),
    (["--amount", "50000000"],
     f"invalid_amount: Сумма — не больше {MAX_SUM}, а не {format_rubles(5_000_000_000)}"),
    (["--type", "static", "--amount", "42949673.01"], f"не больше {MAX_SUM}"),
    (["--type", "cash-link", "--amount", "50000000"], f"не больше {MAX_SUM}"),
    (["--type", "static", "--description", "я" * 141],
     "text_too_long: Описание — не больше 140 символов, а в этом 141"),
    (["--amount", "100", "--description", "я" * 141], "не больше 140 символов"),
    (["--type", "cash-link", "--description", "Касса №2 у входа в торговый зал:" + "я"],
     "text_too_long: Описание — не больше 32 символов, а в этом 33"),
    (["--type", "static", "--ttl", "5"], "--ttl is for a dynamic QR or a cash-link sale"),
    (["--type", "cash-link", "--ttl", "5"], "--ttl is for a dynamic QR or a cash-link sale"),
])
def test_qr_create_refuses_before_it_writes_or_calls_the_bank(stack, args, complaint):
    result = stack.app.test_cli_runner().invoke(args=["qr", "create", *args])

    assert result.exit_code in (1, 2), result.output
    assert isinstance(result.exception, SystemExit), result.exception
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and complaint in errors[0], result.output
    assert "Traceback" not in result.output
    _nothing_happened(stack)


def test_qr_create_takes_each_limit_and_refuses_one_over_it(stack):
    runner = stack.app.test_cli_runner()
    at_limit = (["--amount", "42949673", "--ttl", "4320", "--description", "я" * 140],
                ["--type", "static", "--amount", "1", "--description", "я" * 140],
                ["--type", "cash-link", "--amount", "5", "--ttl", "1",
                 "--description", "я" * 32])
    for args in at_limit:
        result = runner.invoke(args=["qr", "create", *args])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["status"] == "active"
    created = _rows(stack)
    assert created == {"Order": 2, "QrCode": 3, "CashLinkActivation": 1}
    for args in (["--amount", "42949673.01"], ["--amount", "1", "--ttl", "4321"],
                 ["--type", "static", "--description", "я" * 141],
                 ["--type", "cash-link", "--description", "я" * 33]):
        result = runner.invoke(args=["qr", "create", *args])
        assert result.exit_code == 1, result.output
    assert _rows(stack) == created
    assert len(stack.bank_state()["qrs"]) == 3


def test_services_refuse_long_text_and_a_zero_ttl_before_the_bank(stack):
    with stack.app.app_context():
        with pytest.raises(ValidationError, match="не больше 140 символов"):
            qrcodes.create_static_qr(amount_kopecks=100, description="x" * 141)
        with pytest.raises(ValidationError, match="не больше 32 символов"):
            qrcodes.register_cash_link(description="x" * 33)
        order = create_amount_order(channel=OrderChannel.CLI, amount_kopecks=100)
        with pytest.raises(ValidationError, match="а не 0"):
            qrcodes.create_dynamic_qr(order.id, ttl_minutes=0)
        order_id = order.id
    assert _rows(stack) == {"Order": 1, "QrCode": 0, "CashLinkActivation": 0}
    assert stack.bank_state()["qrs"] == []
    with stack.app.app_context():
        link = qrcodes.register_cash_link(description="Касса 1")
        with pytest.raises(ValidationError, match="а не 0"):
            qrcodes.activate_cash_link(link.id, order_id, ttl_minutes=0)
    assert stack.bank_state()["orders"] == []


def test_an_order_above_the_maximum_says_so(app):
    with pytest.raises(ValidationError, match=f"Цена — не больше {MAX_SUM}"):
        create_amount_order(channel=OrderChannel.API, amount_kopecks=MAX_PRICE_KOPECKS + 1)


def test_a_bank_that_does_not_answer_a_setting_names_no_order(app):
    """`flask sbp set-callback` with the bank down: nothing was saved, and it says so."""
    result = app.test_cli_runner().invoke(args=["sbp", "set-callback"])
    assert result.exit_code == 1
    assert "Банк не отвечает, ничего не изменено" in result.output
    assert "Заказ" not in result.output
