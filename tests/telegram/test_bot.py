"""The bot as a Telegram user meets it: updates posted to the webhook, run by a real worker,
answers read from the fake Bot API."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from app.extensions import db
from app.models import AccessRequest, AccessStatus, Job, Order, OrderChannel, OrderStatus, utcnow
from app.orders.services import Line, create_order
from app.people.services import active_cashier
from tests.telegram.conftest import CASHIER, MANAGER, PUBLIC_URL, STRANGER, markup


def _jobs(name: str) -> int:
    try:
        return db.session.scalar(sa.select(sa.func.count()).select_from(Job)
                                 .where(Job.name == name))
    finally:
        db.session.rollback()


# -- the webhook ---------------------------------------------------------------------------

def test_a_missing_or_wrong_secret_is_refused_and_nothing_is_stored(telegram):
    update = {"update_id": 5, "message": {"message_id": 1, "date": 0, "text": "/start",
                                          "chat": {"id": 1, "type": "private"}}}
    assert telegram.post(update, secret=None).status_code == 403
    assert telegram.post(update, secret="not-the-secret").status_code == 403
    assert _jobs("telegram.update") == 0


def test_a_body_that_is_not_an_update_is_refused(telegram):
    client = telegram.app.test_client()
    headers = {"X-Telegram-Bot-Api-Secret-Token": "test-webhook-secret"}
    assert client.post("/telegram/webhook", data=b"{not json", headers=headers,
                       content_type="application/json").status_code == 400
    assert client.post("/telegram/webhook", json={"no": "update_id"},
                       headers=headers).status_code == 400
    big = b'{"update_id": 1, "x": "' + b"a" * 300_000 + b'"}'
    assert client.post("/telegram/webhook", data=big, headers=headers,
                       content_type="application/json").status_code == 413
    assert _jobs("telegram.update") == 0


def test_telegram_sending_an_update_again_gets_one_answer(telegram):
    update = telegram.text(STRANGER, "/start")
    telegram.run_jobs()
    assert telegram.post(update).status_code == 200  # Telegram did not see our 200
    telegram.run_jobs()
    assert len(telegram.messages(STRANGER)) == 1
    assert _jobs("telegram.update") == 1


# -- /start, /help, unknown text -----------------------------------------------------------

def test_start_gives_a_cashier_the_button_that_opens_the_till(telegram):
    telegram.text(CASHIER, "/start")
    telegram.run_jobs()
    (reply,) = telegram.messages(CASHIER)
    assert "Ольга" in reply["text"]
    (button,) = markup(reply)[0]
    assert button["text"] == "Открыть кассу"
    assert button["web_app"]["url"] == f"{PUBLIC_URL}/miniapp/"


def test_start_shows_a_stranger_their_id_and_a_button_to_ask(telegram):
    telegram.text(STRANGER, "/start")
    telegram.text(MANAGER, "/start")
    telegram.run_jobs()
    (reply,) = telegram.messages(STRANGER)
    assert f"Ваш Telegram ID: {STRANGER}" in reply["text"]
    assert markup(reply) == [[{"text": "Запросить доступ", "callback_data": "access:ask"}]]
    (to_manager,) = telegram.messages(MANAGER)
    assert "менеджер" in to_manager["text"] and not markup(to_manager)


def test_help_lists_the_commands_and_other_text_points_to_start(telegram):
    telegram.text(STRANGER, "/help")
    telegram.text(STRANGER, "привет")
    telegram.run_jobs()
    help_reply, hint = telegram.messages(STRANGER)
    for command in ("/start", "/today", "/help"):
        assert command in help_reply["text"]
    assert "/start" in hint["text"]


# -- access requests -----------------------------------------------------------------------

def _ask_access(telegram) -> tuple[int, list[list[dict]]]:
    """The stranger presses "Запросить доступ"; returns the request id and the buttons the
    manager got."""
    query = telegram.press(STRANGER, "access:ask", first_name="Иван")
    telegram.run_jobs()
    assert telegram.answer(query)["text"].startswith("Запрос отправлен")
    (to_manager,) = telegram.messages(MANAGER)
    assert "Иван" in to_manager["text"] and str(STRANGER) in to_manager["text"]
    request_id = db.session.scalar(sa.select(AccessRequest.id))
    db.session.rollback()
    return request_id, markup(to_manager)


def test_a_manager_approves_a_request_and_the_stranger_becomes_a_cashier(telegram):
    request_id, buttons = _ask_access(telegram)
    assert buttons == [[
        {"text": "Разрешить", "callback_data": f"access:approve:{request_id}"},
        {"text": "Отказать", "callback_data": f"access:refuse:{request_id}"},
    ]]
    query = telegram.press(MANAGER, f"access:approve:{request_id}", message_id=41)
    telegram.run_jobs()

    assert active_cashier(STRANGER) is not None
    db.session.rollback()
    assert telegram.answer(query)["text"] == "Готово"
    (edited,) = telegram.api.sent("editMessageText")[-1:]
    assert edited["message_id"] == "41" and "разрешён" in edited["text"]
    assert "Пётр" in edited["text"]
    told = telegram.messages(STRANGER)[-1]
    assert "разрешён" in told["text"]
    assert markup(told)[0][0]["web_app"]["url"] == f"{PUBLIC_URL}/miniapp/"

    # The same button pressed again (or by another manager): told, nothing sent twice.
    again = telegram.press(MANAGER, f"access:approve:{request_id}", message_id=41)
    late = telegram.press(MANAGER, f"access:refuse:{request_id}", message_id=42)
    telegram.run_jobs()
    assert telegram.answer(again)["text"] == "По этому запросу уже решено."
    assert telegram.answer(late)["text"] == "По этому запросу уже решено."
    assert len([m for m in telegram.messages(STRANGER) if "разрешён" in m["text"]]) == 1
    assert db.session.get(AccessRequest, request_id).status == AccessStatus.APPROVED


def test_a_manager_refuses_a_request(telegram):
    request_id, _ = _ask_access(telegram)
    telegram.press(MANAGER, f"access:refuse:{request_id}")
    telegram.run_jobs()
    assert telegram.messages(STRANGER)[-1]["text"] == "Менеджер отказал в доступе к кассе."
    assert "отказано" in telegram.api.sent("editMessageText")[-1]["text"]
    assert active_cashier(STRANGER) is None
    db.session.rollback()


def test_only_a_manager_may_decide(telegram):
    request_id, _ = _ask_access(telegram)
    query = telegram.press(CASHIER, f"access:approve:{request_id}")
    telegram.run_jobs()
    answer = telegram.answer(query)
    assert answer["text"] == "Решать о доступе может только менеджер."
    assert db.session.get(AccessRequest, request_id).status == AccessStatus.PENDING
    db.session.rollback()
    assert active_cashier(STRANGER) is None
    assert telegram.messages(STRANGER) == []


# -- /today --------------------------------------------------------------------------------

def test_today_lists_the_cashiers_orders_of_the_day(telegram):
    cashier_id = active_cashier(CASHIER).id
    orders = [create_order(channel=OrderChannel.MINIAPP, cashier_id=cashier_id,
                           lines=[Line(name="Кофе", price_kopecks=price)])
              for price in (15000, 25050, 9900)]
    yesterday = create_order(channel=OrderChannel.MINIAPP, cashier_id=cashier_id,
                             lines=[Line(name="Чай", price_kopecks=7700)])
    db.session.execute(sa.update(Order).where(Order.id.in_([orders[0].id, orders[1].id]))
                       .values(status=OrderStatus.PAID, paid_at=utcnow()))
    db.session.execute(sa.update(Order).where(Order.id == yesterday.id)
                       .values(created_at=utcnow() - timedelta(days=1, hours=1)))
    db.session.commit()

    telegram.text(CASHIER, "/today")
    telegram.text(STRANGER, "/today")
    telegram.run_jobs()
    (report,) = telegram.messages(CASHIER)
    text = report["text"]
    assert "Заказов сегодня: 3. Оплачено: 2 на 400,50\u00a0₽." in text
    assert f"№{orders[1].id}  250,50\u00a0₽  оплачен" in text
    assert f"№{orders[2].id}  99,00\u00a0₽  новый" in text
    assert f"№{yesterday.id} " not in text
    (refusal,) = telegram.messages(STRANGER)
    assert str(STRANGER) in refusal["text"] and "не подключён" in refusal["text"]


def test_an_update_run_again_after_a_failure_answers_once(telegram):
    """A handler that is run again (its job failed after the reply went out, or the worker
    died) answers through a keyed send job: the cashier gets one reply, not two."""
    from app.telegram.bot import process_update

    update = telegram.text(CASHIER, "/help")
    telegram.run_jobs()
    with telegram.app.app_context():
        process_update({"update": update})  # the same update handled a second time
    telegram.run_jobs()
    assert len(telegram.messages(CASHIER)) == 1
