"""Kassa: a Telegram sales bot with SBP QR payments and automatic 54-FZ fiscalization."""

from __future__ import annotations

import logging.config

from flask import Flask
from werkzeug.routing import IntegerConverter

from app.config import INSTANCE, ROOT, load_config
from app.models.base import MAX_ROW_ID


class RowIdConverter(IntegerConverter):
    """`<int:...>` capped at the largest INTEGER primary key (app.models.base.MAX_ROW_ID)."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", MAX_ROW_ID)
        super().__init__(map, *args, **kwargs)


def create_app(config: dict | None = None) -> Flask:
    """Build the web app. Nothing here talks to the network or migrates the database.

    :param config: values that win over the environment (tests pass APP_ENV=testing etc.).
    """
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
        instance_path=str(INSTANCE),
    )
    # <int:...> in a URL is a row id: a bigger number is a 404, not a PostgreSQL error.
    app.url_map.converters["int"] = RowIdConverter
    app.config.update(load_config(overrides=config))
    configure_logging(app)
    register_extensions(app)
    register_assets(app)
    register_models(app)
    register_jobs(app)
    register_rate_limits(app)
    register_features(app)
    register_health(app)
    register_security(app)
    register_template_filters(app)
    register_error_handlers(app)
    register_commands(app)
    return app


def configure_logging(app: Flask) -> None:
    """One handler on stderr: JSON lines or plain ones (LOG_FORMAT), each record carrying
    the request id (app/logs.py) and masked of the app's secrets."""
    from app import logs

    logging.config.dictConfig({
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "plain": {"()": "app.logs.PlainFormatter"},
            "json": {"()": "app.logs.JsonFormatter"},
        },
        "handlers": {"console": {
            "class": "logging.StreamHandler", "stream": "ext://sys.stderr",
            "formatter": app.config["LOG_FORMAT"],
        }},
        "root": {"level": app.config["LOG_LEVEL"], "handlers": ["console"]},
        # requests/urllib3 log full URLs with query strings; keep them quiet.
        "loggers": {
            "urllib3": {"level": "WARNING"},
            "werkzeug": {"level": "WARNING"},
            "alembic.runtime.plugins": {"level": "WARNING"},
        },
    })
    for handler in logging.getLogger().handlers:
        handler.addFilter(logs.ContextFilter())
        handler.addFilter(logs.RedactFilter(logs.secret_values(app.config)))
    logs.init_app(app)


def register_extensions(app: Flask) -> None:
    from sqlalchemy.exc import ArgumentError

    from app.config import ConfigError
    from app.extensions import babel, csrf, db, end_session, migrate

    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///"):
        INSTANCE.mkdir(parents=True, exist_ok=True)
    try:
        db.init_app(app)
    except (ArgumentError, ImportError) as exc:  # not a URL, or its driver is not installed
        raise ConfigError(f"DATABASE_URL cannot be used: {exc}") from exc
    # Runs before Flask-SQLAlchemy's own teardown (they run in reverse): a connection lost
    # after the request's work must not turn its answer into a 500.
    app.teardown_appcontext(end_session)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    # Flask-Login is bound with the admin panel, which brings the user model it loads.
    csrf.init_app(app)
    babel.init_app(app)


def register_assets(app: Flask) -> None:
    from app import assets

    assets.init_app(app)


def register_models(app: Flask) -> None:
    import app.models  # noqa: F401 - registers the tables with the metadata


def register_jobs(app: Flask) -> None:
    """The app's job registry; the features below add their handlers and periodic jobs."""
    from app import jobs

    jobs.init_app(app)


def register_rate_limits(app: Flask) -> None:
    """The limiter and its storage; the features below say what they limit."""
    from app import ratelimit

    ratelimit.init_app(app)


def register_features(app: Flask) -> None:
    """Payments (SBP), receipts (fiscal), the bot (telegram), the till (miniapp), the
    providers' health check, the admin panel, the constructor API and the customer's pay
    page: each adds its provider, routes and jobs."""
    from app import (
        admin,
        checkout,
        constructor,
        fiscal,
        miniapp,
        provider_health,
        sbp,
        storefront,
        telegram,
    )

    sbp.init_app(app)
    fiscal.init_app(app)
    telegram.init_app(app)
    miniapp.init_app(app)
    provider_health.init_app(app)
    admin.init_app(app)
    checkout.init_app(app)
    constructor.init_app(app)
    storefront.init_app(app)


def register_security(app: Flask) -> None:
    from app import security

    security.init_app(app)


def register_health(app: Flask) -> None:
    """/healthz, /readyz and /metrics (app/metrics.py)."""
    from app import metrics
    from app.extensions import csrf
    from app.health import bp

    csrf.exempt(bp)
    app.register_blueprint(bp)
    metrics.init_app(app)


def register_template_filters(app: Flask) -> None:
    from app import formatting

    app.add_template_filter(formatting.format_rubles, "rubles")
    app.add_template_filter(formatting.format_quantity, "quantity")
    app.add_template_filter(formatting.format_moscow, "moscow")
    app.add_template_filter(formatting.vat_label, "vat_label")


def register_error_handlers(app: Flask) -> None:
    from app.errors import register_error_handlers as register

    register(app)


def register_commands(app: Flask) -> None:
    from app.cli import register

    register(app)
