"""The dashboard: the shop's figures for today, 7 and 30 Moscow days, the revenue chart,
and what needs a person, with links to the payments' pages."""

from __future__ import annotations

from datetime import timedelta

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
    utcnow,
)
from app.money import format_rubles
from app.orders.services import shop_day_start
from tests.admin.page import page
from tests.admin.shopdata import completed_refund, sale, unpaid_order

MINUTE, SECOND = timedelta(minutes=1), timedelta(seconds=1)


def _periods(root):
    cards = root.all("article", class_="card period")
    return {int(card.attrs["data-period"]): card for card in cards}


def _revenue(card) -> str:
    return card.one(data_figure="revenue").text


def test_figures_for_today_7_and_30_moscow_days(app, admin_client):
    today = shop_day_start()  # Moscow midnight, 21:00 UTC the day before
    # Just after Moscow midnight: still "yesterday" in UTC, but today for the shop.
    early = sale(today + MINUTE, 100_00)
    completed_refund(early, 30_00, today + 2 * MINUTE)
    sale(today + 3 * MINUTE, 50_00, status=PaymentStatus.REVIEW)   # not the shop's money yet
    unpaid_order(today + 4 * MINUTE, 70_00, OrderStatus.EXPIRED)
    sale(today - SECOND, 200_00)                          # yesterday, 23:59:59 Moscow
    sale(today - timedelta(days=6), 400_00)               # the first of the 7 days
    sale(today - timedelta(days=6) - SECOND, 800_00)      # just before them
    sale(today - timedelta(days=29), 1600_00)             # the first of the 30 days
    sale(today - timedelta(days=29) - SECOND, 3200_00)    # outside everything

    cards = _periods(page(admin_client.get("/admin/")))
    day, week, month = cards[0], cards[1], cards[2]
    assert _revenue(day) == format_rubles(100_00)
    assert _revenue(week) == format_rubles(700_00)
    assert _revenue(month) == format_rubles(3100_00)
    assert "Платежей: 1" in day.text and "возвраты: " + format_rubles(30_00) in day.text
    assert "итого: " + format_rubles(70_00) in day.text
    # Counts by status: orders and payments of the period.
    assert day.one(data_order_status="paid").text == "2"   # the review payment's order too
    assert day.one(data_order_status="expired").text == "1"
    assert day.one(data_payment_status="partially_refunded").text == "1"
    assert day.one(data_payment_status="review").text == "1"
    assert week.one(data_order_status="paid").text == "4"
    assert month.one(data_order_status="paid").text == "6"


def test_the_chart_has_one_bar_per_day_with_its_revenue(app, admin_client):
    today = shop_day_start()
    sale(today + MINUTE, 120_00)
    sale(today + 2 * MINUTE, 30_00)
    sale(today - timedelta(days=29) + MINUTE, 75_00)
    sale(today - timedelta(days=30) + MINUTE, 999_00)  # the 31st day back: not on the chart

    bars = page(admin_client.get("/admin/")).one("svg", id="revenue-chart").all("rect")
    assert len(bars) == 30
    days = [bar.attrs["data-day"] for bar in bars]
    assert days == sorted(days) and len(set(days)) == 30
    assert days[-1] == (today + MINUTE).astimezone(MOSCOW).date().isoformat()
    assert [int(bar.attrs["data-kopecks"]) for bar in bars] == [75_00] + [0] * 28 + [150_00]
    # The best day is the full height; a day without sales a thin line.
    assert float(bars[-1].attrs["height"]) == 160.0
    assert float(bars[1].attrs["height"]) == 1.0
    assert format_rubles(150_00) in bars[-1].text


def test_an_empty_shop_says_so(admin_client):
    root = page(admin_client.get("/admin/"))
    assert "За эти дни продаж не было." in root.text
    assert "Всё в порядке" in root.text
    assert all(_revenue(card) == format_rubles(0) for card in _periods(root).values())


def test_what_needs_a_person_links_to_the_payments(app, admin_client):
    review = sale(utcnow(), 55_00, status=PaymentStatus.REVIEW)
    review.review_reason = "сумма не совпала"
    paid = sale(utcnow(), 80_00)
    db.session.add(Receipt(kind=ReceiptKind.SELL, status=ReceiptStatus.FAILED,
                           payment_id=paid.id, provider="atol", external_id="sell-x-1",
                           total_kopecks=80_00, lines=[], error="34 state check not found"))
    db.session.add(Job(name="sbp.refund", payload={"payment_id": paid.id},
                       status=JobStatus.DEAD, attempts=12, last_error="bank said no",
                       finished_at=utcnow()))
    db.session.commit()

    root = page(admin_client.get("/admin/"))
    review_row = root.one("table", id="review-payments").one("tbody")
    assert "сумма не совпала" in review_row.text
    assert review_row.one("a").attrs["href"] == f"/admin/payments/{review.id}"
    receipts = root.one("table", id="failed-receipts")
    assert "34 state check not found" in receipts.text
    assert receipts.one("a").attrs["href"] == f"/admin/payments/{paid.id}"
    jobs = root.one("table", id="dead-jobs")
    assert "sbp.refund" in jobs.text and "bank said no" in jobs.text
    assert jobs.one("a").attrs["href"] == f"/admin/payments/{paid.id}"
    assert "Всё в порядке" not in root.text


def test_a_viewer_sees_the_dashboard(viewer_client):
    assert viewer_client.get("/admin/").status_code == 200
