"""The fake Bot API speaks enough of Telegram's protocol for pyTelegramBotAPI: a message sent
through the library is recorded as Telegram would receive it, and a 429 reaches the caller
with Telegram's own `retry_after`."""

from __future__ import annotations

import pytest
from telebot import TeleBot, apihelper
from telebot.apihelper import ApiTelegramException

from tests.telegram.fakebot import FakeBotApi

TOKEN = "123456:TEST-token"


@pytest.fixture
def fake(monkeypatch):
    api = FakeBotApi().start()
    monkeypatch.setattr(apihelper, "API_URL", api.url + "/bot{0}/{1}")
    yield api
    api.stop()


def test_a_message_sent_through_the_library_is_recorded(fake):
    bot = TeleBot(TOKEN, threaded=False)
    message = bot.send_message(42, "Оплачено: 125,50 ₽")
    assert message.message_id == 1
    assert fake.sent() == [{"chat_id": "42", "text": "Оплачено: 125,50 ₽"}]
    assert fake.calls[0].token == TOKEN


def test_a_429_carries_telegrams_retry_after_then_the_call_goes_through(fake):
    bot = TeleBot(TOKEN, threaded=False)
    fake.refuse("sendMessage", 3)
    with pytest.raises(ApiTelegramException) as refused:
        bot.send_message(42, "Чек не пробит")
    assert refused.value.error_code == 429
    assert refused.value.result_json["parameters"]["retry_after"] == 3
    assert fake.sent() == []
    bot.send_message(42, "Чек не пробит")
    assert [call["text"] for call in fake.sent()] == ["Чек не пробит"]
