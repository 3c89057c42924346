"""The admin blueprint; each module of the panel adds its routes to it."""

from __future__ import annotations

from flask import Blueprint, current_app
from flask_babel import lazy_gettext as _l

bp = Blueprint("admin", __name__)

# The panel's menu: (endpoint, label); an endpoint not (yet) registered is left out.
NAV = [
    ("admin.index", _l("Сводка")),
    ("admin.monitor", _l("Платежи")),
    ("admin.shop_orders", _l("Заказы магазина")),
    ("admin.catalog", _l("Каталог")),
    ("admin.storefront", _l("Магазин")),
    ("admin.staff", _l("Сотрудники")),
    ("admin.tills", _l("Кассы и QR")),
    ("admin.api_clients", _l("API")),
    ("admin.journal", _l("Журнал")),
    ("admin.admins", _l("Администраторы")),
]


@bp.app_template_global("admin_nav_items")
def admin_nav_items():
    return [(endpoint, label) for endpoint, label in NAV
            if endpoint in current_app.view_functions]
