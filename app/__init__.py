"""Kassa: a Telegram sales bot with SBP QR payments and automatic 54-FZ fiscalization."""

from __future__ import annotations

import logging.config

from flask import Flask

from app.config import INSTANCE, ROOT, load_config


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
    app.config.update(load_config(overrides=config))
    configure_logging(app)
    register_extensions(app)
    register_assets(app)
    register_models(app)
    register_jobs(app)
    register_features(app)
    register_health(app)
    register_security(app)
    register_template_filters(app)
    register_error_handlers(app)
    register_commands(app)
    return app


def configure_logging(app: Flask) -> None:
    logging.config.dictConfig({
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {
            "format": "%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s",
        }},
        "handlers": {"console": {
            "class": "logging.StreamHandler", "stream": "ext://sys.stderr",
            "formatter": "plain",
        }},
        "root": {"level": app.config["LOG_LEVEL"], "handlers": ["console"]},
        # requests/urllib3 log full URLs with query strings; keep them quiet.
        "loggers": {
            "urllib3": {"level": "WARNING"},
            "werkzeug": {"level": "WARNING"},
            "alembic.runtime.plugins": {"level": "WARNING"},
        },
    })


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
    from app.health import bp

    app.register_blueprint(bp)


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
