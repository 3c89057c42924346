"""What the bot says about the storefront: to customers (the shop's welcome, their orders,
each step of an order) and to managers (a paid order with its step buttons). Russian,
through Flask-Babel; `Reply` and the shared pieces come from app/telegram/messages.py."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from telebot.types import InlineKeyboardButton, InlineKeyboardMarkup, WebAppInfo

from app.formatting import format_moscow, format_quantity
from app.models import Customer, Delivery, Fulfilment, Order, Refund
from app.money import format_rubles
from app.telegram.messages import (
    ORDER_STATUSES,
    PAID_STATUSES,
    Reply,
    keyboard,
    person,
    shop_url,
)

# The storefront: a customer's "my orders"; a manager's step of an order
# ("ff:<order id>:<fulfilment>", or "ff:<id>:ask-cancel" / "ff:<id>:show" for the confirmation).
CUSTOMER_ORDERS = "shop:orders"
FULFIL = "ff"
ASK_CANCEL = "ask-cancel"
SHOW = "show"
CUSTOMER_ORDERS_MAX = 10

# -- the storefront: customers -------------------------------------------------------------

FULFILMENT_LABELS = {
    Fulfilment.NEW: _l("новый"),
    Fulfilment.ACCEPTED: _l("принят"),
    Fulfilment.READY: _l("готов к выдаче"),
    Fulfilment.SHIPPED: _l("в пути"),
    Fulfilment.HANDED_OVER: _l("выдан"),
    Fulfilment.CANCELLED: _l("отменён магазином"),
}
# The manager's button for each step.
STEP_BUTTONS = {
    Fulfilment.ACCEPTED: _l("Принять"),
    Fulfilment.READY: _l("Готов к выдаче"),
    Fulfilment.SHIPPED: _l("Отправлен"),
    Fulfilment.HANDED_OVER: _l("Выдан покупателю"),
    Fulfilment.CANCELLED: _l("Отменить и вернуть деньги"),
}


def open_shop_button() -> InlineKeyboardButton:
    return InlineKeyboardButton(_("Открыть магазин"), web_app=WebAppInfo(shop_url()))


def start_customer(welcome: str | None) -> Reply:
    """/start for someone who is not staff while the storefront is on."""
    text = welcome or _("Здравствуйте! Это магазин: выберите товары, оплатите по СБП — "
                        "чек придёт на ваш телефон или почту.")
    markup = InlineKeyboardMarkup()
    markup.row(open_shop_button())
    markup.row(InlineKeyboardButton(_("Мои заказы"), callback_data=CUSTOMER_ORDERS))
    return Reply(text + "\n" + _("Сотрудникам магазина: /staff"), markup)


def staff_already() -> Reply:
    return Reply(_("У вас уже есть доступ к кассе. Нажмите /start."))


def order_state(order: Order) -> str:
    """"оплачен, принят": the payment's state and, once paid, the shop's progress."""
    state = str(ORDER_STATUSES.get(order.status, order.status.value))
    if order.fulfilment is not None and order.status in PAID_STATUSES:
        state += ", " + str(FULFILMENT_LABELS[order.fulfilment])
    return state


def customer_orders(orders: list[Order], *, shop_on: bool) -> Reply:
    """/orders: the customer's latest orders with their states."""
    markup = keyboard(open_shop_button()) if shop_on else None
    if not orders:
        return Reply(_("У вас пока нет заказов."), markup)
    lines = [_("Ваши заказы:")]
    for order in orders[:CUSTOMER_ORDERS_MAX]:
        lines.append(_("№%(id)s от %(date)s — %(sum)s — %(state)s", id=order.id,
                       date=format_moscow(order.created_at), sum=format_rubles(
                           order.total_kopecks), state=order_state(order)))
    return Reply("\n".join(lines), markup)


def contact_saved(phone: str) -> str:
    return _("Спасибо! Номер %(phone)s сохранён: на него придёт чек следующей покупки.",
             phone=phone)


def contact_not_yours() -> str:
    return _("Сохраняю только ваш собственный номер: поделитесь им кнопкой в магазине.")


def _lines(order: Order) -> list[str]:
    return [f"{item.name} × {format_quantity(item.quantity_milli)} = "
            f"{format_rubles(item.amount_kopecks)}" for item in order.items]


def _delivery(order: Order, pickup_address: str | None) -> str | None:
    if order.delivery == Delivery.DELIVERY:
        return _("Доставка: %(address)s", address=order.delivery_address or "—")
    if order.delivery == Delivery.PICKUP:
        return (_("Самовывоз: %(address)s", address=pickup_address) if pickup_address
                else _("Самовывоз"))
    return None


def customer_paid(order: Order, receipt_link: str | None, pickup_address: str | None) -> str:
    """To the customer once the order is paid."""
    lines = [_("Заказ №%(id)s оплачен: %(sum)s", id=order.id,
               sum=format_rubles(order.total_kopecks)), *_lines(order)]
    delivery = _delivery(order, pickup_address)
    if delivery:
        lines.append(delivery)
    if receipt_link:
        lines.append(_("Чек: %(url)s", url=receipt_link))
    lines.append(_("Мы напишем, когда заказ будет готов. Ваши заказы: /orders"))
    return "\n".join(lines)


def customer_step(order: Order, to: Fulfilment, pickup_address: str | None) -> str | None:
    """To the customer at a step of the shop's work on the order."""
    number = order.id
    if to == Fulfilment.ACCEPTED:
        return _("Заказ №%(id)s принят магазином.", id=number)
    if to == Fulfilment.READY:
        where = (_("Адрес: %(address)s", address=pickup_address) if pickup_address else "")
        return "\n".join(filter(None, [_("Заказ №%(id)s готов: можно забирать.", id=number),
                                       where]))
    if to == Fulfilment.SHIPPED:
        return _("Заказ №%(id)s отправлен: %(address)s", id=number,
                 address=order.delivery_address or "—")
    if to == Fulfilment.HANDED_OVER:
        return _("Заказ №%(id)s выдан. Спасибо за покупку!", id=number)
    if to == Fulfilment.CANCELLED:
        return "\n".join([
            _("Магазин отменил заказ №%(id)s.", id=number),
            _("Деньги (%(sum)s) вернутся на счёт, с которого вы платили; чек возврата придёт "
              "на ваш контакт.", sum=format_rubles(order.total_kopecks)),
        ])
    return None


def customer_refunded(order: Order, refund: Refund, receipt_link: str | None) -> str:
    lines = [_("Возврат по заказу №%(id)s проведён: %(sum)s", id=order.id,
               sum=format_rubles(refund.amount_kopecks))]
    if receipt_link:
        lines.append(_("Чек возврата: %(url)s", url=receipt_link))
    return "\n".join(lines)


# -- the storefront: managers --------------------------------------------------------------

def step_keyboard(order: Order, steps: list[Fulfilment]) -> InlineKeyboardMarkup | None:
    """A button per step a manager may take (cancelling asks first)."""
    if not steps:
        return None
    markup = InlineKeyboardMarkup()
    for to in steps:
        data = (f"{FULFIL}:{order.id}:{ASK_CANCEL}" if to == Fulfilment.CANCELLED
                else f"{FULFIL}:{order.id}:{to.value}")
        markup.row(InlineKeyboardButton(str(STEP_BUTTONS[to]), callback_data=data))
    return markup


def confirm_cancel_keyboard(order: Order) -> InlineKeyboardMarkup:
    markup = InlineKeyboardMarkup()
    markup.row(InlineKeyboardButton(_("Да, отменить и вернуть %(sum)s",
                                      sum=format_rubles(order.total_kopecks)),
                                    callback_data=f"{FULFIL}:{order.id}:"
                                                  f"{Fulfilment.CANCELLED.value}"))
    markup.row(InlineKeyboardButton(_("Нет, назад"), callback_data=f"{FULFIL}:{order.id}:{SHOW}"))
    return markup


def manager_order(order: Order, customer: Customer | None, steps: list[Fulfilment],
                  pickup_address: str | None) -> Reply:
    """To each manager: a paid storefront order, its customer and contact, its lines and
    delivery, where it is now, and the buttons for the next steps."""
    lines = [_("Заказ магазина №%(id)s: %(sum)s, %(state)s", id=order.id,
               sum=format_rubles(order.total_kopecks), state=order_state(order))]
    if customer is not None:
        lines.append(_("Покупатель: %(who)s", who=person(customer.name, customer.username,
                                                          customer.telegram_id)))
    contact = ", ".join(filter(None, [order.customer_phone, order.customer_email]))
    lines.append(_("Контакт: %(contact)s", contact=contact or "—"))
    lines += _lines(order)
    delivery = _delivery(order, pickup_address)
    if delivery:
        lines.append(delivery)
    if order.customer_comment:
        lines.append(_("Комментарий: %(text)s", text=order.customer_comment))
    return Reply("\n".join(lines), step_keyboard(order, steps))


def only_managers_orders() -> str:
    return _("Заказы ведёт только менеджер.")


def step_already() -> str:
    return _("Уже сделано: заказ в этом состоянии.")


def unknown_order() -> str:
    return _("Заказ не найден.")
