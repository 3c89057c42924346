"""The bot under test: Kassa pointed at FakeBotApi on loopback, updates posted to the real
webhook route, a real worker running them."""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field

import pytest

from app import jobs
from app.jobs.worker import Worker
from app.people.services import add_staff
from tests.telegram.fakebot import FakeBotApi

TOKEN = "123456:TEST-token"
SECRET = "test-webhook-secret"
PUBLIC_URL = "https://kassa.example"
CASHIER = 1001
MANAGER = 2001
STRANGER = 3001
BOT_CONFIG = {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_WEBHOOK_SECRET": SECRET,
              "JOB_BACKOFF_SECONDS": 0.2}


@pytest.fixture
def fakebot():
    api = FakeBotApi().start()
    yield api
    api.stop()


def markup(params: dict) -> list[list[dict]]:
    """The inline keyboard of a call as Telegram received it (rows of buttons)."""
    raw = params.get("reply_markup")
    return json.loads(raw)["inline_keyboard"] if raw else []


@dataclass
class Telegram:
    """Plays Telegram's side: posts updates to the webhook, runs the worker, reads what the
    bot sent back through the fake Bot API."""

    app: object
    api: FakeBotApi
    update_ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def post(self, update: dict, *, secret: str | None = SECRET):
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
        return self.app.test_client().post("/telegram/webhook", json=update, headers=headers)

    def _user(self, user_id: int, first_name: str) -> dict:
        return {"id": user_id, "is_bot": False, "first_name": first_name,
                "username": f"user{user_id}"}

    def text(self, user_id: int, text: str, *, first_name: str = "Анна",
             update_id: int | None = None) -> dict:
        update = {"update_id": update_id or next(self.update_ids), "message": {
            "message_id": next(self.update_ids), "date": int(time.time()),
            "chat": {"id": user_id, "type": "private"},
            "from": self._user(user_id, first_name), "text": text}}
        assert self.post(update).status_code == 200
        return update

    def press(self, user_id: int, data: str, *, message_id: int = 77,
              first_name: str = "Анна") -> str:
        query_id = f"cq{next(self.update_ids)}"
        update = {"update_id": next(self.update_ids), "callback_query": {
            "id": query_id, "from": self._user(user_id, first_name), "chat_instance": "1",
            "data": data, "message": {"message_id": message_id, "date": int(time.time()),
                                      "chat": {"id": user_id, "type": "private"},
                                      "text": "…"}}}
        assert self.post(update).status_code == 200
        return query_id

    def run_jobs(self) -> None:
        """A real worker, until no job is due."""
        Worker(self.app, worker_id="test-worker").run(burst=True)

    def messages(self, chat_id: int) -> list[dict]:
        return [call for call in self.api.sent() if int(call["chat_id"]) == chat_id]

    def answer(self, query_id: str) -> dict:
        (answer,) = [call for call in self.api.sent("answerCallbackQuery")
                     if call["callback_query_id"] == query_id]
        return answer


@pytest.fixture
def telegram(make_app, fakebot):
    """Kassa with the bot on (no periodic jobs: nothing here talks to a bank), a cashier
    and a manager; in an app context."""
    app = make_app(TELEGRAM_API_URL=fakebot.url, PUBLIC_URL=PUBLIC_URL, **BOT_CONFIG)
    jobs.registry(app).periodic_jobs.clear()
    with app.app_context():
        add_staff(CASHIER, name="Ольга")
        add_staff(MANAGER, name="Пётр", cashier=False, manager=True)
        yield Telegram(app, fakebot)
