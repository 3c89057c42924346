"""The cash register side: 54-FZ receipts through a cloud cash register.

`FISCAL_PROVIDER` picks the register: `atol` (ATOL Online v5, also Эвотор and Бизнес.Ру),
`raiffeisen` (the bank's receipts API) or `none` (the shop fiscalizes elsewhere: no
receipts are created).
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, current_app
from flask_babel import lazy_gettext as _l

from app.config import ConfigError
from app.errors import ValidationError
from app.fiscal.provider import FiscalProvider, undocumented
from app.receipt_lines import MEASURES, PAYMENT_OBJECTS, VAT_RATES


def _atol(config: dict) -> FiscalProvider:
    from app.fiscal.atol import AtolClient

    return AtolClient(
        config["ATOL_API_URL"], config["ATOL_LOGIN"], config["ATOL_PASSWORD"],
        config["ATOL_GROUP_CODE"], timeout=config["HTTP_TIMEOUT"],
    )


def _raiffeisen(config: dict) -> FiscalProvider:
    from app.fiscal.raiffeisen import RaiffeisenReceiptsClient

    return RaiffeisenReceiptsClient(
        config["RAIFFEISEN_API_URL"], config["RAIFFEISEN_SECRET_KEY"],
        timeout=config["HTTP_TIMEOUT"],
    )


PROVIDERS: dict[str, Callable[[dict], FiscalProvider]] = {
    "atol": _atol,
    "raiffeisen": _raiffeisen,
}


def init_app(app: Flask) -> None:
    """Build the register client; hook receipts onto paid payments and completed refunds."""
    from app import jobs
    from app.fiscal.handlers import HANDLERS
    from app.fiscal.routes import bp

    name = app.config["FISCAL_PROVIDER"]
    if name != "none" and name not in PROVIDERS:
        raise ConfigError(f"FISCAL_PROVIDER={name!r} is not a register Kassa knows: "
                          f"{', '.join(PROVIDERS)}, none")
    app.extensions["kassa.fiscal"] = None if name == "none" else PROVIDERS[name](app.config)
    app.register_blueprint(bp, url_prefix="/fiscal")
    registry = jobs.registry(app)
    for job_name, fn in HANDLERS.items():
        registry.handler(job_name, fn)
    if name == "none":
        return
    registry.subscribe("payment.paid", "fiscal.sell")
    registry.subscribe("refund.completed", "fiscal.refund")
    registry.periodic("fiscal.reconcile", app.config["RECONCILE_INTERVAL_SECONDS"])


def get_register() -> FiscalProvider | None:
    """The cash register client of the current app; None when FISCAL_PROVIDER=none."""
    return current_app.extensions["kassa.fiscal"]


def fiscal_enabled() -> bool:
    return current_app.extensions.get("kassa.fiscal") is not None


def check_line(*, vat: str, payment_object: str, measure: str) -> None:
    """Refuse a product or cart line that no receipt could carry: a VAT rate, payment object
    or measure unknown to 54-ФЗ, or one the configured register does not document.

    :raises ValidationError: with a Russian message naming the provider.
    """
    if vat not in VAT_RATES:
        raise ValidationError(_l("Неизвестная ставка НДС: %(value)s", value=vat),
                              code="invalid_vat")
    if payment_object not in PAYMENT_OBJECTS:
        raise ValidationError(_l("Неизвестный признак предмета расчёта: %(value)s",
                                 value=payment_object), code="invalid_payment_object")
    if measure not in MEASURES:
        raise ValidationError(_l("Неизвестная единица измерения: %(value)s", value=measure),
                              code="invalid_measure")
    register = current_app.extensions.get("kassa.fiscal")
    problem = register and undocumented(register, vat=vat, payment_object=payment_object,
                                        measure=measure)
    if not problem:
        return
    what, value = problem
    messages = {
        "vat": _l("%(provider)s не поддерживает ставку НДС %(value)s", provider=register.title,
                  value=value),
        "payment_object": _l("%(provider)s не поддерживает признак предмета расчёта "
                             "%(value)s", provider=register.title, value=value),
        "measure": _l("%(provider)s не поддерживает единицу измерения %(value)s",
                      provider=register.title, value=value),
    }
    raise ValidationError(messages[what], code=f"unsupported_{what}")
