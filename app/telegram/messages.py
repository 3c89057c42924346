"""Every text and inline keyboard the bot sends, in one place (Russian, through Flask-Babel).

Functions here take plain values or model rows and return a `Reply`: the text and, when
there is one, the inline keyboard as Telegram's JSON (what a `telegram.send` job stores).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from telebot.types import InlineKeyboardButton, InlineKeyboardMarkup, WebAppInfo

from app.formatting import format_moscow, format_quantity
from app.models import (
    AccessRequest,
    AccessStatus,
    Order,
    OrderStatus,
    Payment,
    PaymentStatus,
    Receipt,
    ReceiptKind,
    Refund,
)
from app.money import format_rubles
from app.reports import Figures

# Callback data of the inline buttons (at most 64 bytes, Telegram's limit).
ASK_ACCESS = "access:ask"
APPROVE = "access:approve"
REFUSE = "access:refuse"

# One /today message stays well under Telegram's 4096 characters.
TODAY_MAX_LINES = 40

ORDER_STATUSES = {
    OrderStatus.NEW: _l("новый"),
    OrderStatus.PENDING: _l("ждёт оплаты"),
    OrderStatus.PAID: _l("оплачен"),
    OrderStatus.PARTIALLY_REFUNDED: _l("частичный возврат"),
    OrderStatus.REFUNDED: _l("возвращён"),
    OrderStatus.EXPIRED: _l("QR истёк"),
    OrderStatus.CANCELLED: _l("отменён"),
}
PAID_STATUSES = (OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED)
PAYMENT_STATUSES = {
    PaymentStatus.PAID: _l("оплачен"),
    PaymentStatus.PARTIALLY_REFUNDED: _l("частичный возврат"),
    PaymentStatus.REFUNDED: _l("возвращён"),
    PaymentStatus.REVIEW: _l("на проверке"),
}


@dataclass(frozen=True)
class Reply:
    text: str
    markup: InlineKeyboardMarkup | None = None

    @property
    def markup_json(self) -> str | None:
        return self.markup.to_json() if self.markup is not None else None


def miniapp_url() -> str:
    return f"{current_app.config['PUBLIC_URL']}/miniapp/"


def shop_url() -> str:
    return f"{current_app.config['PUBLIC_URL']}/shop/"


def keyboard(*buttons: InlineKeyboardButton) -> InlineKeyboardMarkup:
    markup = InlineKeyboardMarkup()
    markup.row(*buttons)
    return markup


def open_till_keyboard() -> InlineKeyboardMarkup:
    return keyboard(InlineKeyboardButton(_("Открыть кассу"),
                                          web_app=WebAppInfo(miniapp_url())))


def person(name: str | None, username: str | None, telegram_id: int) -> str:
    """How a Telegram user is named in a message: "Анна (@anna, ID 42)"."""
    extra = ", ".join(part for part in (f"@{username}" if username else None,
                                        f"ID {telegram_id}") if part)
    return f"{name} ({extra})" if name else extra


# -- commands ------------------------------------------------------------------------------

def start_cashier(name: str | None) -> Reply:
    greeting = _("Здравствуйте, %(name)s!", name=name) if name else _("Здравствуйте!")
    return Reply(greeting + "\n" + _("Касса открывается кнопкой ниже или кнопкой «Касса» "
                                     "рядом с полем ввода."), open_till_keyboard())


def start_manager() -> Reply:
    return Reply(_("Вы менеджер: сюда придут запросы доступа, возвраты, платежи на проверке "
                   "и чеки, которые не удалось пробить."))


def start_stranger(telegram_id: int) -> Reply:
    return Reply(_("Ваш Telegram ID: %(id)s", id=telegram_id) + "\n"
                 + _("Чтобы работать на кассе, попросите доступ у менеджера."),
                 keyboard(InlineKeyboardButton(_("Запросить доступ"),
                                                callback_data=ASK_ACCESS)))


def admin_linked(email: str) -> str:
    return _("Telegram привязан к панели администратора (%(email)s). Вы менеджер: сюда придут "
             "запросы доступа, возвраты, платежи на проверке и чеки, которые не удалось "
             "пробить.", email=email)


def admin_link_refused() -> str:
    return _("Ссылка недействительна или устарела. Получите новую в панели администратора.")


def not_a_cashier(telegram_id: int) -> str:
    return _("Ваш Telegram ID %(id)s не подключён к кассе. Нажмите /staff, чтобы "
             "запросить доступ.", id=telegram_id)


def help_text() -> str:
    return "\n".join([
        _("Я бот кассы: кассир продаёт через мини-приложение «Касса», покупатель платит "
          "по QR-коду СБП, чек 54-ФЗ пробивается сам."),
        _("Кассиру приходят сообщения об оплате и об истёкших QR-кодах, менеджеру — "
          "запросы доступа, возвраты и ошибки."),
        "",
        _("/start — открыть кассу (или магазин, если он открыт)"),
        _("/staff — запросить доступ к кассе"),
        _("/today — мои заказы за сегодня"),
        _("/orders — мои покупки в магазине"),
        _("/help — эта справка"),
    ])


def unknown_text() -> str:
    return _("Не понял. Нажмите /start, чтобы открыть кассу или магазин, или /help для "
             "справки.")


def today(orders: list[Order]) -> str:
    if not orders:
        return _("Сегодня заказов нет.")
    paid = [order for order in orders if order.status in PAID_STATUSES]
    lines = [_("Заказов сегодня: %(count)s. Оплачено: %(paid)s на %(sum)s.",
               count=len(orders), paid=len(paid),
               sum=format_rubles(sum(order.total_kopecks for order in paid))), ""]
    for order in orders[:TODAY_MAX_LINES]:
        time = format_moscow(order.created_at)[-5:]
        lines.append(f"{time}  №{order.id}  {format_rubles(order.total_kopecks)}  "
                     f"{ORDER_STATUSES.get(order.status, order.status.value)}")
    if len(orders) > TODAY_MAX_LINES:
        lines.append(_("… и ещё %(count)s", count=len(orders) - TODAY_MAX_LINES))
    return "\n".join(lines)


# -- access requests -----------------------------------------------------------------------

def access_asked() -> str:
    return _("Запрос отправлен. Когда менеджер ответит, я напишу.")


def access_already_staff() -> str:
    return _("У вас уже есть доступ. Нажмите /start.")


def access_request(access: AccessRequest) -> Reply:
    """To each manager: who asks, with the two buttons."""
    who = person(access.name, access.username, access.telegram_id)
    return Reply(_("Запрос доступа к кассе: %(who)s", who=who), keyboard(
        InlineKeyboardButton(_("Разрешить"), callback_data=f"{APPROVE}:{access.id}"),
        InlineKeyboardButton(_("Отказать"), callback_data=f"{REFUSE}:{access.id}"),
    ))


def access_decided(access: AccessRequest, manager_name: str | None) -> str:
    """The manager's message once a decision is made: who decided what."""
    who = person(access.name, access.username, access.telegram_id)
    by = manager_name or _("менеджер")
    if access.status == AccessStatus.APPROVED:
        return _("Доступ разрешён: %(who)s. Решение: %(by)s.", who=who, by=by)
    return _("В доступе отказано: %(who)s. Решение: %(by)s.", who=who, by=by)


def access_answer(access: AccessRequest) -> Reply:
    """To the person who asked."""
    if access.status == AccessStatus.APPROVED:
        return Reply(_("Доступ к кассе разрешён."), open_till_keyboard())
    return Reply(_("Менеджер отказал в доступе к кассе."))


def already_decided() -> str:
    return _("По этому запросу уже решено.")


def only_managers() -> str:
    return _("Решать о доступе может только менеджер.")


def unknown_request() -> str:
    return _("Запрос доступа не найден.")


def done() -> str:
    return _("Готово")


# -- notifications -------------------------------------------------------------------------

def _order_ref(order_id: int | None) -> str:
    return _("заказ №%(id)s", id=order_id) if order_id else _("без заказа")


def paid(payment: Payment, order: Order, receipt_link: str | None) -> str:
    lines = [_("Оплачено: %(sum)s", sum=format_rubles(payment.amount_kopecks)),
             _("Заказ №%(id)s", id=order.id)]
    lines += [f"{item.name} × {format_quantity(item.quantity_milli)} = "
              f"{format_rubles(item.amount_kopecks)}" for item in order.items]
    if receipt_link:
        lines.append(_("Чек: %(url)s", url=receipt_link))
    return "\n".join(lines)


def expired(order: Order) -> str:
    return "\n".join([
        _("QR-код истёк: заказ №%(id)s на %(sum)s не оплачен.", id=order.id,
          sum=format_rubles(order.total_kopecks)),
        _("Если покупатель ещё здесь, создайте новый QR-код в кассе."),
    ])


def refund_completed(refund: Refund) -> str:
    return _("Возврат проведён: %(sum)s, %(order)s (платёж %(payment)s).",
             sum=format_rubles(refund.amount_kopecks),
             order=_order_ref(refund.payment.order_id), payment=refund.payment_id)


def payment_review(payment: Payment) -> str:
    return "\n".join([
        _("Платёж на проверке: %(sum)s, %(order)s (платёж %(payment)s).",
          sum=format_rubles(payment.amount_kopecks), order=_order_ref(payment.order_id),
          payment=payment.id),
        _("Причина: %(why)s", why=payment.review_reason or "—"),
        _("Принять: flask payment accept %(id)s; или верните деньги.", id=payment.id),
    ])


def receipt_failed(receipt: Receipt) -> str:
    kind = _("продажи") if receipt.kind == ReceiptKind.SELL else _("возврата")
    return "\n".join([
        _("Чек %(kind)s не пробит: чек %(id)s на %(sum)s, платёж %(payment)s.", kind=kind,
          id=receipt.id, sum=format_rubles(receipt.total_kopecks),
          payment=receipt.payment_id),
        _("Ошибка: %(error)s", error=receipt.error or "—"),
        _("Повторить: flask receipt retry %(id)s", id=receipt.id),
    ])


def daily_summary(day: date, figures: Figures, *, failed_receipts: int,
                  review_payments: int) -> str:
    """The managers' summary of one Moscow day."""
    lines = [_("Итоги дня %(day)s", day=day.strftime("%d.%m.%Y")),
             _("Выручка: %(sum)s (платежей: %(count)s)", sum=format_rubles(figures.revenue_kopecks),
               count=figures.payments),
             _("Возвраты: %(sum)s (%(count)s)", sum=format_rubles(figures.refunds_kopecks),
               count=figures.refunds),
             _("Итого: %(sum)s", sum=format_rubles(figures.net_kopecks))]
    if figures.orders_by_status:
        counts = ", ".join(f"{ORDER_STATUSES[status]} — {count}"
                           for status, count in figures.orders_by_status.items())
        lines.append(_("Заказы: %(counts)s", counts=counts))
    else:
        lines.append(_("Заказов не было."))
    if figures.payments_by_status.get(PaymentStatus.REVIEW):
        lines.append(_("Из них платежей на проверке за день: %(count)s",
                       count=figures.payments_by_status[PaymentStatus.REVIEW]))
    lines.append(_("Чеков не пробито: %(count)s", count=failed_receipts))
    lines.append(_("Платежей ждут проверки: %(count)s", count=review_payments))
    return "\n".join(lines)
