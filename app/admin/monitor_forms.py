"""Forms of the monitor: the list's filters (GET) and the actions (POST, CSRF)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, HiddenField, RadioField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional, ValidationError

from app.admin.queries import Filters
from app.money import MoneyError, parse_rubles


def choices(pairs) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in pairs]


STATUS_CHOICES = choices([
    ("", _l("Все статусы")),
    ("pending", _l("Ждёт оплаты")), ("new", _l("Новый")), ("expired", _l("Истёк")),
    ("cancelled", _l("Отменён")), ("paid", _l("Оплачен")),
    ("partially_refunded", _l("Частично возвращён")), ("refunded", _l("Возвращён")),
    ("review", _l("На проверке")),
])
KIND_CHOICES = choices([("", _l("Все типы")), ("dynamic", _l("Динамический QR")),
                ("static", _l("Статический QR")), ("cash_link", _l("Кассовая ссылка"))])
CHANNEL_CHOICES = choices([("", _l("Все каналы")), ("miniapp", _l("Mini App")), ("api", _l("API")),
                   ("static", _l("Статический QR")), ("cash_link", _l("Кассовая ссылка")),
                   ("cli", _l("Командная строка")), ("admin", _l("Панель"))])
SORT_CHOICES = choices([("-created", _l("Сначала новые")), ("created", _l("Сначала старые")),
                ("-amount", _l("Сумма: по убыванию")), ("amount", _l("Сумма: по возрастанию")),
                ("status", _l("По статусу"))])


class FilterForm(FlaskForm):
    """The list's filters, read from the query string (a GET form: no CSRF)."""

    class Meta:
        csrf = False

    status = SelectField(_l("Статус"), choices=STATUS_CHOICES, default="",
                         validators=[Optional()])
    kind = SelectField(_l("Тип"), choices=KIND_CHOICES, default="", validators=[Optional()])
    channel = SelectField(_l("Канал"), choices=CHANNEL_CHOICES, default="",
                          validators=[Optional()])
    cashier = SelectField(_l("Кассир"), choices=choices([("", _l("Все кассиры"))]), default="",
                          validators=[Optional()])
    date_from = DateField(_l("С"), validators=[Optional()])
    date_to = DateField(_l("По"), validators=[Optional()])
    q = StringField(_l("Поиск"), validators=[Optional(), Length(max=64)],
                    render_kw={"placeholder": _l("№ заказа, QR банка, транзакция")})
    sort = SelectField(_l("Порядок"), choices=SORT_CHOICES, default="-created",
                       validators=[Optional()])

    def filters(self) -> Filters:
        """What the valid fields ask for; an invalid field is left out (and says so)."""
        def ok(field):
            return field.data if not field.errors and field.data else None

        cashier = ok(self.cashier)
        return Filters(status=ok(self.status), kind=ok(self.kind), channel=ok(self.channel),
                       cashier_id=int(cashier) if cashier and cashier.isdigit() else None,
                       date_from=ok(self.date_from), date_to=ok(self.date_to),
                       q=(ok(self.q) or "").strip() or None, sort=ok(self.sort) or "-created")


class ActionForm(FlaskForm):
    """A button that acts: CSRF, and where to come back to."""

    back = HiddenField()


def parse_quantity(text: str) -> int:
    """ "1,5" -> 1500 thousandths; "" -> 0.

    :raises ValueError: not a number with at most three decimals, or negative.
    """
    text = (text or "").strip().replace(",", ".").replace(" ", "")
    if not text:
        return 0
    try:
        value = Decimal(text) * 1000
    except InvalidOperation as exc:
        raise ValueError(text) from exc
    if value != value.to_integral_value() or value < 0:
        raise ValueError(text)
    return int(value)


class RefundForm(ActionForm):
    """A refund: of chosen lines (quantities named qty-<line index>) or of a sum."""

    mode = RadioField(_l("Что вернуть"), default="lines", choices=choices(
        [("lines", _l("Товары")), ("amount", _l("Сумму"))]))
    amount = StringField(_l("Сумма, ₽"), validators=[Optional(), Length(max=20)],
                         render_kw={"inputmode": "decimal"})
    reason = StringField(_l("Причина"), validators=[Optional(), Length(max=140)])

    def __init__(self, *args, line_count: int = 0, quantities=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.line_count = line_count
        self.quantities = quantities or {}
        self.selection: list[tuple[int, int]] | None = None
        self.amount_kopecks: int | None = None

    def validate_amount(self, field):
        if self.mode.data != "amount":
            return
        if not (field.data or "").strip():
            return  # the whole rest
        try:
            self.amount_kopecks = parse_rubles(field.data)
        except MoneyError as exc:
            raise ValidationError(str(exc)) from exc

    def validate_mode(self, field):
        if field.data != "lines":
            return
        if not self.line_count:
            raise ValidationError(_l("У этого платежа нет строк: верните сумму"))
        selection = []
        for index in range(self.line_count):
            raw = self.quantities.get(f"qty-{index}", "")
            try:
                quantity = parse_quantity(raw)
            except ValueError:
                raise ValidationError(_l("Количество «%(raw)s» не число", raw=raw)) from None
            if quantity:
                selection.append((index, quantity))
        if not selection:
            raise ValidationError(_l("Укажите, сколько какого товара вернуть"))
        self.selection = selection
