"""``flask sandbox run``: serve the bank emulator in the foreground."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click
from flask import current_app
from flask.cli import AppGroup

from . import SandboxSettings, serve_sandbox, url_host

DEFAULT_PORT = 8081
PORTS = click.IntRange(1, 65535)

sandbox_cli = AppGroup(
    "sandbox",
    help="Bank and cash register emulator (Raiffeisen SBP, ATOL Online) for development and tests.",
)


def settings_from_config(config: Mapping[str, Any]) -> SandboxSettings:
    """Build settings from the Kassa config keys RAIFFEISEN_SBP_MERCHANT_ID,
    RAIFFEISEN_SECRET_KEY, PUBLIC_URL and SANDBOX_PORT, plus ATOL_LOGIN, ATOL_PASSWORD and
    ATOL_GROUP_CODE when set (otherwise ATOL's public test values)."""
    merchant_id = config.get("RAIFFEISEN_SBP_MERCHANT_ID")
    secret_key = config.get("RAIFFEISEN_SECRET_KEY")
    missing = [
        name
        for name, value in (
            ("RAIFFEISEN_SBP_MERCHANT_ID", merchant_id),
            ("RAIFFEISEN_SECRET_KEY", secret_key),
        )
        if not value
    ]
    if missing:
        raise click.ClickException(f"set {', '.join(missing)} to run the sandbox")
    public_url = config.get("PUBLIC_URL")
    port = int(config.get("SANDBOX_PORT") or DEFAULT_PORT)
    atol = {
        field: str(config[key])
        for field, key in (
            ("atol_login", "ATOL_LOGIN"),
            ("atol_password", "ATOL_PASSWORD"),
            ("atol_group_code", "ATOL_GROUP_CODE"),
        )
        if config.get(key)
    }
    return SandboxSettings(
        merchant_id=str(merchant_id),
        secret_key=str(secret_key),
        callback_url=f"{str(public_url).rstrip('/')}/sbp/callback" if public_url else None,
        base_url=f"http://127.0.0.1:{port}",
        **atol,
    )


@sandbox_cli.command("run")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--port",
    type=PORTS,
    default=None,
    help=f"Port to listen on [default: SANDBOX_PORT, else {DEFAULT_PORT}].",
)
def run(host: str, port: int | None) -> None:
    """Serve the bank and cash register emulator in the foreground (Ctrl-C stops it)."""
    settings = settings_from_config(current_app.config)
    if port is None:
        port = int(current_app.config.get("SANDBOX_PORT") or DEFAULT_PORT)
        if port not in range(PORTS.min, PORTS.max + 1):
            raise click.ClickException(f"SANDBOX_PORT must be 1..65535, not {port}")
    click.echo(f"Kassa bank sandbox on http://{url_host(host)}:{port}/ (payer pages at /pay/)")
    click.echo(f"  merchant {settings.merchant_id}")
    click.echo(f"  callbacks to {settings.callback_url or '(none)'}")
    click.echo(
        f"  ATOL Online v5 at /possystem/v5, login {settings.atol_login}, "
        f"group {settings.atol_group_code}; Raiffeisen receipts at /api/fiscal/v1"
    )
    click.echo("  in-memory state: everything is lost when it stops. Ctrl-C to stop.")
    serve_sandbox(settings, host=host, port=port)
