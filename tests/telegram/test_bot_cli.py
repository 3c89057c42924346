"""`flask bot set-webhook` and `flask bot poll` against the fake Bot API."""

from __future__ import annotations

import json

from tests.telegram.conftest import BOT_CONFIG, PUBLIC_URL, SECRET, STRANGER, TOKEN


def test_set_webhook_points_telegram_at_kassa_with_the_secret_and_the_till_button(
    telegram, fakebot
):
    result = telegram.app.test_cli_runner().invoke(args=["bot", "set-webhook"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"webhook set: {PUBLIC_URL}/telegram/webhook",
        f"menu button set: Касса -> {PUBLIC_URL}/miniapp/",
        "commands set: /start, /help, /today, /orders, /staff",
    ]
    (webhook,) = fakebot.sent("setWebhook")
    assert webhook["url"] == f"{PUBLIC_URL}/telegram/webhook"
    assert webhook["secret_token"] == SECRET
    assert json.loads(webhook["allowed_updates"]) == ["message", "callback_query"]
    (menu,) = fakebot.sent("setChatMenuButton")
    assert json.loads(menu["menu_button"]) == {
        "type": "web_app", "text": "Касса", "web_app": {"url": f"{PUBLIC_URL}/miniapp/"}}
    (commands,) = fakebot.sent("setMyCommands")
    assert [c["command"] for c in json.loads(commands["commands"])] == [
        "start", "help", "today", "orders", "staff"]


def test_set_webhook_refused_by_telegram_is_one_line(telegram, fakebot):
    fakebot.fail("setWebhook", 400, "Bad Request: bad webhook: HTTPS url must be provided")
    result = telegram.app.test_cli_runner().invoke(args=["bot", "set-webhook"])
    assert result.exit_code != 0
    assert result.output.strip().splitlines() == [
        "Error: telegram_refused: Telegram refused setWebhook: 400 Bad Request: bad webhook: "
        "HTTPS url must be provided"]
    assert fakebot.sent("setChatMenuButton") == []


def test_set_webhook_in_production_wants_https(make_app, fakebot, monkeypatch):
    app = make_app(TELEGRAM_API_URL=fakebot.url, **BOT_CONFIG)
    app.config.update(APP_ENV="production", PUBLIC_URL="http://kassa.example")
    result = app.test_cli_runner().invoke(args=["bot", "set-webhook"])
    assert result.exit_code != 0
    assert result.output.strip() == ("Error: bad_public_url: PUBLIC_URL must be https:// for "
                                      "Telegram, not 'http://kassa.example'")
    assert fakebot.calls == []


def test_poll_without_a_token_is_one_line(make_app):
    app = make_app(TELEGRAM_BOT_TOKEN=None)
    result = app.test_cli_runner().invoke(args=["bot", "poll"])
    assert result.exit_code != 0
    assert result.output.strip() == "Error: bot_off: TELEGRAM_BOT_TOKEN is not set: the bot is off"
    assert TOKEN not in result.output


def test_polled_updates_go_through_the_worker_like_the_webhooks(telegram, fakebot):
    update = {"update_id": 900, "message": {
        "message_id": 1, "date": 0, "chat": {"id": STRANGER, "type": "private"},
        "from": {"id": STRANGER, "is_bot": False, "first_name": "Иван"}, "text": "/start"}}
    fakebot.updates = [update]
    result = telegram.app.test_cli_runner().invoke(args=["bot", "poll", "--once"])
    assert result.exit_code == 0, result.output
    assert "flask worker" in result.output and "1 update(s) queued" in result.output
    assert telegram.post(update).status_code == 200  # the same update by the webhook too
    telegram.run_jobs()
    (reply,) = telegram.messages(STRANGER)
    assert f"Ваш Telegram ID: {STRANGER}" in reply["text"]
