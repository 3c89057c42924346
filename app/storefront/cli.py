"""`flask shop ...`: the storefront's switch and its bank list."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from app.cli import KassaGroup

shop_cli = KassaGroup("shop", help="The shop in the bot (storefront): switch, bank list.")
banks_cli = AppGroup("banks", help="NSPK's list of SBP bank apps the pay page offers.")
shop_cli.add_command(banks_cli)


@shop_cli.command("storefront")
@click.argument("state", type=click.Choice(["on", "off"]))
def shop_storefront(state: str):
    """Switch the storefront on (strangers who /start the bot get the shop) or off."""
    from app.storefront.settings import set_storefront

    settings = set_storefront(state == "on")
    click.echo("storefront on: customers get the shop on /start" if settings.storefront_enabled
               else "storefront off: /start works as before (the till and access requests)")


@banks_cli.command("refresh")
def shop_banks_refresh():
    """Fetch NSPK_BANKS_URL now and keep its list (a failure keeps the last one)."""
    from app.storefront.banks import refresh_banks

    directory = refresh_banks()
    click.echo(f"bank list refreshed: {len(directory.banks)} banks from {directory.source_url}")
