"""The product form: what a cashier who may edit the catalog types in.

The form only reads the fields; the catalog service (app.catalog.services) decides what is
valid, and its refusals are shown next to the field they concern.
"""

from __future__ import annotations

from flask import current_app
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField

from app.formatting import MEASURE_LABELS, VAT_LABELS, unit_label  # noqa: F401 - re-exported
from app.money import MoneyError, format_rubles, parse_rubles
from app.receipt_lines import MEASURES, PAYMENT_OBJECTS, VAT_RATES

PAYMENT_OBJECT_LABELS = {
    "commodity": _l("Товар"), "excise": _l("Подакцизный товар"), "job": _l("Работа"),
    "service": _l("Услуга"), "payment": _l("Платёж"), "another": _l("Иной предмет расчёта"),
}
# Which field a catalog service refusal is about, by its code.
FIELD_OF_CODE = {
    "invalid_name": "name", "invalid_amount": "price", "invalid_vat": "vat",
    "unsupported_vat": "vat", "invalid_payment_object": "payment_object",
    "unsupported_payment_object": "payment_object", "invalid_measure": "measure",
    "unsupported_measure": "measure",
}


def _documented(names, attribute: str, current: str | None) -> list[str]:
    """The names the configured register documents (all when there is none), in our order,
    plus the product's current one so an edit never silently changes it."""
    register = current_app.extensions.get("kassa.fiscal")
    known = getattr(register, attribute, None) if register is not None else None
    return [n for n in names if known is None or n in known or n == current]


class ProductForm(FlaskForm):
    # No CSRF token: the Mini App's requests are signed by Telegram (see app/miniapp).
    class Meta:
        csrf = False

    name = StringField(_l("Название"))
    price = StringField(_l("Цена, ₽"), description=_l("Например 220 или 220,50"))
    # validate_choice=False: the catalog service checks the value and says what is wrong.
    vat = SelectField(_l("НДС"), validate_choice=False)
    measure = SelectField(_l("Единица"), validate_choice=False)
    payment_object = SelectField(_l("Предмет расчёта"), validate_choice=False)
    refusal: str | None = None

    def fill_choices(self, product=None) -> None:
        self.vat.choices = [(v, str(VAT_LABELS[v])) for v in _documented(
            VAT_RATES, "vat_rates", product and product.vat)]
        self.measure.choices = [(m, f"{MEASURE_LABELS[m][0]} ({MEASURE_LABELS[m][1]})")
                                for m in _documented(MEASURES, "measures",
                                                     product and product.measure)]
        self.payment_object.choices = [(p, str(PAYMENT_OBJECT_LABELS[p])) for p in _documented(
            PAYMENT_OBJECTS, "payment_objects", product and product.payment_object)]

    def fill_from(self, product) -> None:
        self.name.data = product.name
        self.price.data = format_rubles(product.price_kopecks).replace("\u00a0₽", "") \
            .replace("\u00a0", "")
        self.vat.data = product.vat
        self.measure.data = product.measure
        self.payment_object.data = product.payment_object

    def price_kopecks(self) -> int | None:
        """The price in kopecks, or None with the field's error set."""
        raw = (self.price.data or "").strip()
        if not raw:
            self.price.errors = [str(_l("Укажите цену"))]
            return None
        try:
            return parse_rubles(raw)
        except MoneyError:
            self.price.errors = [str(_l("Цена — сумма в рублях, например 220 или 220,50"))]
            return None

    def values(self, price_kopecks: int) -> dict:
        return {"name": self.name.data or "", "price_kopecks": price_kopecks,
                "vat": self.vat.data or "", "measure": self.measure.data or "",
                "payment_object": self.payment_object.data or ""}

    def show_refusal(self, exc) -> None:
        """Put a catalog service refusal next to its field (or on the form)."""
        field = getattr(self, FIELD_OF_CODE.get(exc.code, ""), None)
        if field is not None:
            field.errors = [str(exc.message)]
        else:
            self.refusal = str(exc.message)
