"""The admin panel (bp "admin", /admin/): accounts, monitoring, dashboard, the shop's
settings and the audit log, server-rendered with htmx. Every action calls the same service
functions as the CLI and the Mini App; the panel holds no payment logic of its own."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the blueprint and Flask-Login (the panel's session cookie)."""
    from app import ratelimit
    from app.admin import (  # noqa: F401 - routes
        accounts,
        auth,
        catalog,
        dashboard,
        integrations,
        journal,
        monitor,
        shop,
        shop_orders,
        storefront,
    )
    from app.admin.blueprint import bp

    auth.init_login(app)
    app.register_blueprint(bp, url_prefix="/admin")
    # Login attempts per address, before any password is hashed; the failure throttle in
    # services.py (accounts and addresses, in the database) holds as well.
    ratelimit.limit(app, bp, "RATELIMIT_ADMIN_LOGIN", scope="admin-login",
                    endpoints={"admin.login", "admin.login_code"}, methods=["POST"])
