"""Flask commands: qr, payment, receipt, cashier, bot, admin, api-client, shop, worker, sbp,
demo, and the sandbox."""

from __future__ import annotations

import getpass
import json
import logging
import signal
from contextlib import ExitStack, contextmanager

import click
import sqlalchemy as sa
from flask import Flask, current_app
from flask.cli import AppGroup, ScriptInfo

from app.audit import Actor, act_as
from app.errors import KassaError
from app.extensions import DATABASE_UNAVAILABLE, database_failure, db, is_missing_table
from app.money import MoneyError, parse_rubles

logger = logging.getLogger(__name__)


@contextmanager
def _one_line_errors():
    """A refusal of Kassa's or a database that cannot be reached ends the command with one
    line, not a traceback."""
    try:
        yield
    except KassaError as exc:
        raise click.ClickException(f"{exc.code}: {exc.message}") from exc
    except (*DATABASE_UNAVAILABLE, sa.exc.ProgrammingError) as exc:
        if isinstance(exc, sa.exc.ProgrammingError) and not is_missing_table(exc):
            raise
        failure = database_failure(exc, current_app.config["SQLALCHEMY_DATABASE_URI"])
        raise click.ClickException(f"the database cannot be used: {failure}") from None


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (a container without the user in passwd)
        return "unknown"


@contextmanager
def _as_cli_user(ctx: click.Context):
    """The command runs in the app's context as the audit actor "cli", labelled with the OS
    user. The context is pushed here (Flask's `with_appcontext` then reuses it), so the
    actor is set in the very context the command's services record in."""
    with ExitStack() as stack:
        if not current_app:
            stack.enter_context(ctx.ensure_object(ScriptInfo).load_app().app_context())
        act_as(Actor("cli", label=_os_user(), source="cli"))
        yield


class KassaGroup(AppGroup):
    """A group of commands that act as the OS user (audit log) and report a refusal or an
    unreachable database in one line."""

    def invoke(self, ctx: click.Context):
        with _as_cli_user(ctx), _one_line_errors():
            return super().invoke(ctx)


class KassaCommand(click.Command):
    """A command that acts as the OS user (audit log) and reports a refusal or an
    unreachable database in one line."""

    def invoke(self, ctx: click.Context):
        with _as_cli_user(ctx), _one_line_errors():
            return super().invoke(ctx)


qr_cli = KassaGroup("qr", help="Create and inspect SBP QR codes.")
sbp_cli = KassaGroup("sbp", help="Settings at the bank.")
demo_cli = KassaGroup("demo", help="Demo data for a first look.")
payment_cli = KassaGroup("payment", help="Payments: review and refunds.")
receipt_cli = KassaGroup("receipt", help="54-FZ receipts.")
cashier_cli = KassaGroup("cashier", help="Staff of the Telegram bot: cashiers and managers.")
bot_cli = KassaGroup("bot", help="The Telegram bot: webhook, menu button, polling.")
admin_cli = KassaGroup("admin", help="Accounts of the admin panel.")
api_client_cli = KassaGroup("api-client", help="Keys of the constructor API (/api/v1).")


def _print(data) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


def _amount(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return parse_rubles(value)
    except MoneyError as exc:
        raise click.BadParameter(str(exc), param_hint="--amount") from exc


@qr_cli.command("create")
@click.option("--type", "kind", type=click.Choice(["dynamic", "static", "cash-link"]),
              default="dynamic", show_default=True)
@click.option("--amount", help="Sum in rubles, e.g. 100 or 1250.50.")
@click.option("--ttl", type=int, help="Minutes a dynamic QR / cash-link sale stays payable.")
@click.option("--description", help="Payment purpose shown to the payer.")
def qr_create(kind: str, amount: str | None, ttl: int | None, description: str | None):
    """Create a QR code at the bank and print it as JSON."""
    from app.models import OrderChannel
    from app.orders.services import create_amount_order
    from app.sbp import qrcodes
    from app.sbp.serialize import qr_to_dict

    kopecks = _amount(amount)
    _check_qr_create(kind, kopecks, ttl, description)
    if kind == "dynamic":
        order = create_amount_order(channel=OrderChannel.CLI, amount_kopecks=kopecks,
                                    description=description)
        qr = qrcodes.create_dynamic_qr(order.id, ttl_minutes=ttl)
    elif kind == "static":
        qr = qrcodes.create_static_qr(amount_kopecks=kopecks, description=description)
    else:
        qr = qrcodes.register_cash_link(description=description)
        if kopecks is not None:
            order = create_amount_order(channel=OrderChannel.CLI, amount_kopecks=kopecks,
                                        description=description)
            qrcodes.activate_cash_link(qr.id, order.id, ttl_minutes=ttl)
    _print(qr_to_dict(db.session.get(type(qr), qr.id)))


def _check_qr_create(kind: str, kopecks: int | None, ttl: int | None,
                     description: str | None) -> None:
    """Everything `qr create` checks before it writes an order or calls the bank.

    :raises click.UsageError: options that do not go together.
    :raises ValidationError: a sum, a lifetime or a description out of range.
    """
    from app.sbp import limits

    if kind == "dynamic" and kopecks is None:
        raise click.UsageError("a dynamic QR needs --amount")
    if ttl is not None and (kind == "static" or kopecks is None):
        raise click.UsageError("--ttl is for a dynamic QR or a cash-link sale (with --amount)")
    if kopecks is not None:
        limits.check_amount(kopecks)
    if kind == "dynamic" or (kind == "cash-link" and kopecks is not None):
        limits.ttl(ttl)
    if kind == "cash-link":
        limits.check_cash_link_description(description)
    else:
        limits.check_purpose(description)


@qr_cli.command("show")
@click.argument("ident")
def qr_show(ident: str):
    """Print a QR code's current state (by our id or the bank's qrId) as JSON."""
    from app.models import QrCode
    from app.sbp.serialize import qr_to_dict

    query = sa.select(QrCode).where(QrCode.qr_id == ident)
    if ident.isdigit():
        query = sa.select(QrCode).where(sa.or_(QrCode.id == int(ident), QrCode.qr_id == ident))
    qr = db.session.scalars(query).first()
    if qr is None:
        raise click.ClickException(f"no QR code {ident}")
    _print(qr_to_dict(qr, details=True))


@payment_cli.command("refund")
@click.argument("payment_id", type=int)
@click.option("--amount", help="Rubles to refund; the whole rest when omitted.")
@click.option("--reason", help="Why, for the bank and the admin log.")
def payment_refund(payment_id: int, amount: str | None, reason: str | None):
    """Refund a payment in full or in part; the worker sends it to the bank."""
    from app.sbp.refunds import request_refund
    from app.sbp.serialize import refund_to_dict

    refund = request_refund(payment_id, _amount(amount), reason=reason)
    _print(refund_to_dict(refund))


@payment_cli.command("accept")
@click.argument("payment_id", type=int)
def payment_accept(payment_id: int):
    """Accept a payment flagged for review: it counts as paid and gets its receipt."""
    from app.sbp.bank_events import accept_payment
    from app.sbp.serialize import payment_to_dict

    payment = accept_payment(payment_id)
    _print(payment_to_dict(payment))


@receipt_cli.command("show")
@click.argument("receipt_id", type=int)
def receipt_show(receipt_id: int):
    """Print a receipt (status, external id, fiscal data, page URL) as JSON."""
    from app.fiscal.views import receipt_to_dict
    from app.models import Receipt

    receipt = db.session.get(Receipt, receipt_id)
    if receipt is None:
        raise click.ClickException(f"no receipt {receipt_id}")
    _print(receipt_to_dict(receipt))


@receipt_cli.command("retry")
@click.argument("receipt_id", type=int)
def receipt_retry(receipt_id: int):
    """Send a failed receipt to the register again, under a new external id."""
    from app.fiscal.services import retry_failed
    from app.fiscal.views import receipt_to_dict

    receipt = retry_failed(receipt_id)
    _print(receipt_to_dict(receipt))


def _telegram_id(value: str) -> int:
    """TELEGRAM_ID as typed; anything but a positive integer is refused in one line."""
    from app.people.services import check_telegram_id

    try:
        number = int(value.strip())
    except ValueError:
        number = 0  # refused below with the same message
    return check_telegram_id(number)


# "-5" is a bad TELEGRAM_ID to refuse in one line, not an unknown option.
_ID_ARGUMENT = {"ignore_unknown_options": True}


def _staff_to_dict(member) -> dict:
    return {
        "telegram_id": member.telegram_id, "name": member.name, "active": member.active,
        "cashier": member.is_cashier, "manager": member.is_manager,
        "can_edit_catalog": member.can_edit_catalog, "till_id": member.till_id,
    }


@cashier_cli.command("add", context_settings=_ID_ARGUMENT)
@click.argument("telegram_id")
@click.option("--name", help="How the staff member is shown.")
@click.option("--manager", is_flag=True, help="May decide on requests for access.")
@click.option("--catalog", is_flag=True, help="May edit the catalog.")
def cashier_add(telegram_id: str, name: str | None, manager: bool, catalog: bool):
    """Add a cashier (or update and re-activate one) and print it as JSON."""
    from app.people.services import add_staff

    member = add_staff(_telegram_id(telegram_id), name=name, manager=manager,
                       can_edit_catalog=catalog)
    _print(_staff_to_dict(member))


@cashier_cli.command("disable", context_settings=_ID_ARGUMENT)
@click.argument("telegram_id")
def cashier_disable(telegram_id: str):
    """Take a staff member's access away."""
    from app.people.services import disable_staff

    member = disable_staff(_telegram_id(telegram_id))
    _print(_staff_to_dict(member))


@cashier_cli.command("till", context_settings=_ID_ARGUMENT)
@click.argument("telegram_id")
@click.argument("qr_code_id", required=False, type=click.IntRange(min=1))
@click.option("--none", "clear", is_flag=True, help="Take the staff member off their till.")
def cashier_till(telegram_id: str, qr_code_id: int | None, clear: bool):
    """Put a cashier at a till: the cash link QR_CODE_ID (see `flask qr create --type
    cash-link`), so the Mini App offers it; --none takes them off."""
    from app.people.services import assign_till

    if (qr_code_id is None) == (not clear):
        raise click.UsageError("give either QR_CODE_ID or --none")
    member = assign_till(_telegram_id(telegram_id), None if clear else qr_code_id)
    _print(_staff_to_dict(member))


@cashier_cli.command("list")
def cashier_list():
    """Print every staff member, active or not, as JSON."""
    from app.people.services import staff_list

    _print([_staff_to_dict(member) for member in staff_list()])


@bot_cli.command("set-webhook")
def bot_set_webhook():
    """Point Telegram at PUBLIC_URL/telegram/webhook (with the secret), set the chat's
    menu button "Касса" to the Mini App and the command list."""
    from app.telegram.setup import set_webhook

    set_webhook(click.echo)


@bot_cli.command("poll")
@click.option("--delete-webhook", is_flag=True,
              help="Remove a webhook set earlier (Telegram refuses polling while one is set).")
@click.option("--once", is_flag=True, help="Stop after the first answer (for scripts).")
def bot_poll(delete_webhook: bool, once: bool):
    """Development: long-poll Telegram and queue each update for the worker, which must run
    (`flask worker`; `make run` already runs one). Stop with Ctrl-C."""
    from app.telegram.setup import poll

    try:
        poll(click.echo, delete_webhook=delete_webhook, once=once)
    except KeyboardInterrupt:
        click.echo("stopped")


@sbp_cli.command("set-callback")
@click.option("--url", help="Defaults to PUBLIC_URL/sbp/callback.")
def sbp_set_callback(url: str | None):
    """Register the callback URL with the bank."""
    from app.sbp.bank_events import set_callback_url

    registered = set_callback_url(url)
    click.echo(f"callback URL registered: {registered}")


@click.command("worker", cls=KassaCommand)
@click.option("--burst", is_flag=True, help="Exit when no job is due (for scripts).")
@click.option("--batch", default=50, show_default=True, type=click.IntRange(min=1),
              help="The most jobs one claim takes.")
def worker_command(burst: bool, batch: int):
    """Run queued jobs and the periodic reconciler until stopped."""
    from app.jobs.worker import Worker

    worker = Worker(current_app._get_current_object(), batch=batch)
    if burst:
        worker.run(burst=True)
        return

    def stop(signum, _frame):
        logger.info("signal %s: finishing the current job, then stopping", signum)
        worker.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    worker.run()


@admin_cli.command("create")
@click.argument("email")
@click.option("--password", help="Asked twice, hidden, when omitted (a password given here "
                                 "stays in the shell's history).")
@click.option("--viewer", is_flag=True, help="Read-only: sees the panel, changes nothing.")
def admin_create(email: str, password: str | None, viewer: bool):
    """Create an account of the admin panel (an admin unless --viewer)."""
    from app.admin.services import check_password, clean_email, create_admin
    from app.models import AdminRole

    clean_email(email)  # a bad email is refused before the password is asked for
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    check_password(password)
    user = create_admin(email, password, AdminRole.VIEWER if viewer else AdminRole.ADMIN)
    click.echo(f"{user.role.value} {user.email} created; log in at /admin/login")


@api_client_cli.command("create")
@click.argument("name")
@click.option("--preset", type=click.Choice(["salebot", "puzzlebot", "leadteh", "smartbot",
                                             "botmother", "bothelp", "webhook"]),
              default="webhook", show_default=True, help="How the client is called back.")
@click.option("--callback-url", help="Where callbacks go (the webhook or the constructor's).")
@click.option("--setting", "settings", multiple=True, metavar="KEY=VALUE",
              help="A preset setting, e.g. api_key=... for Salebot, token=... for PuzzleBot "
                   "(repeat for more; docs/constructors.md lists them).")
def api_client_create(name: str, preset: str, callback_url: str | None,
                      settings: tuple[str, ...]):
    """Create an API client and print its key (shown this once, kept only hashed)."""
    from app.constructor.clients import client_to_dict, create_client

    pairs = [item.partition("=") for item in settings]
    if any(not key.strip() or not sep for key, sep, _ in pairs):
        raise click.UsageError("--setting takes KEY=VALUE")
    client, key = create_client(name, preset=preset, callback_url=callback_url,
                                settings={k.strip(): v for k, _, v in pairs})
    shown = {**client_to_dict(client), "key": key}
    if (client.settings or {}).get("secret"):  # the webhook preset's signing secret
        shown["signing_secret"] = client.settings["secret"]
    _print(shown)
    click.echo("Save the key now: it is not shown again.", err=True)


@api_client_cli.command("list")
def api_client_list():
    """Print every API client (without keys) as JSON."""
    from app.constructor.clients import client_to_dict, list_clients

    _print([client_to_dict(client) for client in list_clients()])


@api_client_cli.command("revoke")
@click.argument("client_id", type=click.IntRange(min=1))
def api_client_revoke(client_id: int):
    """Revoke a client's key: its requests are refused from now on."""
    from app.constructor.clients import client_to_dict, revoke_client

    _print(client_to_dict(revoke_client(client_id)))


@demo_cli.command("seed")
def demo_seed():
    """A small demo catalog (safe to run again)."""
    from app.demo import seed

    created = seed()
    click.echo(f"demo catalog ready ({created} new products)")


def register(app: Flask) -> None:
    from app.doctor import doctor_command
    from app.sandbox.cli import sandbox_cli
    from app.storefront.cli import shop_cli

    for command in (qr_cli, sbp_cli, demo_cli, payment_cli, receipt_cli, cashier_cli,
                    bot_cli, admin_cli, api_client_cli, shop_cli, worker_command, doctor_command,
                    sandbox_cli):
        app.cli.add_command(command)
    # Flask-Migrate's `flask db` (entrypoint.sh retries `db upgrade` while the database
    # starts): the same commands in a group that reports an unreachable database in one line.
    migrations = app.cli.commands.get("db")
    if isinstance(migrations, click.Group):
        app.cli.add_command(KassaGroup(
            "db", commands=migrations.commands, callback=migrations.callback,
            params=migrations.params, help=migrations.help,
        ))
