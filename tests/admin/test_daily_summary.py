"""The managers' daily summary in Telegram: once a day, at the configured Moscow hour, to
each active manager, through the same `telegram.send` jobs as the other notifications."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app import jobs
from app.config import ConfigError, load_config
from app.extensions import db
from app.formatting import MOSCOW
from app.models import (
    Job,
    JobStatus,
    OrderStatus,
    PaymentStatus,
    Receipt,
    ReceiptKind,
    ReceiptStatus,
)
from app.money import format_rubles
from app.orders.services import shop_day_start
from app.people.services import add_staff, disable_staff
from app.telegram.notify import DAILY_SUMMARY_CHECK, schedule_daily_summary
from tests.admin.shopdata import completed_refund, sale, unpaid_order
from tests.telegram.conftest import (
    BOT_CONFIG,
    CASHIER,
    MANAGER,
    Telegram,
    fakebot,  # noqa: F401 - a fixture
)

OTHER_MANAGER, FORMER_MANAGER = 2002, 2003
HOUR = timedelta(hours=1)


@pytest.fixture
def bot(make_app, fakebot):  # noqa: F811 - the fixture above
    app = make_app(TELEGRAM_API_URL=fakebot.url, DAILY_SUMMARY_HOUR=21, **BOT_CONFIG)
    assert DAILY_SUMMARY_CHECK in jobs.registry(app).periodic_jobs
    jobs.registry(app).periodic_jobs.clear()  # the test says what time it is
    with app.app_context():
        add_staff(CASHIER, name="Ольга")
        add_staff(MANAGER, name="Пётр", cashier=False, manager=True)
        add_staff(OTHER_MANAGER, name="Ирина", cashier=False, manager=True)
        add_staff(FORMER_MANAGER, name="Олег", cashier=False, manager=True)
        disable_staff(FORMER_MANAGER)
        yield Telegram(app, fakebot)


def _summaries(bot, chat_id):
    return [m["text"] for m in bot.messages(chat_id) if m["text"].startswith("Итоги дня")]


def test_sent_once_a_day_at_the_hour_to_each_manager(bot):
    midnight = shop_day_start()
    paid = sale(midnight + HOUR, 1500_00)
    completed_refund(paid, 200_00, midnight + 2 * HOUR)
    sale(midnight + 3 * HOUR, 99_00, status=PaymentStatus.REVIEW)
    unpaid_order(midnight + 4 * HOUR, 10_00, OrderStatus.EXPIRED)
    sale(midnight - HOUR, 7777_00)  # yesterday
    db.session.add(Receipt(kind=ReceiptKind.SELL, status=ReceiptStatus.FAILED,
                           payment_id=paid.id, provider="atol", external_id="sell-t-1",
                           total_kopecks=1500_00, lines=[]))
    db.session.commit()

    assert schedule_daily_summary(midnight + 20 * HOUR + 59 * timedelta(minutes=1)) is None
    bot.run_jobs()
    assert bot.api.sent() == []

    day = schedule_daily_summary(midnight + 21 * HOUR)
    assert day == (midnight + HOUR).astimezone(MOSCOW).date()
    bot.run_jobs()
    (text,) = _summaries(bot, MANAGER)
    assert _summaries(bot, OTHER_MANAGER) == [text]
    assert _summaries(bot, CASHIER) == [] and _summaries(bot, FORMER_MANAGER) == []
    assert day.strftime("%d.%m.%Y") in text
    assert f"Выручка: {format_rubles(1500_00)} (платежей: 1)" in text
    assert f"Возвраты: {format_rubles(200_00)} (1)" in text
    assert "оплачен — 2" in text and "QR истёк — 1" in text
    assert "Чеков не пробито: 1" in text and "Платежей ждут проверки: 1" in text
    assert format_rubles(7777_00) not in text

    # Later the same evening, the check runs again: nothing more.
    schedule_daily_summary(midnight + 22 * HOUR)
    schedule_daily_summary(midnight + 23 * HOUR + 59 * timedelta(minutes=1))
    bot.run_jobs()
    assert len(_summaries(bot, MANAGER)) == 1

    # The next day at the hour: the next summary.
    next_day = midnight + timedelta(days=1)
    assert schedule_daily_summary(next_day + 10 * HOUR) is None
    schedule_daily_summary(next_day + 21 * HOUR + 30 * timedelta(minutes=1))
    bot.run_jobs()
    assert len(_summaries(bot, MANAGER)) == 2
    second = _summaries(bot, MANAGER)[1]
    assert "Выручка: " + format_rubles(0) in second and "Заказов не было." in second
    sends = db.session.query(Job).filter(Job.name == "telegram.send",
                                         Job.status == JobStatus.DONE).count()
    assert sends == 4


def test_off_means_no_summary(make_app):
    app = make_app(TELEGRAM_BOT_TOKEN="123456:TEST-token", DAILY_SUMMARY_HOUR=None)
    assert DAILY_SUMMARY_CHECK not in jobs.registry(app).periodic_jobs
    with app.app_context():
        assert schedule_daily_summary(shop_day_start() + 23 * HOUR) is None


@pytest.mark.parametrize(("value", "hour"), [("21", 21), ("0", 0), ("off", None)])
def test_the_hour_is_read_from_the_environment(monkeypatch, value, hour):
    monkeypatch.setenv("DAILY_SUMMARY_HOUR", value)
    assert load_config("development")["DAILY_SUMMARY_HOUR"] == hour


@pytest.mark.parametrize("value", ["24", "-1", "9pm"])
def test_an_hour_that_is_not_one_is_refused(monkeypatch, value):
    monkeypatch.setenv("DAILY_SUMMARY_HOUR", value)
    with pytest.raises(ConfigError, match="DAILY_SUMMARY_HOUR must be an hour"):
        load_config("development")
