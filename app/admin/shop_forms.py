"""Forms of the shop's pages: catalog, staff, tills and QR codes. They read what was typed;
the services (catalog, people, sbp) decide what is valid and their refusals are shown."""

from __future__ import annotations

from flask import current_app
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, StringField

from app.miniapp.forms import ProductForm
from app.money import MoneyError, parse_rubles


class _CsrfMeta:
    """Flask-WTF's CSRF, as configured (the Mini App's product form turns it off)."""

    @property
    def csrf(self) -> bool:
        return current_app.config.get("WTF_CSRF_ENABLED", True)


class AdminProductForm(ProductForm):
    """The Mini App's product form (labels, choices, refusals), with CSRF: the panel's
    requests are signed by a session cookie, not by Telegram."""

    class Meta(_CsrfMeta):
        pass


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
