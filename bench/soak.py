"""Soak benchmark: the mixed load of a busy shop for 10 minutes, on the whole stack.

Everything on 127.0.0.1, started and stopped by this script:

1. a fresh PostgreSQL database (DROP/CREATE) and `flask db upgrade`; the storefront's catalog
   (bench/storefront.py's seed), cashiers, an API client and an admin account;
2. two web processes: two gunicorn instances on two ports (`--web-workers` sync workers each,
   2 by default), two job workers (`flask worker`), the sandbox bank and ATOL register
   (`flask sandbox run`, receipts on) and, in this process, the fake Telegram Bot API;
3. checkouts arriving at `--rate` per second (Poisson), each one of
   - a cashier's sale in the Mini App: catalog, cart, order with a dynamic QR, the QR screen
     polled every 0.5 s as htmx does until paid with its receipt;
   - a constructor API payment: create, status polled every second;
   - a storefront customer: catalog, a category, a product, cart, checkout, order, the
     order screen polled every second;
   each paid through the sandbox's control endpoint (the sandbox then sends Kassa the bank's
   signed callback), some declined (the cashier or the bot then cancels), some constructor
   payments left to expire (a 1-minute TTL, noticed by the reconciler); and beside them an
   admin who looks at the payments list (filtered, sorted) and now and then refunds a payment
   through the panel's form (login with CSRF, then the refund form), and /healthz;
4. measured after a warm-up (`--warmup`, 60 s): per endpoint (route template) count,
   throughput, p50/p99; every error (5xx, connection error, a status the flow did not
   expect); RSS/PSS of each process at the start and the end, and every 30 s; at the end,
   every paid QR has exactly one payment and one done receipt, and the job queue is drained.

    .venv/bin/python bench/soak.py                 # 10 minutes at 3 checkouts/s
    .venv/bin/python bench/soak.py --quick         # 1 minute (20 s warm-up)
    .venv/bin/python bench/soak.py --minutes 30 --rate 5

Prints a table and writes bench/results/soak-<UTC time>.json and .md (logs in
bench/results/logs-soak-<time>/). Exit status 1 when a correctness check fails or any
request erred; memory growth over the goal does not change it.
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
from collections import Counter, defaultdict
from dataclasses import dataclass, field
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
    cpu_by_process_group,
    cpu_snapshot,
    free_port,
    percentile,
    process_tree,
    recreate_database,
    shop_env,
    step,
    stop_on_signals,
    utc_stamp,
    wait_http,
)
from bench.storefront import (
    BOT_TOKEN,
    ORDER_ID,
    PAID_SCREEN,
    PAY_LINK,
    PRODUCTS,
    SEED_SCRIPT,
    STOP_POLLING,
    _python,
    init_data,
    shop_req,
)

MEMORY_GOAL_PERCENT = 10
CASHIERS = 4
FIRST_CASHIER_ID = 820_000
FIRST_CUSTOMER_ID = 830_000
ADMIN_EMAIL, ADMIN_PASSWORD = "soak-admin@example.com", "soak-admin-password-1"
TILL_POLL, SHOP_POLL, API_POLL = 0.5, 1.0, 1.0   # the till's htmx, the shop's order screen
PAID_TIMEOUT = 60.0
EXPIRY_TIMEOUT = 180.0
CSRF = re.compile(rb'name="csrf_token"[^>]*value="([^"]+)"')
PAYMENT_LINK = re.compile(rb'href="/admin/payments/(\d+)"')
REFUND_SENT = "отправлен в банк".encode()
FLASH_ERROR = re.compile(rb'class="flash flash-error"[^>]*>([^<]*)<')
# The admin's list views: (filters as the panel's filter form sends them).
ADMIN_LISTS = [
    {},
    {"status": "paid"},
    {"status": "paid", "sort": "-amount"},
    {"channel": "storefront", "sort": "-created"},
    {"status": "refunded", "sort": "created"},
]

EXTRA_SEED = """
import json, sys
from app import create_app
from app.admin.services import create_admin
from app.constructor.clients import create_client
from app.people.services import add_staff
first, count, email, password = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
with create_app().app_context():
    for i in range(count):
        add_staff(first + i, name=f"Кассир {i + 1}")
    create_admin(email, password)
    print(json.dumps({"api_key": create_client("soak", preset="webhook")[1]}))
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10.0, help="measured minutes [10]")
    p.add_argument("--warmup", type=float, default=60.0,
                   help="seconds of the same load before the start figures [60]")
    p.add_argument("--rate", type=float, default=3.0, help="checkouts per second, all kinds [3]")
    p.add_argument("--mix", default="till=40,api=25,shop=35",
                   help="share of each kind of checkout [till=40,api=25,shop=35]")
    p.add_argument("--decline-percent", type=float, default=5.0,
                   help="checkouts whose customer's bank declines [5]")
    p.add_argument("--expire-percent", type=float, default=10.0,
                   help="constructor payments left to expire (TTL 1 minute) [10]")
    p.add_argument("--admin-every", type=float, default=10.0,
                   help="seconds between the admin's looks at the payments list [10]")
    p.add_argument("--refund-every", type=int, default=6,
                   help="every Nth look the admin also refunds a payment [6]")
    p.add_argument("--web-workers", type=int, default=2,
                   help="sync workers of each of the two gunicorn instances [2]")
    p.add_argument("--job-workers", type=int, default=2, help="`flask worker` processes [2]")
    p.add_argument("--sample-every", type=float, default=30.0,
                   help="seconds between memory samples [30]")
    p.add_argument("--drain", type=float, default=240.0,
                   help="at most this many seconds for checkouts in flight and the job "
                        "queue after the load [240]")
    p.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432")
    p.add_argument("--db-name", default="kassa_bench_soak")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--deadline", type=int, default=0,
                   help="abort after this many seconds [the run's length + 15 minutes]")
    p.add_argument("--quick", action="store_true", help="1 minute after a 20 s warm-up")
    args = p.parse_args(argv)
    if args.quick:
        args.minutes, args.warmup = 1.0, 20.0
    try:
        args.mix = {k: float(v) for k, v in (part.split("=") for part in args.mix.split(","))}
    except ValueError:
        p.error("--mix: kind=share,kind=share (kinds: till, api, shop)")
    if set(args.mix) - {"till", "api", "shop"} or sum(args.mix.values()) <= 0:
        p.error("--mix: kinds are till, api and shop, with a positive total")
    if args.rate <= 0 or args.minutes <= 0 or args.warmup < 0:
        p.error("--rate and --minutes must be positive, --warmup not negative")
    if not args.deadline:
        args.deadline = int(args.warmup + args.minutes * 60 + args.drain + 900)
    return args


# -- requests and what they answered ----------------------------------------------------------


@dataclass
class Sample:
    route: str
    status: int | None
    seconds: float
    at: float        # monotonic, when the request was sent
    port: int


@dataclass
class Errored:
    route: str
    status: int | None
    detail: str
    at: float
    phase: str


class Load:
    """Sends each request to one of the web processes and keeps what it answered."""

    def __init__(self, web_ports: list[int], bank_port: int, rng: random.Random):
        self.web_ports, self.bank_port, self.rng = web_ports, bank_port, rng
        self.samples: list[Sample] = []
        self.errors: list[Errored] = []
        self.phase = "warm-up"
        self.outcomes: Counter[str] = Counter()
        self.paid = 0  # SUCCESS payments the sandbox took from this bench

    def error(self, route: str, status: int | None, detail: str) -> None:
        self.errors.append(Errored(route, status, " ".join(detail.split())[:300],
                                   time.monotonic(), self.phase))

    async def call(self, route: str, req: Req, *, expect: tuple[int, ...] = (200,),
                   port: int | None = None, head: list[bytes] | None = None,
                   ) -> tuple[int | None, bytes]:
        """One request (to a random web process unless `port`); any answer not in
        `expect` is an error. Returns (status or None, body); the answer's status line and
        headers are appended to `head` when given."""
        port = port or self.rng.choice(self.web_ports)
        conn = RawConnection(port)
        started = time.monotonic()
        try:
            status, body = await conn.request(req.render(port))
        except (OSError, asyncio.IncompleteReadError, RuntimeError) as exc:
            status, body = None, f"{type(exc).__name__}: {exc}".encode()
        finally:
            conn.close()
        seconds = time.monotonic() - started
        if head is not None:
            head.append(conn.last_head)
        if port != self.bank_port:
            self.samples.append(Sample(route, status, seconds, started, port))
        if status not in expect:
            self.error(route, status, body[:300].decode(errors="replace"))
        return status, body

    async def pay(self, qr_id: str, decline: bool) -> bool:
        """The customer's bank app pays (or the bank declines) at the sandbox, which then
        sends Kassa the bank's signed callback."""
        body = json.dumps({"status": "DECLINED" if decline else "SUCCESS"}).encode()
        status, _ = await self.call("sandbox: POST /sandbox/qrs/<qrId>/pay", Req(
            "pay", "POST", f"/sandbox/qrs/{qr_id}/pay", body,
            (("Content-Type", "application/json"),)), port=self.bank_port)
        self.paid += status == 200 and not decline
        return status == 200


def form(pairs: list[tuple[str, str]]) -> tuple[bytes, tuple[tuple[str, str], ...]]:
    return urlencode(pairs).encode(), (("Content-Type", "application/x-www-form-urlencoded"),)


# -- the checkouts --------------------------------------------------------------------------


@dataclass
class Shop:
    products: list[dict]
    categories: list[int]
    api_key: str
    cashier_auth: list[str]
    qr_of_order: Any   # order id -> its latest qrId (the customer's phone reads the QR)
    next_customer: int = FIRST_CUSTOMER_ID
    counter: int = 0
    flows: Counter = field(default_factory=Counter)


def _cart(shop: Shop, rng: random.Random) -> list[tuple[str, str]]:
    chosen = rng.sample(shop.products, k=rng.randint(1, 3))
    return [pair for p in chosen for pair in
            (("product_id", str(p["id"])), ("qty", "1" if p["measure"] == "piece" else "0.5"))]


async def till_sale(load: Load, shop: Shop, rng: random.Random, decline: bool) -> None:
    """A cashier's sale in the Mini App, as its screens ask for it."""
    auth = rng.choice(shop.cashier_auth)
    headers = (("Authorization", f"tma {auth}"), ("HX-Request", "true"))

    def req(method: str, path: str, pairs: list[tuple[str, str]] | None = None) -> Req:
        if pairs is None:
            return Req("till", method, path, b"", headers)
        body, extra = form(pairs)
        return Req("till", method, path, body, headers + extra)

    await load.call("GET /miniapp/", Req("till", "GET", "/miniapp/"))
    await load.call("GET /miniapp/catalog", req("GET", "/miniapp/catalog"))
    cart = _cart(shop, rng)
    await load.call("POST /miniapp/cart", req("POST", "/miniapp/cart", cart))
    status, body = await load.call("POST /miniapp/orders", req(
        "POST", "/miniapp/orders", [*cart, ("contact", ""), ("method", "qr")]))
    found = re.search(rb'data-order-id="(\d+)"', body)
    if status != 200 or found is None:
        return
    order_id = int(found.group(1))
    qr_id = shop.qr_of_order(order_id)
    if qr_id is None:
        load.error("till: the order's QR", None, f"order {order_id} has no QR")
        return
    await asyncio.sleep(rng.uniform(1, 4))  # the customer scans and confirms
    if not await load.pay(qr_id, decline):
        return
    if decline:
        await asyncio.sleep(rng.uniform(0.5, 2))
        await load.call("POST /miniapp/orders/<id>/cancel",
                        req("POST", f"/miniapp/orders/{order_id}/cancel", []))
        load.outcomes["till declined, cancelled"] += 1
        return
    deadline = time.monotonic() + PAID_TIMEOUT
    while time.monotonic() < deadline:
        status, body = await load.call("GET /miniapp/orders/<id>/status", req(
            "GET", f"/miniapp/orders/{order_id}/status"), expect=(200, STOP_POLLING))
        if status == STOP_POLLING:
            if b'data-state="paid:receipt"' in body:
                load.outcomes["till paid"] += 1
            else:
                load.error("till: the QR screen", status, "final screen is not paid: "
                           + body[:200].decode(errors="replace"))
            return
        if status != 200:
            return
        await asyncio.sleep(TILL_POLL)
    load.error("till: paid on screen", None, f"order {order_id} not paid with its receipt "
               f"within {PAID_TIMEOUT:.0f}s")


async def api_payment(load: Load, shop: Shop, rng: random.Random, decline: bool,
                      expire: bool) -> None:
    """A bot on a constructor: create the payment, show its QR, ask for its status."""
    shop.counter += 1
    n = shop.counter
    fields: dict[str, Any] = {"amount": f"{rng.randint(100, 5000)}.{rng.randint(0, 99):02d}",
                              "order_id": f"soak-{n}", "client_id": str(700_000 + n),
                              "description": f"Заказ {n}"}
    if expire:
        fields["ttl_minutes"] = 1
    auth = (("Authorization", f"Bearer {shop.api_key}"),)
    status, body = await load.call("POST /api/v1/payments", Req(
        "api", "POST", "/api/v1/payments", json.dumps(fields, ensure_ascii=False).encode(),
        (*auth, ("Content-Type", "application/json"))), expect=(201,))
    if status != 201:
        return
    answer = json.loads(body)
    payment_id = answer["payment_id"]
    path = f"/api/v1/payments/{quote(payment_id)}"

    async def poll(until: set[str], every: float, timeout: float,
                   with_qr: bool = False) -> dict | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, body = await load.call("GET /api/v1/payments/<id>",
                                           Req("api", "GET", path, b"", auth))
            if status != 200:
                return None
            seen = json.loads(body)
            if seen["status"] in until and (seen.get("qr_payload") or not with_qr):
                return seen
            await asyncio.sleep(every)
        load.error("api: status", None, f"{payment_id} not {until} within {timeout:.0f}s")
        return None

    if answer.get("qr_payload") is None:  # the bank was slow: the QR comes from a job
        answer = await poll({"pending"}, API_POLL, 30, with_qr=True)
        if answer is None:
            return
    qr_id = PAY_LINK.search(answer["qr_payload"].encode()).group(1).decode()
    if expire:
        seen = await poll({"expired", "paid"}, 5.0, EXPIRY_TIMEOUT)
        if seen is not None:
            if seen["status"] == "expired":
                load.outcomes["api expired"] += 1
            else:
                load.error("api: expiry", None, f"{payment_id} is {seen['status']}")
        return
    await asyncio.sleep(rng.uniform(1, 4))
    if not await load.pay(qr_id, decline):
        return
    if decline:
        await asyncio.sleep(rng.uniform(0.5, 2))
        status, body = await load.call("POST /api/v1/payments/<id>/cancel", Req(
            "api", "POST", f"{path}/cancel", b"{}", (*auth, ("Content-Type",
                                                             "application/json"))))
        if status == 200 and json.loads(body)["status"] == "cancelled":
            load.outcomes["api declined, cancelled"] += 1
        elif status == 200:
            load.error("api: cancel", status, body[:200].decode(errors="replace"))
        return
    seen = await poll({"paid"}, API_POLL, PAID_TIMEOUT)
    if seen is not None:
        load.outcomes["api paid"] += 1


async def shop_order(load: Load, shop: Shop, rng: random.Random, decline: bool) -> None:
    """A storefront customer: browse, order, pay, watch the order screen."""
    telegram_id = shop.next_customer
    shop.next_customer += 1
    auth = init_data(telegram_id)
    await load.call("GET /shop/catalog", shop_req("catalog", "GET", "/shop/catalog", auth))
    await asyncio.sleep(rng.uniform(0, 1))
    if shop.categories:
        await load.call("GET /shop/catalog?category=<id>", shop_req(
            "category", "GET", f"/shop/catalog?category={rng.choice(shop.categories)}", auth))
    product = rng.choice(shop.products)
    await load.call("GET /shop/products/<id>", shop_req(
        "product", "GET", f"/shop/products/{product['id']}", auth))
    cart = _cart(shop, rng)
    await load.call("POST /shop/cart", shop_req("cart", "POST", "/shop/cart", auth, cart))
    await load.call("POST /shop/checkout",
                    shop_req("checkout", "POST", "/shop/checkout", auth, cart))
    by_id = {p["id"]: p for p in shop.products}
    total = sum(by_id[int(cart[i][1])]["price"] * (1000 if cart[i + 1][1] == "1" else 500)
                // 1000 for i in range(0, len(cart), 2))
    delivery = rng.choice([("pickup", ""), ("delivery", "ул. Мира, 5, кв. 12")])
    status, body = await load.call("POST /shop/orders", shop_req(
        "order", "POST", "/shop/orders", auth,
        [*cart, ("expected_total", str(total)), ("contact", f"+7900{telegram_id:07d}"[:12]),
         ("delivery", delivery[0]), ("address", delivery[1]), ("comment", "")]))
    found, link = ORDER_ID.search(body), PAY_LINK.search(body)
    if status != 200:
        return
    if found is None or link is None:
        load.error("POST /shop/orders", status, "order screen without data-order or QR link")
        return
    public_id, qr_id = found.group(1).decode(), link.group(1).decode()
    await asyncio.sleep(rng.uniform(1, 4))
    if not await load.pay(qr_id, decline):
        return
    if decline:
        load.outcomes["shop declined, left"] += 1  # the order waits for its QR to expire
        return
    deadline = time.monotonic() + PAID_TIMEOUT
    while time.monotonic() < deadline:
        status, body = await load.call("GET /shop/orders/<id>/status", shop_req(
            "status", "GET", f"/shop/orders/{quote(public_id)}/status?seen=pending", auth),
            expect=(200, 204, STOP_POLLING))
        if status in (200, STOP_POLLING) and PAID_SCREEN in body:
            load.outcomes["shop paid"] += 1
            return
        if status not in (200, 204, STOP_POLLING):
            return
        await asyncio.sleep(SHOP_POLL)
    load.error("shop: paid on screen", None, f"order {public_id} not paid within "
               f"{PAID_TIMEOUT:.0f}s")


# -- the admin ----------------------------------------------------------------------------------


class Admin:
    """The admin in the panel: one session cookie, requests to either web process."""

    def __init__(self, load: Load):
        self.load = load
        self.cookie = ""
        self.looks = 0

    def _req(self, method: str, path: str, pairs: list[tuple[str, str]] | None = None) -> Req:
        headers: tuple[tuple[str, str], ...] = ((("Cookie", self.cookie),)
                                                if self.cookie else ())
        body = b""
        if pairs is not None:
            body, extra = form(pairs)
            headers += extra
        return Req("admin", method, path, body, headers)

    async def _call(self, route: str, req: Req, expect=(200,)) -> tuple[int | None, dict, bytes]:
        """Load.call, keeping the session cookie; also returns the answer's headers."""
        head: list[bytes] = []
        status, body = await self.load.call(route, req, expect=expect, head=head)
        headers: dict[str, str] = {}
        for line in head[0].decode("latin-1").split("\r\n")[1:] if head else ():
            name, _, value = line.partition(":")
            value = value.strip()
            if name.lower() == "set-cookie" and value.startswith("session="):
                self.cookie = value.split(";", 1)[0]
            headers[name.lower()] = value
        return status, headers, body

    async def log_in(self) -> bool:
        status, _, page = await self._call("GET /admin/login", self._req("GET", "/admin/login"))
        token = CSRF.search(page)
        if status != 200 or token is None:
            return False
        status, headers, _ = await self._call("POST /admin/login", self._req(
            "POST", "/admin/login", [("csrf_token", token.group(1).decode()),
                                     ("email", ADMIN_EMAIL), ("password", ADMIN_PASSWORD)]),
            expect=(302, 303))
        return status in (302, 303) and "/login" not in headers.get("location", "")

    async def look(self, refund: bool) -> None:
        if not self.cookie and not await self.log_in():
            self.load.error("admin: login", None, "the login form did not let the admin in")
            return
        filters = ADMIN_LISTS[self.looks % len(ADMIN_LISTS)]
        self.looks += 1
        query = f"?{urlencode(filters)}" if filters else ""
        await self._call("GET /admin/payments", self._req("GET", f"/admin/payments{query}"))
        if refund:
            await self.refund()

    async def refund(self) -> None:
        status, _, page = await self._call("GET /admin/payments", self._req(
            "GET", "/admin/payments?status=paid"))
        ids = PAYMENT_LINK.findall(page)
        if status != 200 or not ids:
            return
        payment_id = int(self.load.rng.choice(ids[:20]))
        detail = f"/admin/payments/{payment_id}"
        status, _, page = await self._call("GET /admin/payments/<id>",
                                           self._req("GET", detail))
        token = CSRF.search(page)
        if status != 200 or token is None:
            return
        partial = self.load.rng.random() < 0.5
        status, _, _ = await self._call("POST /admin/payments/<id>/refund", self._req(
            "POST", f"{detail}/refund", [("csrf_token", token.group(1).decode()),
                                         ("mode", "amount"), ("amount", "1,00" if partial else ""),
                                         ("reason", "soak")]), expect=(302, 303))
        if status not in (302, 303):
            return
        status, _, page = await self._call("GET /admin/payments/<id>",
                                           self._req("GET", detail))
        if REFUND_SENT in page:
            self.load.outcomes["admin refunds " + ("partial" if partial else "full")] += 1
        else:
            said = FLASH_ERROR.search(page)
            self.load.error("admin: refund", status, "no 'sent to the bank' after the "
                            "refund form: " + (said.group(1).decode(errors="replace")
                                               if said else "no message"))


# -- the run ------------------------------------------------------------------------------------


async def run_load(load: Load, shop: Shop, args: argparse.Namespace, *,
                   on_warm: Any, sampler: Any) -> dict[str, float]:
    """Checkouts at `--rate`, the admin and /healthz, for the warm-up then the measured
    minutes; then waits (at most --drain) for the checkouts in flight."""
    rng = load.rng
    kinds, weights = list(args.mix), list(args.mix.values())
    tasks: set[asyncio.Task] = set()
    admin = Admin(load)
    started = time.monotonic()
    warm_end = started + args.warmup
    end = warm_end + args.minutes * 60
    next_checkout = started
    next_admin = started + 2
    next_health = started
    next_sample = started
    measured_from = None
    status, _ = await load.call("GET /metrics", Req("metrics", "GET", "/metrics"),
                                expect=(200, 404))
    load.outcomes["metrics endpoint " + ("present" if status == 200 else "absent (404)")] += 1

    def spawn(coro) -> None:
        task = asyncio.create_task(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    while True:
        now = time.monotonic()
        if measured_from is None and now >= warm_end:
            measured_from = now
            load.phase = "measured"
            on_warm()
            next_sample = now
        if now >= end:
            break
        if now >= next_sample:
            sampler(now - warm_end)
            next_sample += args.sample_every
        if now >= next_checkout:
            kind = rng.choices(kinds, weights)[0]
            decline = rng.random() * 100 < args.decline_percent
            sub = random.Random(rng.random())
            shop.flows[kind] += 1
            if kind == "till":
                spawn(till_sale(load, shop, sub, decline))
            elif kind == "shop":
                spawn(shop_order(load, shop, sub, decline))
            else:
                expire = (not decline and rng.random() * 100 < args.expire_percent
                          and end - now > 100)
                spawn(api_payment(load, shop, sub, decline, expire))
            next_checkout += rng.expovariate(args.rate)
        if now >= next_admin:
            spawn(admin.look(refund=admin.looks % args.refund_every == args.refund_every - 1))
            next_admin += args.admin_every
        if now >= next_health:
            for port in load.web_ports:
                spawn(load.call("GET /healthz", Req("health", "GET", "/healthz"), port=port))
            next_health += 5
        await asyncio.sleep(max(0.0, min(next_checkout, next_admin, next_health, next_sample,
                                         end) - time.monotonic()))
    sampler(time.monotonic() - warm_end, final=True)
    load.phase = "drain"
    in_flight = len(tasks)
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=args.drain)
        for task in pending:
            task.cancel()
        if pending:
            load.error("drain", None, f"{len(pending)} checkouts still in flight after "
                       f"{args.drain:.0f}s")
    return {"measured_from": measured_from or started, "measured_to": end,
            "in_flight_at_end": in_flight}


# -- memory -------------------------------------------------------------------------------------


def memory_kb(pid: int) -> dict[str, int | None]:
    """VmRSS and (where the kernel has smaps_rollup) Pss of one process, in KiB."""
    out: dict[str, int | None] = {"rss_kb": None, "pss_kb": None}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                out["rss_kb"] = int(line.split()[1])
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                out["pss_kb"] = int(line.split()[1])
    except (OSError, ValueError):
        pass
    return out


def memory_of(procs: Processes) -> dict[str, dict[str, Any]]:
    """RSS/PSS of each of our processes, by a stable name: 'web1 master', 'web1 worker 1'
    (children in pid order), 'worker1', 'sandbox'."""
    found: dict[str, dict[str, Any]] = {}
    for name, proc in procs.procs.items():
        tree = process_tree(proc.pid)
        root, children = tree[0], sorted(tree[1:])
        label = f"{name} master" if name.startswith("web") else name
        found[label] = {"pid": root, **memory_kb(root)}
        for i, pid in enumerate(children, 1):
            found[f"{name} worker {i}"] = {"pid": pid, **memory_kb(pid)}
    return found


def slope_kb_per_minute(points: list[tuple[float, int]]) -> float | None:
    """Least-squares slope of (seconds, KiB): a leak keeps climbing, a warm-up cache flattens."""
    if len(points) < 3:
        return None
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if not var:
        return None
    return round(60 * sum((t - mean_t) * (v - mean_v) for t, v in points) / var, 1)


def growth(start: dict, end: dict, samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for name, first in start.items():
        last = end.get(name, {})
        trend = [(s["t"], s["processes"][name]["rss_kb"]) for s in samples
                 if s["t"] >= 0 and s["processes"].get(name, {}).get("rss_kb")]
        second_half = [p for p in trend if p[0] >= trend[-1][0] / 2] if trend else []
        row = {"process": name, "pid": first["pid"], "rss_start_kb": first["rss_kb"],
               "rss_slope_kb_per_min": slope_kb_per_minute(trend),
               "rss_slope_second_half_kb_per_min": slope_kb_per_minute(second_half),
               "rss_end_kb": last.get("rss_kb"), "pss_start_kb": first["pss_kb"],
               "pss_end_kb": last.get("pss_kb"), "same_pid": last.get("pid") == first["pid"]}
        for kind in ("rss", "pss"):
            a, b = row[f"{kind}_start_kb"], row[f"{kind}_end_kb"]
            row[f"{kind}_growth_percent"] = round(100 * (b - a) / a, 1) if a and b else None
        rows.append(row)
    return rows


# -- the end-of-run checks ------------------------------------------------------------------------


def db_checks(dsn: str, drain_timeout: float) -> dict[str, Any]:
    """Waits for the queue to drain (no due or running job, no receipt in flight), then: every
    paid QR has exactly one payment and one done sale receipt; no dead job."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        def one(sql: str) -> Any:
            return conn.execute(sql).fetchone()[0]

        deadline = time.monotonic() + drain_timeout
        waited = time.monotonic()
        while True:
            busy = one("SELECT count(*) FROM jobs WHERE (key IS NULL OR key NOT LIKE "
                       "'periodic:%') AND (status = 'running' OR (status = 'queued' "
                       "AND run_at <= now()))")
            in_flight = one("SELECT count(*) FROM receipts WHERE status IN ('pending', 'wait')")
            refunding = one("SELECT count(*) FROM refunds WHERE status IN ('pending', "
                            "'in_progress')")
            if (busy == 0 and in_flight == 0 and refunding == 0) or time.monotonic() > deadline:
                break
            time.sleep(1)
        checks = {
            "drain_seconds": round(time.monotonic() - waited, 1),
            "jobs_due_or_running": busy,
            "receipts_in_flight": in_flight,
            "refunds_in_flight": refunding,
            "jobs_by_status": dict(conn.execute(
                "SELECT status, count(*) FROM jobs GROUP BY status ORDER BY 1").fetchall()),
            "jobs_queued_later_not_periodic": one(
                "SELECT count(*) FROM jobs WHERE status = 'queued' AND run_at > now() "
                "AND (key IS NULL OR key NOT LIKE 'periodic:%')"),
            "dead_jobs": one("SELECT count(*) FROM jobs WHERE status = 'dead'"),
            "paid_qrs": one("SELECT count(*) FROM qr_codes WHERE status = 'paid'"),
            "payments": one("SELECT count(*) FROM payments"),
            "paid_qrs_without_exactly_one_payment": one(
                "SELECT count(*) FROM qr_codes q WHERE q.status = 'paid' AND (SELECT count(*) "
                "FROM payments p WHERE p.qr_code_id = q.id) <> 1"),
            "payments_on_paid_qrs_without_exactly_one_done_sale_receipt": one(
                "SELECT count(*) FROM payments p JOIN qr_codes q ON q.id = p.qr_code_id "
                "WHERE q.status = 'paid' AND (SELECT count(*) FROM receipts r WHERE "
                "r.payment_id = p.id AND r.kind = 'sell' AND r.status = 'done') <> 1"),
            "payments_not_on_a_paid_qr": one(
                "SELECT count(*) FROM payments p JOIN qr_codes q ON q.id = p.qr_code_id "
                "WHERE q.status <> 'paid'"),
            "qrs_by_status": dict(conn.execute(
                "SELECT status, count(*) FROM qr_codes GROUP BY status ORDER BY 1").fetchall()),
            "orders_by_status": dict(conn.execute(
                "SELECT status, count(*) FROM orders GROUP BY status ORDER BY 1").fetchall()),
            "refunds_by_status": dict(conn.execute(
                "SELECT status, count(*) FROM refunds GROUP BY status ORDER BY 1").fetchall()),
            "refund_receipts_done": one("SELECT count(*) FROM receipts WHERE kind = "
                                        "'sell_refund' AND status = 'done'"),
            "receipts_failed": one("SELECT count(*) FROM receipts WHERE status = 'failed'"),
        }
    checks["ok"] = (checks["jobs_due_or_running"] == 0 and checks["receipts_in_flight"] == 0
                    and checks["dead_jobs"] == 0 and checks["receipts_failed"] == 0
                    and checks["paid_qrs_without_exactly_one_payment"] == 0
                    and checks["payments_on_paid_qrs_without_exactly_one_done_sale_receipt"] == 0
                    and checks["payments_not_on_a_paid_qr"] == 0
                    and checks["refunds_in_flight"] == 0
                    and checks["refund_receipts_done"]
                    == checks["refunds_by_status"].get("completed", 0)
                    and set(checks["refunds_by_status"]) <= {"completed"})
    return checks


# -- the report ------------------------------------------------------------------------------------


def endpoints(samples: list[Sample], start: float, end: float) -> list[dict[str, Any]]:
    """Per route: the measured window's requests (sent between start and end)."""
    by_route: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        if start <= s.at < end:
            by_route[s.route].append(s)
    window = end - start
    rows = []
    for route, group in sorted(by_route.items()):
        latencies = sorted(s.seconds for s in group)
        rows.append({
            "route": route, "n": len(group), "per_second": round(len(group) / window, 2),
            "p50_ms": round(percentile(latencies, 50) * 1000, 1),
            "p99_ms": round(percentile(latencies, 99) * 1000, 1),
            "max_ms": round(latencies[-1] * 1000, 1),
            "statuses": dict(Counter(str(s.status) for s in group)),
            "by_web": dict(Counter(str(s.port) for s in group)),
        })
    return rows


def interval(load: Load, before: tuple[float, Any], after: tuple[float, Any], t: float, *,
             procs: Processes, db_name: str) -> dict[str, Any]:
    """One stretch between two memory samples: the requests sent in it (how many, p50/p99,
    errors) and who used the machine's CPU (the stack, or other work on the machine)."""
    (t0, snap0), (t1, snap1) = before, after
    latencies = sorted(s.seconds for s in load.samples if t0 <= s.at < t1)
    cpu = cpu_by_process_group(snap0, snap1, procs, db_name)
    others = cpu["cpu_seconds"]["other processes"] + cpu["unattributed_seconds"]
    return {"t": round(t, 1), "requests": len(latencies),
            "p50_ms": round(percentile(latencies, 50) * 1000, 1) if latencies else None,
            "p99_ms": round(percentile(latencies, 99) * 1000, 1) if latencies else None,
            "errors": sum(1 for e in load.errors if t0 <= e.at < t1),
            "machine_busy_percent": cpu["machine_busy_percent"],
            "stack_cpu_seconds": round(sum(cpu["cpu_seconds"].values())
                                       - cpu["cpu_seconds"]["other processes"], 1),
            "other_work_cpu_seconds": round(others, 1)}


def fmt_kb(kb: int | None) -> str:
    return "-" if kb is None else f"{kb / 1024:.1f}"


def markdown(report: dict[str, Any]) -> str:
    r = report
    out = [f"# Soak {r['started']} (commit {r['code']['commit']})", "",
           f"{r['settings']['minutes']} min measured after {r['settings']['warmup']:.0f} s of "
           f"warm-up, {r['settings']['rate']} checkouts/s ({r['settings']['mix']}), "
           f"{r['stack']}.", "",
           f"Checkouts started: {r['flows']}; outcomes: {r['outcomes']}.", "",
           f"Requests in the measured window: {r['requests_measured']} "
           f"({r['requests_per_second']} req/s); errors: **{len(r['errors'])}** (goal 0).", "",
           "| endpoint | n | req/s | p50 ms | p99 ms | max ms | statuses |",
           "|---|---|---|---|---|---|---|"]
    for e in r["endpoints"]:
        statuses = ", ".join(f"{k}: {v}" for k, v in e["statuses"].items())
        out.append(f"| {e['route']} | {e['n']} | {e['per_second']} | {e['p50_ms']} | "
                   f"{e['p99_ms']} | {e['max_ms']} | {statuses} |")
    if r["errors"]:
        out += ["", "Errors:", ""]
        out += [f"- [{e['phase']}, t={e['t']:.0f}s] {e['route']}: {e['status']} {e['detail']}"
                for e in r["errors"][:50]]
    out += ["", f"Memory (MiB; start = after the warm-up, goal: growth <= "
                f"{MEMORY_GOAL_PERCENT} %):", "",
            "| process | RSS start | RSS end | RSS growth | RSS slope KiB/min (2nd half) "
            "| PSS start | PSS end | PSS growth |",
            "|---|---|---|---|---|---|---|---|"]
    for m in r["memory"]:
        out.append(f"| {m['process']}{'' if m['same_pid'] else ' (pid changed!)'} | "
                   f"{fmt_kb(m['rss_start_kb'])} | {fmt_kb(m['rss_end_kb'])} | "
                   f"{m['rss_growth_percent']} % | {m['rss_slope_kb_per_min']} "
                   f"({m['rss_slope_second_half_kb_per_min']}) | {fmt_kb(m['pss_start_kb'])} | "
                   f"{fmt_kb(m['pss_end_kb'])} | {m['pss_growth_percent']} % |")
    names = [m["process"] for m in r["memory"]]
    out += ["", "RSS trend (MiB; t in seconds from the end of the warm-up):", "",
            "| t | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for sample in r["memory_samples"]:
        out.append(f"| {sample['t']:.0f} | " + " | ".join(
            fmt_kb(sample["processes"].get(n, {}).get("rss_kb")) for n in names) + " |")
    out += ["", "Timeline (each stretch ends at t; errors are those noticed in it, e.g. a "
                "checkout not paid 60 s after it was paid at the bank):", "",
            "| t | requests | p50 ms | p99 ms | errors | machine busy % | stack CPU s "
            "| other work CPU s |", "|---|---|---|---|---|---|---|---|"]
    out += [f"| {i['t']:.0f} | {i['requests']} | {i['p50_ms']} | {i['p99_ms']} | "
            f"{i['errors']} | {i['machine_busy_percent']} | {i['stack_cpu_seconds']} | "
            f"{i['other_work_cpu_seconds']} |" for i in r.get("timeline", [])]
    out += ["", "End-of-run checks:", "", "```", json.dumps(r["checks"], indent=1), "```", "",
            "CPU seconds in the measured window:", "", "```",
            json.dumps(r["cpu"].get("cpu_seconds"), indent=1), "```", ""]
    return "\n".join(out)


def print_table(report: dict[str, Any]) -> None:
    print(f"\nSoak: {report['settings']['minutes']} min, {report['settings']['rate']} "
          f"checkouts/s; {report['requests_measured']} requests "
          f"({report['requests_per_second']} req/s), errors {len(report['errors'])} (goal 0)")
    print(f"  {'endpoint':<44} {'n':>6} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8}")
    for e in report["endpoints"]:
        print(f"  {e['route']:<44} {e['n']:>6} {e['per_second']:>7} {e['p50_ms']:>8} "
              f"{e['p99_ms']:>8}")
    for e in report["errors"][:10]:
        print(f"  ERROR [{e['phase']}] {e['route']}: {e['status']} {e['detail'][:100]}")
    print(f"\n  {'process':<22} {'RSS start':>10} {'RSS end':>9} {'growth':>8} {'PSS growth':>11}"
          f" {'RSS KiB/min':>12}")
    for m in report["memory"]:
        flag = "" if (m["rss_growth_percent"] or 0) <= MEMORY_GOAL_PERCENT else "  OVER GOAL"
        print(f"  {m['process']:<22} {fmt_kb(m['rss_start_kb']):>10} "
              f"{fmt_kb(m['rss_end_kb']):>9} {m['rss_growth_percent']!s:>7}% "
              f"{m['pss_growth_percent']!s:>10}% {m['rss_slope_kb_per_min']!s:>12}{flag}")
    c = report["checks"]
    print(f"\n  outcomes: {report['outcomes']}")
    print(f"  paid QRs {c['paid_qrs']}, payments {c['payments']}, dead jobs {c['dead_jobs']}, "
          f"jobs due {c['jobs_due_or_running']}, receipts in flight {c['receipts_in_flight']}: "
          f"{'OK' if c['ok'] else 'FAILED'}")


# -- main ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stamp = utc_stamp()
    log_dir = RESULTS / f"logs-soak-{stamp}"
    log_dir.mkdir(parents=True, exist_ok=True)
    stop_on_signals(args.deadline, "the soak")
    import psycopg

    from bench.callbacks import gunicorn_argv
    from bench.miniapp import timed_bot

    bank_port, web_ports = free_port(), [free_port(), free_port()]
    bot = timed_bot()
    db_url = f"{args.pg_url}/{args.db_name}"
    # The bank's and the register's callbacks go to the first web process.
    env = shop_env("soak", database_url=db_url, bank_port=bank_port,
                   public_url=f"http://{HOST}:{web_ports[0]}", bot_url=bot.url,
                   bot_token=BOT_TOKEN)
    gunicorn = argparse.Namespace(workers=args.web_workers, worker_class="sync", threads=0)
    stack = (f"PostgreSQL, 2 gunicorn instances x {args.web_workers} sync workers, "
             f"{args.job_workers} `flask worker`, the sandbox bank + ATOL register "
             f"(receipts on), the fake Bot API")
    procs = Processes(log_dir)
    report: dict[str, Any] = {"started": stamp, "code": code_version(), "stack": stack,
                              "settings": {k: v for k, v in vars(args).items()
                                           if k != "pg_url"}}
    memory_samples: list[dict[str, Any]] = []
    timeline: list[dict[str, Any]] = []
    ok = False
    try:
        step("database", f"DROP/CREATE {args.db_name}, flask db upgrade, the seed")
        recreate_database(args.pg_url, args.db_name)
        flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
        subprocess.run([*flask, "db", "upgrade"], cwd=ROOT, env=env, check=True, timeout=180,
                       stdout=(log_dir / "migrate.log").open("wb"), stderr=subprocess.STDOUT)
        seeded = json.loads(_python(env, SEED_SCRIPT, json.dumps(PRODUCTS)))
        extra = json.loads(_python(env, EXTRA_SEED, str(FIRST_CASHIER_ID), str(CASHIERS),
                                   ADMIN_EMAIL, ADMIN_PASSWORD))
        procs.start("sandbox", [*flask, "sandbox", "run", "--port", str(bank_port)], env)
        for i, port in enumerate(web_ports, 1):
            procs.start(f"web{i}", gunicorn_argv(gunicorn, "wsgi:app", port), env)
        for n in range(args.job_workers):
            procs.start(f"worker{n + 1}", [*flask, "worker"], env)
        for port in web_ports:
            wait_http(port, "GET", "/readyz", body=None, procs=procs)
        wait_http(bank_port, "GET", "/sandbox/state", body=None, procs=procs)
        subprocess.run([*flask, "sbp", "set-callback"], cwd=ROOT, env=env, check=True,
                       timeout=60, capture_output=True)
        step("servers", f"web :{web_ports[0]} :{web_ports[1]}, sandbox :{bank_port}, "
                        f"{args.job_workers} job workers, fake Bot API {bot.url}")

        lookup = psycopg.connect(db_url, autocommit=True)

        def qr_of_order(order_id: int) -> str | None:
            row = lookup.execute("SELECT qr_id FROM qr_codes WHERE order_id = %s "
                                 "ORDER BY id DESC LIMIT 1", (order_id,)).fetchone()
            return row[0] if row else None

        shop = Shop(seeded["products"], seeded["categories"], extra["api_key"],
                    [init_data(FIRST_CASHIER_ID + i) for i in range(CASHIERS)], qr_of_order)
        load = Load(web_ports, bank_port, random.Random(args.seed))
        marks: dict[str, Any] = {}
        run_started = time.monotonic()

        def on_warm() -> None:
            marks["cpu"] = cpu_snapshot()
            step("measure", f"warm-up over; {args.minutes:g} min measured")

        def sampler(t: float, final: bool = False) -> None:
            procs.check_alive()
            memory_samples.append({"t": round(t, 1), "processes": memory_of(procs)})
            now, snapshot = time.monotonic(), cpu_snapshot()
            if "tick" in marks:
                timeline.append(interval(load, marks["tick"], (now, snapshot), t, procs=procs,
                                         db_name=args.db_name))
            marks["tick"] = (now, snapshot)
            if final:
                marks["cpu_end"] = cpu_snapshot()
            elif t < 0 or int(t) % 120 < args.sample_every:
                step("sample", f"t={t:.0f}s: {len(load.samples)} requests, "
                               f"{len(load.errors)} errors")

        step("load", f"{args.rate}/s checkouts ({args.mix}), warm-up {args.warmup:.0f}s")
        window = asyncio.run(run_load(load, shop, args, on_warm=on_warm, sampler=sampler))
        lookup.close()
        step("drain", f"checkouts finished after {time.monotonic() - run_started:.0f}s; "
                      "waiting for the job queue")
        checks = db_checks(db_url, args.drain)
        checks["paid_by_the_bench"] = load.paid
        checks["ok"] = checks["ok"] and checks["paid_qrs"] == load.paid
        procs.check_alive()
        warm_index = next(i for i, s in enumerate(memory_samples) if s["t"] >= 0)
        start_mem, end_mem = memory_samples[warm_index], memory_samples[-1]
        rows = endpoints(load.samples, window["measured_from"], window["measured_to"])
        measured = sum(r["n"] for r in rows)
        report.update({
            "window_seconds": round(window["measured_to"] - window["measured_from"], 1),
            "flows": dict(shop.flows), "outcomes": dict(load.outcomes),
            "requests_measured": measured,
            "requests_per_second": round(measured / (window["measured_to"]
                                                     - window["measured_from"]), 1),
            "endpoints": rows,
            "errors": [{"route": e.route, "status": e.status, "detail": e.detail,
                        "phase": e.phase, "t": round(e.at - run_started - args.warmup, 1)}
                       for e in load.errors],
            "memory": growth(start_mem["processes"], end_mem["processes"], memory_samples),
            "memory_samples": memory_samples,
            "timeline": timeline,
            "checks": checks,
            "cpu": cpu_by_process_group(marks["cpu"], marks["cpu_end"], procs, args.db_name)
            if "cpu" in marks else {},
        })
        ok = checks["ok"] and not load.errors
    finally:
        procs.stop()
        bot.stop()
    report["ok"] = ok
    out = RESULTS / f"soak-{stamp}.json"
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    if "checks" in report:
        out.with_suffix(".md").write_text(markdown(report), encoding="utf-8")
        print_table(report)
    print(f"\nreport: {out.relative_to(ROOT)} (and .md)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
