"""The bank side: provider registry, payment use cases, the bank's callback and QR images."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, current_app

from app.config import ConfigError
from app.sbp.provider import SbpProvider


def _raiffeisen(config: dict) -> SbpProvider:
    from app.sbp.raiffeisen import RaiffeisenClient

    return RaiffeisenClient(
        config["RAIFFEISEN_API_URL"],
        config["RAIFFEISEN_SBP_MERCHANT_ID"],
        config["RAIFFEISEN_SECRET_KEY"],
        account=config.get("RAIFFEISEN_ACCOUNT"),
        public_id=config.get("RAIFFEISEN_PUBLIC_ID"),
        timeout=config["HTTP_TIMEOUT"],
    )


PROVIDERS: dict[str, Callable[[dict], SbpProvider]] = {"raiffeisen": _raiffeisen}


def init_app(app: Flask) -> None:
    """Build the configured bank client once; register routes, jobs and the reconciler."""
    name = app.config["SBP_PROVIDER"]
    if name not in PROVIDERS:
        raise ConfigError(f"SBP_PROVIDER={name!r} is not a bank Kassa knows: "
                          f"{', '.join(PROVIDERS)}")
    app.extensions["kassa.sbp"] = PROVIDERS[name](app.config)

    from app import jobs, ratelimit
    from app.sbp.handlers import HANDLERS
    from app.sbp.routes import bp

    app.register_blueprint(bp, url_prefix="/sbp")
    # The bank resends a callback that was not answered 2xx, so a 429 loses nothing; the
    # limit (per address) is generous all the same.
    ratelimit.limit(app, bp, "RATELIMIT_SBP_CALLBACK", scope="sbp-callback",
                    endpoints={"sbp.callback"}, methods=["POST"])
    registry = jobs.registry(app)
    for job_name, fn in HANDLERS.items():
        registry.handler(job_name, fn)
    registry.periodic("sbp.reconcile", app.config["RECONCILE_INTERVAL_SECONDS"])


def get_bank() -> SbpProvider:
    """The bank client of the current app (tests may swap it in app.extensions)."""
    return current_app.extensions["kassa.sbp"]
