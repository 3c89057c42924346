"""Storefront benchmark: 200 customers browsing and buying at once in the shop's Mini App.

One run, everything on 127.0.0.1, started and stopped by this script:

1. a fresh PostgreSQL database (DROP/CREATE) and `flask db upgrade`; a catalog of published
   products in categories (stock counted on some, enough for every order), the storefront
   switched on with pickup and delivery;
2. the sandbox bank (`flask sandbox run`, calling Kassa back), Kassa (`wsgi:app`) under
   gunicorn (2 sync workers), one job worker (`flask worker`), and a fake Telegram Bot API
   in this process that notes when each call arrived;
3. N customers at once (each a Telegram user with initData signed for the bench's bot token,
   on a phone): GET /shop/catalog, a category, a product card, POST /shop/cart,
   POST /shop/checkout, POST /shop/orders (contact, pickup or delivery), then pays the QR
   in the sandbox (`POST /sandbox/qrs/<qrId>/pay`, the bank then calls Kassa back) and polls
   GET /shop/orders/<id>/status?seen=pending every second, as the order screen does, until
   the screen shows paid;
4. measured: orders created per second, p50/p99 of the catalog and of order creation, and
   from the bank's callback (the sandbox's delivery time) to "paid" on the customer's screen
   and to the customer's Telegram message (the fake Bot API's sendMessage to their chat).

The routes are the storefront's contract (docs: spec of issue 13; app/storefront/views.py):
the order screen carries `data-order="<public_id>"` and the payment link
`https://qr.nspk.ru/<qrId>?...`.

    .venv/bin/python bench/storefront.py              # 200 customers
    .venv/bin/python bench/storefront.py --quick      # 20 customers: a smoke run

Prints a table and writes bench/results/storefront-<UTC time>.json (logs in
bench/results/logs-storefront-<time>/). Exit status 1 when an order failed, a payment did
not show as paid, or the customer's message never came; missing a goal does not change it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

if __package__ in (None, ""):  # run as a script: make `bench`, `app` and `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (
    HOST,
    RESULTS,
    ROOT,
    Processes,
    RawConnection,
    Req,
    code_version,
    free_port,
    percentile,
    recreate_database,
    shop_env,
    step,
    stop_on_signals,
    utc_stamp,
    wait_http,
)

BOT_TOKEN = "7000002:bench-storefront-bot-token"  # noqa: S105 - the fake Bot API's
FIRST_CUSTOMER_ID = 810_000
GOALS = {"catalog_p99_ms": 500, "order_p99_ms": 2000, "paid_p99_ms": 2000,
         "message_p99_ms": 1000}
PHONE_UA = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0 Mobile Safari/537.36 Telegram-Android/11.2.3")
ORDER_ID = re.compile(rb'data-order="([^"]+)"')
PAID_SCREEN = b'data-state="paid:'
POLL_SECONDS = 1.0  # as templates/storefront/order.html
PAY_LINK = re.compile(rb"https://qr\.nspk\.ru/([A-Za-z0-9]+)")
STOP_POLLING = 286

# The catalog: name, price in kopecks, measure, category, stock (thousandths; None: not counted).
PRODUCTS = [
    ("Капучино 300 мл", 22000, "piece", "Кофе", None),
    ("Американо 250 мл", 16000, "piece", "Кофе", None),
    ("Латте 400 мл", 26000, "piece", "Кофе", None),
    ("Круассан с миндалём", 18500, "piece", "Выпечка", 100_000_000),
    ("Булочка с корицей", 14000, "piece", "Выпечка", 100_000_000),
    ("Кофе в зёрнах, Эфиопия", 320000, "kilogram", "Зерно", 100_000_000),
    ("Кофе в зёрнах, Колумбия", 290000, "kilogram", "Зерно", None),
    ("Чай улун", 25000, "piece", "Чай", None),
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--customers", type=int, default=200, help="customers at once [200]")
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers [2]")
    p.add_argument("--job-workers", type=int, default=1, help="`flask worker` processes [1]")
    p.add_argument("--ramp", type=float, default=2.0,
                   help="seconds over which the customers arrive [2]")
    p.add_argument("--think", type=float, default=1.0,
                   help="at most this many seconds between a customer's steps [1]")
    p.add_argument("--paid-timeout", type=float, default=30.0,
                   help="seconds a customer polls for 'paid' before it counts as failed [30]")
    p.add_argument("--message-timeout", type=float, default=15.0,
                   help="seconds to wait after the last payment for the customers' messages")
    p.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432")
    p.add_argument("--db-name", default="kassa_bench_storefront")
    p.add_argument("--request-timeout", type=float, default=60.0)
    p.add_argument("--seed", type=int, default=1, help="of the customers' random choices")
    p.add_argument("--deadline", type=int, default=900, help="abort after this many s [900]")
    p.add_argument("--quick", action="store_true", help="20 customers")
    args = p.parse_args(argv)
    if args.quick:
        args.customers = 20
    if args.customers < 1:
        p.error("--customers must be at least 1")
    return args


# -- the customer's requests -----------------------------------------------------------------


def init_data(telegram_id: int) -> str:
    """initData as Telegram signs it for this customer."""
    from app.telegram.initdata import sign_init_data

    user = {"id": telegram_id, "first_name": "Покупатель", "last_name": str(telegram_id),
            "username": f"buyer{telegram_id}", "language_code": "ru",
            "allows_write_to_pm": True}
    return sign_init_data({
        "query_id": f"AAB{telegram_id}", "auth_date": str(int(time.time())),
        "user": json.dumps(user, ensure_ascii=False, separators=(",", ":")),
    }, bot_token=BOT_TOKEN)


def shop_req(key: str, method: str, path: str, auth: str,
             form: list[tuple[str, str]] | None = None) -> Req:
    headers = [("Authorization", f"tma {auth}"), ("User-Agent", PHONE_UA),
               ("HX-Request", "true")]
    body = b""
    if form is not None:
        body = urlencode(form).encode()
        headers.append(("Content-Type", "application/x-www-form-urlencoded"))
    # Req.render writes the header values as ASCII: initData is percent-encoded already.
    return Req(key, method, path, body, tuple(headers))


@dataclass
class Customer:
    index: int
    telegram_id: int
    timings: dict[str, float] = field(default_factory=dict)   # step -> seconds
    statuses: dict[str, int | None] = field(default_factory=dict)
    order: str | None = None
    qr_id: str | None = None
    transaction_id: str | None = None
    paid_at: float | None = None       # when the pay call to the sandbox returned (wall)
    paid_seen_at: float | None = None  # when the status poll first answered 286
    created_at: float | None = None    # when the order's answer arrived (wall)
    error: str | None = None


async def _timed(conn: RawConnection, req: Req, port: int) -> tuple[int | None, bytes, float]:
    started = time.perf_counter()
    try:
        status, body = await conn.request(req.render(port))
    except (OSError, asyncio.IncompleteReadError, RuntimeError) as exc:
        conn.close()
        return None, f"{type(exc).__name__}: {exc}".encode(), time.perf_counter() - started
    return status, body, time.perf_counter() - started


async def shop_visit(customer: Customer, products: list[dict], categories: list[int], *,
                     kassa_port: int, bank_port: int, args: argparse.Namespace,
                     rng: random.Random) -> None:
    """One customer: browse, buy, pay, wait for 'paid'."""
    auth = init_data(customer.telegram_id)
    kassa, bank = RawConnection(kassa_port), RawConnection(bank_port)
    await asyncio.sleep(rng.uniform(0, args.ramp))

    async def step_(name: str, req: Req, expect: tuple[int, ...] = (200,)) -> bytes | None:
        status, body, seconds = await _timed(kassa, req, kassa_port)
        customer.timings[name] = seconds
        customer.statuses[name] = status
        if status not in expect:
            customer.error = f"{name}: {status} {body[:80]!r}"
            return None
        return body

    try:
        if await step_("catalog", shop_req("catalog", "GET", "/shop/catalog", auth)) is None:
            return
        await asyncio.sleep(rng.uniform(0, args.think))
        category = rng.choice(categories) if categories else None
        if category is not None:
            await step_("category", shop_req("category", "GET",
                                             f"/shop/catalog?category={category}", auth))
        chosen = rng.sample(products, k=min(len(products), rng.randint(1, 3)))
        await step_("product", shop_req("product", "GET", f"/shop/products/{chosen[0]['id']}",
                                        auth))
        lines = [(p, 1000 if p["measure"] == "piece" else 500) for p in chosen]
        cart = [pair for p, qty in lines
                for pair in (("product_id", str(p["id"])), ("qty", f"{qty / 1000:g}"))]
        await asyncio.sleep(rng.uniform(0, args.think))
        if await step_("cart", shop_req("cart", "POST", "/shop/cart", auth, cart)) is None:
            return
        if await step_("checkout", shop_req("checkout", "POST", "/shop/checkout", auth,
                                            cart)) is None:
            return
        total = sum(p["price"] * qty // 1000 for p, qty in lines)
        delivery = rng.choice([("pickup", ""), ("delivery", "ул. Мира, 5, кв. 12")])
        form = [*cart, ("expected_total", str(total)),
                ("contact", f"+7900{customer.telegram_id:07d}"[:12]),
                ("delivery", delivery[0]), ("address", delivery[1]), ("comment", "")]
        await asyncio.sleep(rng.uniform(0, args.think))
        body = await step_("order", shop_req("order", "POST", "/shop/orders", auth, form))
        customer.created_at = time.time()
        if body is None:
            return
        found, link = ORDER_ID.search(body), PAY_LINK.search(body)
        if found is None or link is None:
            customer.error = "order screen without data-order or a qr.nspk.ru link"
            return
        customer.order, customer.qr_id = found.group(1).decode(), link.group(1).decode()
        await asyncio.sleep(rng.uniform(0, args.think))  # the customer opens the bank app
        pay = json.dumps({"status": "SUCCESS"}).encode()
        status, answer, _ = await _timed(bank, Req("pay", "POST",
                                                   f"/sandbox/qrs/{customer.qr_id}/pay", pay,
                                                   (("Content-Type", "application/json"),)),
                                         bank_port)
        customer.paid_at = time.time()
        if status != 200:
            customer.error = f"pay: {status} {answer[:200]!r}"
            return
        customer.transaction_id = str(json.loads(answer)["transactionId"])
        deadline = time.monotonic() + args.paid_timeout
        while time.monotonic() < deadline:
            # As the order screen polls: every second, saying what it shows (204: no change).
            status, body, _ = await _timed(kassa, shop_req(
                "status", "GET", f"/shop/orders/{quote(customer.order)}/status?seen=pending",
                auth), kassa_port)
            if status in (200, STOP_POLLING) and PAID_SCREEN in body:
                customer.paid_seen_at = time.time()
                return
            if status not in (200, 204, STOP_POLLING):
                customer.error = f"status: {status} {body[:80]!r}"
                return
            await asyncio.sleep(POLL_SECONDS)
        customer.error = f"not paid on screen within {args.paid_timeout}s"
    finally:
        kassa.close()
        bank.close()


async def all_customers(customers: list[Customer], products, categories, *,
                        kassa_port: int, bank_port: int, args) -> float:
    rng = random.Random(args.seed)
    started = time.perf_counter()
    await asyncio.gather(*(shop_visit(c, products, categories, kassa_port=kassa_port,
                                      bank_port=bank_port, args=args,
                                      rng=random.Random(rng.random())) for c in customers))
    return time.perf_counter() - started


# -- the stack -------------------------------------------------------------------------------


SEED_SCRIPT = """
import json, sys
from app import create_app
from app.catalog.services import create_product
from app.storefront.categories import add_category
from app.people.services import add_staff
from app.storefront.settings import update_settings
products = json.loads(sys.argv[1])
with create_app().app_context():
    ids = {}
    out = []
    for name, price, measure, category, stock in products:
        if category not in ids:
            ids[category] = add_category(category).id
        p = create_product(name=name, price_kopecks=price, measure=measure, is_published=True,
                           category_id=ids[category], stock_milli=stock)
        out.append({"id": p.id, "price": price, "measure": measure})
    update_settings(storefront_enabled=True, pickup_enabled=True,
                    pickup_address="ул. Ленина, 1", delivery_enabled=True,
                    delivery_terms="По городу за 2 часа")
    # A manager: each paid order is also a message to them, as in a real shop.
    add_staff(810000 - 1, name="Менеджер", cashier=False, manager=True)
    print(json.dumps({"products": out, "categories": list(ids.values())}))
"""

COUNT_SCRIPT = """
import json
import sqlalchemy as sa
from app import create_app
from app.extensions import db
from app.models import Order, OrderChannel, OrderStatus
with create_app().app_context():
    rows = db.session.execute(sa.select(Order.status, sa.func.count()).where(
        Order.channel == OrderChannel.STOREFRONT).group_by(Order.status)).all()
    print(json.dumps({status.value: n for status, n in rows}))
"""


def timed_bot():
    """The fake Bot API (tests/telegram/fakebot.py), noting when each call arrived."""
    from bench.miniapp import timed_bot as make

    return make()


def _python(env: dict[str, str], code: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env, check=True,
                          capture_output=True, text=True, timeout=120)
    return done.stdout.strip().splitlines()[-1]


def _sandbox_sent_at(bank_port: int) -> dict[str, float]:
    """{transactionId: when the sandbox first sent its callback to Kassa (wall clock)}."""
    import http.client

    conn = http.client.HTTPConnection(HOST, bank_port, timeout=30)
    try:
        conn.request("GET", "/sandbox/state")
        state = json.loads(conn.getresponse().read())
    finally:
        conn.close()
    sent = {}
    for delivery in state.get("deliveries", []):
        if delivery.get("attempts"):
            first = delivery["attempts"][0]["at"]
            sent[str(delivery["transactionId"])] = datetime.fromisoformat(first).timestamp()
    return sent


def _message_times(bot, customers: list[Customer]) -> dict[int, float]:
    """{customer's telegram id: when the first sendMessage to their chat arrived}."""
    ids = {c.telegram_id for c in customers}
    found: dict[int, float] = {}
    with bot._lock:
        calls = list(zip(bot.calls, bot.arrivals, strict=False))
    for call, at in calls:
        if call.method != "sendMessage":
            continue
        try:
            chat = int(call.params.get("chat_id"))
        except (TypeError, ValueError):
            continue
        if chat in ids and chat not in found:
            found[chat] = at
    return found


# -- the report ------------------------------------------------------------------------------


def summary_ms(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)
    return {"n": len(ordered), "p50": round(percentile(ordered, 50) * 1000, 1),
            "p99": round(percentile(ordered, 99) * 1000, 1),
            "max": round(ordered[-1] * 1000, 1)}


def build_report(customers: list[Customer], wall: float, sent_at: dict[str, float],
                 messages: dict[int, float], counts: dict[str, int]) -> dict[str, Any]:
    created = [c for c in customers if c.order]
    first = min((c.created_at for c in created), default=None)
    last = max((c.created_at for c in created), default=None)

    def timing(name: str) -> list[float]:
        return [c.timings[name] for c in customers
                if name in c.timings and c.statuses.get(name) == 200]

    to_message, no_message, to_screen = [], [], []
    for c in customers:
        if c.paid_seen_at is None or c.transaction_id is None:
            continue
        sent = sent_at.get(c.transaction_id)
        got = messages.get(c.telegram_id)
        if sent is not None:
            to_screen.append(c.paid_seen_at - sent)
        if sent is None or got is None:
            no_message.append(c.index)
        else:
            to_message.append(got - sent)
    return {
        "customers": len(customers),
        "wall_seconds": round(wall, 2),
        "orders_created": len(created),
        # Over the whole run (customers think between steps) and over the stretch in which
        # orders were being created.
        "orders_per_second": round(len(created) / wall, 2) if wall else None,
        "orders_per_second_while_ordering": round(len(created) / (last - first), 2)
        if created and last > first else None,
        "catalog": summary_ms(timing("catalog") + timing("category")),
        "product": summary_ms(timing("product")),
        "cart": summary_ms(timing("cart")),
        "checkout": summary_ms(timing("checkout")),
        "order_creation": summary_ms(timing("order")),
        "callback_to_paid_on_screen": summary_ms(to_screen),
        "callback_to_message": summary_ms(to_message),
        "paid_on_screen": len([c for c in customers if c.paid_seen_at]),
        "without_message": no_message[:20],
        "without_message_count": len(no_message),
        "order_statuses_in_db": counts,
        "failures": [{"customer": c.index, "what": c.error} for c in customers if c.error],
    }


def print_report(report: dict[str, Any]) -> None:
    def row(name, value, goal="", ok=True):
        print(f"  {name:<46} {value:>14}  {goal:<14} {'' if ok else 'MISSED'}")

    print(f"\nStorefront benchmark: {report['customers']} customers at once")
    row("orders created", str(report["orders_created"]))
    row("orders/s (whole run)", str(report["orders_per_second"]))
    row("orders/s (while orders were placed)", str(report["orders_per_second_while_ordering"]))
    for name, key, goal in (("catalog page", "catalog", "catalog_p99_ms"),
                            ("order creation", "order_creation", "order_p99_ms"),
                            ("callback -> paid on the customer's screen",
                             "callback_to_paid_on_screen", "paid_p99_ms"),
                            ("callback -> customer's message", "callback_to_message",
                             "message_p99_ms")):
        figures = report[key]
        if figures is None:
            row(f"{name} p99", "not measured")
            continue
        row(f"{name} p50", f"{figures['p50']:.0f} ms")
        row(f"{name} p99", f"{figures['p99']:.0f} ms", f"goal < {GOALS[goal]} ms",
            figures["p99"] < GOALS[goal])
    row("paid on the customer's screen", str(report["paid_on_screen"]))
    if report["without_message_count"]:
        row("paid without the customer's message", str(report["without_message_count"]))
    if report["failures"]:
        print(f"  FAILED customers: {len(report['failures'])}, e.g. {report['failures'][:3]}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stamp = utc_stamp()
    log_dir = RESULTS / f"logs-storefront-{stamp}"
    log_dir.mkdir(parents=True, exist_ok=True)
    stop_on_signals(args.deadline, "the run")
    from bench.callbacks import gunicorn_argv

    args.worker_class, args.threads = "sync", 0  # gunicorn_argv's
    bank_port, kassa_port = free_port(), free_port()
    bot = timed_bot()
    env = shop_env("storefront", database_url=f"{args.pg_url}/{args.db_name}",
                   bank_port=bank_port, public_url=f"http://{HOST}:{kassa_port}",
                   bot_url=bot.url, bot_token=BOT_TOKEN)
    procs = Processes(log_dir)
    report: dict[str, Any] = {"started": stamp, "code": code_version(), "goals": GOALS,
                              "settings": {k: v for k, v in vars(args).items()
                                           if k != "pg_url"}}
    ok = False
    try:
        step("database", f"DROP/CREATE {args.db_name}, flask db upgrade, the catalog")
        recreate_database(args.pg_url, args.db_name)
        flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
        subprocess.run([*flask, "db", "upgrade"], cwd=ROOT, env=env, check=True, timeout=120,
                       stdout=(log_dir / "migrate.log").open("wb"), stderr=subprocess.STDOUT)
        seeded = json.loads(_python(env, SEED_SCRIPT, json.dumps(PRODUCTS)))
        procs.start("sandbox", [*flask, "sandbox", "run", "--port", str(bank_port)], env)
        procs.start("kassa-web", gunicorn_argv(args, "wsgi:app", kassa_port), env)
        for n in range(args.job_workers):
            procs.start(f"worker{n + 1}" if n else "worker", [*flask, "worker"], env)
        wait_http(kassa_port, "GET", "/readyz", body=None, procs=procs)
        wait_http(bank_port, "GET", "/sandbox/state", body=None, procs=procs)
        subprocess.run([*flask, "sbp", "set-callback"], cwd=ROOT, env=env, check=True,
                       timeout=60, capture_output=True)
        step("servers", f"kassa :{kassa_port} (gunicorn {args.workers} workers), sandbox "
                        f":{bank_port}, {args.job_workers} job worker(s), fake Bot API {bot.url}")

        customers = [Customer(i, FIRST_CUSTOMER_ID + i) for i in range(args.customers)]
        step("customers", f"{args.customers} customers browse, order and pay")
        wall = asyncio.run(all_customers(customers, seeded["products"], seeded["categories"],
                                         kassa_port=kassa_port, bank_port=bank_port,
                                         args=args))
        step("messages", f"up to {args.message_timeout}s for the customers' messages")
        paid = [c for c in customers if c.paid_seen_at]
        deadline = time.monotonic() + args.message_timeout
        while time.monotonic() < deadline and len(_message_times(bot, paid)) < len(paid):
            time.sleep(0.2)
        procs.check_alive()
        report["results"] = build_report(customers, wall, _sandbox_sent_at(bank_port),
                                         _message_times(bot, customers),
                                         json.loads(_python(env, COUNT_SCRIPT)))
        results = report["results"]
        ok = (not results["failures"] and results["orders_created"] == args.customers
              and results["paid_on_screen"] == args.customers
              and results["without_message_count"] == 0)
    finally:
        procs.stop()
        bot.stop()
    report["ok"] = ok
    out = RESULTS / f"storefront-{stamp}.json"
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    if "results" in report:
        print_report(report["results"])
    print(f"\nreport: {out.relative_to(ROOT)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
