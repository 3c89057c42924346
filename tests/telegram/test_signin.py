"""The Mini App's caller is an active cashier whose initData our bot signed; anyone else is
refused with a code and a Russian message, their Telegram ID shown where Telegram vouched
for it."""

from __future__ import annotations

import json
import re
import time

import pytest

from app.people.services import add_staff, disable_staff
from app.telegram.initdata import sign_init_data
from app.telegram.signin import SignInRefused, cashier_from_header

TOKEN = "7000000001:AAtest-token-for-kassa"


def _header(user_id: int, *, token: str = TOKEN, age: int = 0, scheme: str = "tma") -> str:
    fields = {"auth_date": str(int(time.time()) - age), "query_id": "AAH",
              "user": json.dumps({"id": user_id, "first_name": "Анна"}, ensure_ascii=False)}
    return f"{scheme} {sign_init_data(fields, bot_token=token)}"


@pytest.fixture
def till(app):
    app.config["TELEGRAM_BOT_TOKEN"] = TOKEN
    add_staff(1001, name="Анна")
    return app


def test_an_active_cashier_signed_by_our_bot_is_let_in(till):
    assert cashier_from_header(_header(1001)).telegram_id == 1001


@pytest.mark.parametrize(("header", "code"), [
    (None, "missing"),
    ("Bearer abc", "missing"),
    ("tma ", "missing"),
    (_header(1001, token="7000000002:AAother-bot"), "bad_hash"),
    (_header(1001, age=2 * 24 * 3600), "expired"),
])
def test_data_our_bot_did_not_sign_or_too_old_is_refused(till, header, code):
    with pytest.raises(SignInRefused) as refused:
        cashier_from_header(header)
    assert refused.value.code == code
    assert refused.value.telegram_id is None
    assert re.search("[а-я]", refused.value.message)


def test_a_stranger_and_a_disabled_cashier_see_their_id_and_whom_to_ask(till):
    disable_staff(1001)
    for user_id in (1001, 2002):
        with pytest.raises(SignInRefused) as refused:
            cashier_from_header(_header(user_id))
        assert (refused.value.code, refused.value.telegram_id) == ("not_cashier", user_id)
        assert str(user_id) in refused.value.message
        assert "менеджер" in refused.value.message


def test_without_a_bot_token_nobody_signs_in(app):
    app.config["TELEGRAM_BOT_TOKEN"] = None
    with pytest.raises(SignInRefused) as refused:
        cashier_from_header(_header(1001))
    assert refused.value.code == "bot_off"


def test_the_maximum_age_is_a_setting(till):
    till.config["TELEGRAM_INIT_DATA_MAX_AGE"] = 60
    with pytest.raises(SignInRefused) as refused:
        cashier_from_header(_header(1001, age=120))
    assert refused.value.code == "expired"
    assert cashier_from_header(_header(1001, age=30)).telegram_id == 1001
