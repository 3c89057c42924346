"""Forms of the shop's pages: catalog, staff, tills and QR codes. They read what was typed;
the services (catalog, people, sbp) decide what is valid and their refusals are shown."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from flask import current_app
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, HiddenField, SelectField, StringField, TextAreaField

from app.miniapp.forms import ProductForm, unit_label
from app.money import MoneyError, parse_rubles

# Measures counted in whole units: a stock of 2,5 pieces makes no sense.
WHOLE_MEASURES = frozenset({"piece"})


class _CsrfMeta:
    """Flask-WTF's CSRF, as configured (the Mini App's product form turns it off)."""

    @property
    def csrf(self) -> bool:
        return current_app.config.get("WTF_CSRF_ENABLED", True)


def format_stock(stock_milli: int | None) -> str:
    """Thousandths of the measure as typed: 12, 2,5, 0,125; "" for not counted."""
    if stock_milli is None:
        return ""
    whole, milli = divmod(stock_milli, 1000)
    return f"{whole},{milli:03d}".rstrip("0") if milli else str(whole)


class AdminProductForm(ProductForm):
    """The Mini App's product form (labels, choices, refusals), with CSRF: the panel's
    requests are signed by a session cookie, not by Telegram; and the storefront's fields:
    published, category, description, stock, photo."""

    class Meta(_CsrfMeta):
        pass

    is_published = BooleanField(_l("Показывать в магазине"),
                                description=_l("Покупатели видят товар в магазине бота"))
    category = SelectField(_l("Категория"), validate_choice=False)
    description = TextAreaField(_l("Описание"), description=_l("До 500 символов"))
    stock = StringField(_l("Остаток"), description=_l(
        "В единицах товара (штуки, кг…); пусто — не считать, 0 — нет в наличии"))
    # The stock as the form showed it: a sale between showing and saving is not undone.
    stock_seen = HiddenField()
    photo = FileField(_l("Фото"), description=_l(
        "JPEG, PNG или WebP до 5 МБ; уменьшается до 800 точек"))
    remove_photo = BooleanField(_l("Убрать фото"))

    def fill_storefront(self, categories, product=None) -> None:
        self.category.choices = [("", str(_l("— без категории —")))] + [
            (str(category.id), category.name) for category in categories]
        if product is not None and self.category.data is None:
            self.category.data = str(product.category_id or "")
            self.is_published.data = product.is_published
            self.description.data = product.description or ""
            self.stock.data = format_stock(product.stock_milli)
            self.stock_seen.data = format_stock(product.stock_milli)

    def category_id(self) -> int | None:
        raw = self.category.data or ""
        return int(raw) if raw.isdigit() else None

    def stock_milli(self, measure: str) -> tuple[bool, int | None]:
        """(ok, the stock in thousandths of the measure or None: not counted); the field's
        error set when not ok."""
        raw = (self.stock.data or "").strip().replace(" ", "").replace(",", ".")
        if not raw:
            return True, None
        try:
            value = Decimal(raw)
        except InvalidOperation:
            value = None
        if value is None or not value.is_finite() or value < 0 \
                or value != value.quantize(Decimal("0.001")):
            self.stock.errors = [str(_l("Остаток — число не меньше нуля, например 12 или 2,5"))]
            return False, None
        if measure in WHOLE_MEASURES and value != value.to_integral_value():
            self.stock.errors = [str(_l("Остаток в %(unit)s — целое число",
                                        unit=unit_label(measure)))]
            return False, None
        return True, int(value * 1000)

    def stock_changed(self) -> bool:
        """Whether the stock typed differs from the one the form showed."""
        def norm(text):
            return (text or "").strip().replace(" ", "").replace(",", ".")
        return norm(self.stock.data) != norm(self.stock_seen.data)

    def storefront_values(self) -> dict:
        return {"is_published": bool(self.is_published.data),
                "category_id": self.category_id(),
                "description": self.description.data or None}

    def show_refusal(self, exc) -> None:
        field = {"invalid_description": self.description, "invalid_stock": self.stock,
                 "invalid_category": self.category, "invalid_photo": self.photo}.get(exc.code)
        if field is None:
            super().show_refusal(exc)
        else:
            field.errors = [str(exc.message)]

    def uploaded_photo(self) -> bytes | None:
        """The photo file's bytes, or None when none was chosen."""
        file = self.photo.data
        if file is None or not getattr(file, "filename", ""):
            return None
        return file.read(UPLOAD_READ_LIMIT)


# A little over the 5 MB a photo may have, so the photo service sees it is too big.
UPLOAD_READ_LIMIT = 5 * 1024 * 1024 + 1


class StaffForm(FlaskForm):
    """Add a staff member by Telegram ID."""

    telegram_id = StringField(_l("Telegram ID"),
                              description=_l("Число; человек узнаёт его командой /start у бота"))
    name = StringField(_l("Имя"))
    cashier = BooleanField(_l("Кассир"), default=True)
    manager = BooleanField(_l("Менеджер"))
    can_edit_catalog = BooleanField(_l("Может менять каталог"))

    def telegram_id_value(self) -> int | None:
        """The Telegram ID as a number, or None with the field's error set."""
        raw = (self.telegram_id.data or "").strip()
        if not raw.isdigit():
            self.telegram_id.errors = [str(_l("Telegram ID — целое положительное число"))]
            return None
        return int(raw)


class StaffFlagsForm(FlaskForm):
    """What a staff member may do."""

    cashier = BooleanField(_l("Кассир"))
    manager = BooleanField(_l("Менеджер"))
    can_edit_catalog = BooleanField(_l("Каталог"))


class TillForm(FlaskForm):
    """Which till (cash link) a cashier works at."""

    till = SelectField(_l("Касса"), validate_choice=False)

    def fill_choices(self, tills) -> None:
        self.till.choices = [("", str(_l("— без кассы —")))] + [
            (str(till.id), till.description or till.qr_id) for till in tills]

    def till_id(self) -> int | None:
        raw = self.till.data or ""
        return int(raw) if raw.isdigit() else None


class CashLinkForm(FlaskForm):
    description = StringField(_l("Название кассы"),
                              description=_l("Например «Касса у входа»; видно в банке"))


class StaticQrForm(FlaskForm):
    amount = StringField(_l("Сумма, ₽"),
                         description=_l("Пусто — покупатель вводит сумму сам"))
    description = StringField(_l("Назначение платежа"))

    def amount_kopecks(self) -> tuple[bool, int | None]:
        """(ok, the sum in kopecks or None for a sum the payer types); the field's error set
        when not ok."""
        raw = (self.amount.data or "").strip()
        if not raw:
            return True, None
        try:
            return True, parse_rubles(raw)
        except MoneyError:
            self.amount.errors = [str(_l("Сумма в рублях, например 500 или 499,90"))]
            return False, None


class ActionForm(FlaskForm):
    """A button that acts (archive, approve, cancel ...): only the CSRF token."""
