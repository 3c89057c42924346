"""Dashboard of the admin panel: the shop at a glance. Revenue and counts for today, 7 and
30 days, a daily revenue chart drawn here as SVG, what needs a person, and the health of
the bank, the register and the bot."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from flask import current_app, render_template, url_for
from flask_babel import lazy_gettext as _l

from app import reports
from app.admin.auth import viewer_required
from app.admin.blueprint import bp
from app.extensions import read_only
from app.money import format_rubles
from app.provider_health import health_table
from app.telegram.messages import ORDER_STATUSES, PAYMENT_STATUSES

PERIODS = ((1, _l("Сегодня")), (7, _l("7 дней")), (30, _l("30 дней")))
CHART_DAYS = 30
# The chart's drawing area in SVG units; the SVG scales to the page's width.
CHART_WIDTH, CHART_HEIGHT, CHART_GAP = 600, 160, 2


@dataclass(frozen=True)
class Bar:
    day: date
    kopecks: int
    x: float
    y: float
    width: float
    height: float
    label: str   # the day under the bar, on some bars only
    title: str   # the tooltip: day and sum


def chart_bars(days: list[tuple[date, int]]) -> list[Bar]:
    """One bar per day, scaled to the best day; a day without sales is a 1-unit line."""
    top = max((kopecks for _, kopecks in days), default=0) or 1
    step = CHART_WIDTH / max(len(days), 1)
    bars = []
    for index, (day, kopecks) in enumerate(days):
        height = max(CHART_HEIGHT * kopecks / top, 1.0)
        label = day.strftime("%d.%m") if index % 5 == 0 or index == len(days) - 1 else ""
        bars.append(Bar(day, kopecks, round(index * step + CHART_GAP / 2, 2),
                        round(CHART_HEIGHT - height, 2), round(step - CHART_GAP, 2),
                        round(height, 2), label,
                        f"{day.strftime('%d.%m.%Y')}: {format_rubles(kopecks)}"))
    return bars


def payment_url(payment_id: int) -> str:
    """The payment's page in the monitor (by URL while that page is not registered)."""
    if "admin.payment" in current_app.view_functions:
        return url_for("admin.payment", payment_id=payment_id)
    return f"{url_for('admin.index')}payments/{payment_id}"


@bp.get("/")
@viewer_required
@read_only
def index():
    periods = [(label, reports.figures(*reports.last_days(days))) for days, label in PERIODS]
    return render_template(
        "admin/dashboard.html", periods=periods,
        bars=chart_bars(reports.daily_revenue(CHART_DAYS)), chart_days=CHART_DAYS,
        chart_width=CHART_WIDTH, chart_height=CHART_HEIGHT,
        attention=reports.attention(), health=health_table(),
        payment_url=payment_url, job_payment_id=reports.job_payment_id,
        order_statuses=ORDER_STATUSES, payment_statuses=PAYMENT_STATUSES)
