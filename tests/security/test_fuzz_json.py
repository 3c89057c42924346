"""Fuzzing the endpoints that have no OpenAPI document: the bank's callback, ATOL's callback,
Telegram's webhook, the cashier's Mini App, the shop in the bot and the customer's pay page.

Each gets arbitrary JSON (any value, nested) and structure-aware variants of a body it
accepts (the right keys with wrong-typed, huge, negative or odd Unicode values), both with a
valid signature or sign-in (so the fuzz reaches the parsing behind it) and without. None
answers a 5xx, each refusal is the room's own (flat JSON with `ok: false` and an `error`
code, or the Mini App's screen), and a refused request writes no row. Raw bytes, wrong
content types and a 10 MB body are refused the same way (413 for the last).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from hypothesis import example, given
from hypothesis import strategies as st

from app.config import SANDBOX_MERCHANT_ID, SANDBOX_SECRET_KEY
from app.extensions import db
from app.models import Order, OrderChannel, OrderStatus, QrCode, QrKind, QrStatus, utcnow
from app.sbp.raiffeisen_signature import (
    SIGNATURE_HEADER,
    SIGNED_FIELDS,
    ecom_notification_signature,
    notification_signature,
)
from app.telegram.initdata import sign_init_data
from app.telegram.routes import SECRET_HEADER
from tests.constructor.api_support import new_key
from tests.security.fuzz_support import FUZZ, row_counts

TOKEN = "7000000003:AAtest-token-for-the-fuzz"
CASHIER, CUSTOMER = 4242, 4343
BANK_ORDER, QR_ID = "bank-order-fuzz", "AD" + "7" * 30
NO_LIMITS = {"RATELIMIT_ENABLED": False}  # hundreds of calls a second, as a fuzz makes
TEN_MB = b"x" * (10 * 1024 * 1024)
ATOL = {"FISCAL_PROVIDER": "atol"}  # the sandbox's ATOL account, as testing has it

# -- strategies -------------------------------------------------------------------------------

SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(10**30), max_value=10**30)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=20)
# What goes wrong in a field: the wrong type, a huge or negative number, odd Unicode (NUL,
# right-to-left marks, a lone surrogate, emoji), a very long string.
ODD_TEXT = st.sampled_from(["", " ", "\x00", "\u202e", "\ud800", "\U0001f4b8", "٣", "1e999999",
                            "NaN", "-1", "0", "9" * 40, "<script>", "'; DROP TABLE orders;--",
                            "x" * 5000, "１２３"])
WRONG = (JSON | ODD_TEXT | st.integers() | st.integers(min_value=-(2**70), max_value=-1)
         | st.just(10**100) | st.just(-(10**100)) | st.just(1e308))
# Bytes every body-reading endpoint is given first, whatever the generation then does: each
# was a 500 somewhere (see docs/security.md, "Fuzzing").
NASTY = [
    b"", b"{", b"[" * 10_000, b'{"a":' * 5000, b"\xff\xfe\x00\x00", b"null", b'"text"',
    b"NaN", b"1e999999", b'{"x": Infinity}', b'{"x": "\\ud800"}', b'{"x": "\\u0000"}',
    b'{"update_id": 1, "x": NaN}', b'{"update_id": 2, "x": 1e999}',
    b'{"uuid": "\\ud800", "status": "done"}', b'{"uuid": "a\\u0000", "status": "done"}',
    b'{"order": "\\ud800", "amount": 1}',
]
RAW = st.sampled_from(NASTY) | st.binary(max_size=200)
CONTENT_TYPES = st.sampled_from(["application/json", "text/plain", "application/xml",
                                 "application/x-www-form-urlencoded", "multipart/form-data",
                                 "application/json; charset=latin-1", ""])


def mutated(valid: dict) -> st.SearchStrategy[dict]:
    """The valid body with some of its values replaced, some keys dropped or added."""
    keys = sorted(valid)
    return st.builds(
        lambda replace, drop, extra: {**{k: v for k, v in valid.items() if k not in drop},
                                      **replace, **extra},
        st.dictionaries(st.sampled_from(keys), WRONG, max_size=len(keys)),
        st.sets(st.sampled_from(keys), max_size=2),
        st.dictionaries(st.text(max_size=8), JSON, max_size=2))


def with_examples(**fixed):
    """Run each NASTY body (as `key`, the parameter named by fixed["key"]) before the
    generated ones, with the other parameters as given: hypothesis' explicit examples."""
    name = fixed.pop("key")

    def decorate(test):
        for raw in NASTY:
            test = example(**{name: raw}, **fixed)(test)
        return test

    return decorate


def text_of(value) -> bytes:
    """JSON text of a generated value; a lone surrogate goes out as its \\ud800 escape, as
    any client could send it."""
    return json.dumps(value).encode()


def refusal(response, *, statuses: set[int]) -> str:
    """The JSON refusal's error code, after checking it is one."""
    assert response.status_code in statuses, (response.status_code, response.get_data()[:300])
    body = response.get_json()
    assert body["ok"] is False and body["error"], body
    return body["error"]


# -- the bank's callback ------------------------------------------------------------------------


@pytest.fixture
def bank_app(make_app):
    app = make_app(RAIFFEISEN_PUBLIC_ID="MA-fuzz", **NO_LIMITS)
    with app.app_context():
        order = Order(public_id="o" * 32, status=OrderStatus.PENDING, channel=OrderChannel.API,
                      total_kopecks=12550, description="fuzz")
        db.session.add(order)
        db.session.flush()
        db.session.add(QrCode(kind=QrKind.DYNAMIC, status=QrStatus.ACTIVE, qr_id=QR_ID,
                              bank_order=BANK_ORDER, amount_kopecks=12550,
                              payload=f"https://qr.nspk.ru/{QR_ID}", description="fuzz",
                              order_id=order.id, expires_at=utcnow() + timedelta(minutes=10)))
        db.session.commit()
    return app


def sbp_signature(raw: bytes) -> str:
    """What the bank would sign for this body: each signed field's text as it stands in it."""
    data = json.loads(raw, parse_float=str, parse_int=str)
    data = data if isinstance(data, dict) else {}
    return notification_signature(SANDBOX_SECRET_KEY, {
        name: "null" if data.get(name) is None else str(data[name]) for name in SIGNED_FIELDS})


def ecom_signature(raw: bytes) -> str:
    data = json.loads(raw)
    transaction = data.get("transaction") if isinstance(data, dict) else None
    transaction = transaction if isinstance(transaction, dict) else {}
    status = transaction.get("status") if isinstance(transaction.get("status"), dict) else {}

    def text(value) -> str:
        return "" if value is None or isinstance(value, dict | list) else str(value)

    return ecom_notification_signature(
        SANDBOX_SECRET_KEY, amount=text(transaction.get("amount")), public_id="MA-fuzz",
        order=text(transaction.get("orderId")), status=text(status.get("value")),
        status_date=text(status.get("date")))


PAID_AT = datetime(2026, 11, 27, 12, 4, 5, tzinfo=UTC).isoformat()
SBP_NOTIFICATION = {"transactionId": 77, "qrId": QR_ID, "sbpMerchantId": SANDBOX_MERCHANT_ID,
                    "merchantId": 552, "amount": 125.5, "currency": "RUB",
                    "transactionDate": PAID_AT, "paymentStatus": "SUCCESS",
                    "additionalInfo": None, "order": BANK_ORDER, "createDate": PAID_AT}
ECOM_NOTIFICATION = {"event": "payment", "transaction": {
    "id": 78, "orderId": BANK_ORDER, "amount": 125.5, "status": {
        "value": "SUCCESS", "date": PAID_AT}, "paymentMethod": "sbp"}}
CALLBACK_BODIES = st.one_of(
    JSON, mutated(SBP_NOTIFICATION), mutated(ECOM_NOTIFICATION),
    # a well-formed notification for an order of any name (ours, or one we do not know)
    st.builds(lambda order: {**SBP_NOTIFICATION, "order": order},
              st.text(max_size=20) | st.just(BANK_ORDER)),
    st.builds(lambda tx: {**ECOM_NOTIFICATION, "transaction": tx},
              mutated(ECOM_NOTIFICATION["transaction"])))


def test_the_bank_callback_never_fails_on_any_json(bank_app):
    answers: set[tuple[bool, int, str]] = set()

    @given(body=CALLBACK_BODIES, signed=st.booleans())
    @FUZZ
    def run(body, signed):
        raw = text_of(body)
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: "0" * 64}
        if signed:
            ecom = isinstance(body, dict) and ("transaction" in body or "event" in body)
            headers[SIGNATURE_HEADER] = ecom_signature(raw) if ecom else sbp_signature(raw)
        before = row_counts(bank_app)
        response = bank_app.test_client().post("/sbp/callback", data=raw, headers=headers)
        if response.status_code == 200:
            # The bank's word, signed: recorded once (paid, a repeat, or kept for review).
            assert signed, body
            answers.add((signed, 200, response.get_json()["outcome"]))
            return
        code = refusal(response, statuses={400, 404})
        answers.add((signed, response.status_code, code))
        # Unsigned: a body that is not a notification at all is refused before its
        # signature is looked at.
        assert signed or code in ("bad_signature", "bad_payload")
        assert row_counts(bank_app) == before

    run()
    # Signed, the fuzz got past the signature: into the parsing (bad_payload), to an
    # order we do not know (404), and to the payment recorded (200).
    reached = {(status, code) for signed, status, code in answers if signed}
    assert {status for status, _ in reached} >= {200, 400, 404}, answers
    assert (400, "bad_payload") in reached, answers


@given(raw=RAW, content_type=CONTENT_TYPES, signed=st.booleans())
@with_examples(key="raw", content_type="application/json", signed=False)
@FUZZ
def test_the_bank_callback_refuses_bytes_that_are_not_a_notification(
        bank_app, raw, content_type, signed):
    headers = {"Content-Type": content_type}
    if signed:
        headers[SIGNATURE_HEADER] = notification_signature(SANDBOX_SECRET_KEY, {})
    before = row_counts(bank_app)
    response = bank_app.test_client().post("/sbp/callback", data=raw, headers=headers)
    refusal(response, statuses={400})
    assert row_counts(bank_app) == before


# -- ATOL's callback ----------------------------------------------------------------------------

ATOL_REPORT = {"uuid": "0c9f7a3e-1111-2222-3333-444455556666", "status": "done",
               "external_id": "sell-abcdef12-1", "timestamp": "27.11.2026 15:04:05",
               "error": None, "payload": {"total": 125.5, "fn_number": "9999078900004792",
                                          "fiscal_document_number": 42}}


@pytest.fixture
def atol_app(make_app):
    return make_app(**ATOL, **NO_LIMITS)


@given(body=JSON | mutated(ATOL_REPORT) | RAW)
@with_examples(key="body")
@FUZZ
def test_the_register_callback_never_fails(atol_app, body):
    app = atol_app
    raw = body if isinstance(body, bytes) else text_of(body)
    before = row_counts(app)
    response = app.test_client().post("/fiscal/atol/callback", data=raw,
                                      headers={"Content-Type": "application/json"})
    # No receipt is known: a readable callback is "not found", anything else a 400.
    refusal(response, statuses={400, 404})
    assert row_counts(app) == before


# -- Telegram's webhook -------------------------------------------------------------------------

UPDATE = {"update_id": 1000, "message": {
    "message_id": 1, "date": 1764000000, "text": "/start",
    "chat": {"id": CASHIER, "type": "private"},
    "from": {"id": CASHIER, "is_bot": False, "first_name": "Анна"}}}


@pytest.fixture
def bot_app(make_app):
    return make_app(TELEGRAM_BOT_TOKEN=TOKEN, **NO_LIMITS)


def test_the_webhook_stores_updates_and_refuses_the_rest(bot_app):
    from app.models import Job

    answers: set[tuple[str, int]] = set()

    @given(body=JSON | mutated(UPDATE) | RAW, content_type=CONTENT_TYPES,
           secret=st.sampled_from(["right", "wrong", "none"]))
    @with_examples(key="body", content_type="application/json", secret="right")
    @FUZZ
    def run(body, content_type, secret):
        raw = body if isinstance(body, bytes) else text_of(body)
        headers = {"Content-Type": content_type}
        if secret != "none":
            headers[SECRET_HEADER] = (bot_app.config["TELEGRAM_WEBHOOK_SECRET"]
                                      if secret == "right" else "wrong")
        before = row_counts(bot_app)
        response = bot_app.test_client().post("/telegram/webhook", data=raw, headers=headers)
        answers.add((secret, response.status_code))
        if response.status_code == 200:
            assert secret == "right" and isinstance(body, dict)
            update_id = body["update_id"]
            assert isinstance(update_id, int) and not isinstance(update_id, bool)
            with bot_app.app_context():  # stored as a job, once per update_id
                assert db.session.scalar(sa.select(sa.func.count()).select_from(Job).where(
                    Job.key == f"tg-update-{update_id}")) == 1
                db.session.remove()
            return
        code = refusal(response, statuses={400, 403})
        assert secret == "right" or code == "bad_secret"
        assert row_counts(bot_app) == before

    run()
    assert {("right", 200), ("right", 400), ("wrong", 403), ("none", 403)} <= answers, answers


# -- the Mini App and the shop: forms behind Telegram's initData ----------------------------------


def tma(user_id: int) -> str:
    return "tma " + sign_init_data({
        "auth_date": str(int(time.time())), "query_id": "AAF",
        "user": json.dumps({"id": user_id, "first_name": "Фазз", "username": "fuzz"})},
        bot_token=TOKEN)


@pytest.fixture
def shop_stack(make_stack):
    """The sandbox bank (over loopback) behind the till and the shop: a valid cart gets its
    QR, so any 5xx is a fault, not the bank being away."""
    from app.catalog.services import create_product
    from app.models import Product
    from app.people.services import add_staff
    from app.storefront.settings import update_settings

    stack = make_stack(TELEGRAM_BOT_TOKEN=TOKEN, **NO_LIMITS)
    with stack.app.app_context():
        add_staff(CASHIER, name="Анна", can_edit_catalog=True)
        tea = create_product(name="Чай", price_kopecks=25000)
        honey = create_product(name="Мёд", price_kopecks=90000, measure="kilogram")
        db.session.execute(sa.update(Product).where(Product.id.in_([tea.id, honey.id]))
                           .values(is_published=True))
        db.session.execute(sa.update(Product).where(Product.id == tea.id)
                           .values(stock_milli=3000))
        db.session.commit()
        update_settings(storefront_enabled=True, pickup_enabled=True,
                        pickup_address="ул. Ленина, 1")
        stack.products = [str(tea.id), str(honey.id)]
        db.session.remove()
    return stack


# A browser cannot send a lone surrogate in a form (it sends U+FFFD): every other odd text.
FIELD = st.one_of(st.sampled_from(["1", "2", "0.5", "1,5", "-1", "0", "99999.999", "100000",
                                   "1e999999999", "2147483648", "99999999999999999999"]),
                  ODD_TEXT.filter(lambda text: text != "\ud800"), st.text(max_size=30),
                  st.integers().map(str))


def form_strategy(product_ids: list[str], fields: list[str]):
    """A posted cart (product_id / qty / price lists, maybe of unequal length) and fields."""
    ids = st.lists(st.sampled_from(product_ids) | FIELD, max_size=4)
    return st.builds(
        lambda pid, qty, price, extra: {"product_id": pid, "qty": qty, "price": price, **extra},
        ids, st.lists(FIELD, max_size=4), st.lists(FIELD, max_size=4),
        st.fixed_dictionaries({}, optional={name: FIELD for name in fields}))


def mutated_form(valid: dict) -> st.SearchStrategy[dict]:
    """A form the screen accepts, with up to two fields replaced by odd values (a list
    field by a list of them) or dropped: it reaches the order, not only the parsing."""
    keys = sorted(valid)

    def odd(key: str):
        return st.lists(FIELD, max_size=3) if isinstance(valid[key], list) else FIELD

    return st.sets(st.sampled_from(keys), max_size=2).flatmap(lambda chosen: st.builds(
        lambda changes, drop: {k: v for k, v in {**valid, **changes}.items()
                               if not (drop and chosen and k == min(chosen))},
        st.fixed_dictionaries({key: odd(key) for key in chosen}), st.booleans()))


def valid_forms(products: list[str]) -> dict[str, dict]:
    tea = products[0]
    shop = {"product_id": [tea], "qty": ["1"], "price": ["25000"], "expected_total": "25000",
            "contact": "+79990000000", "delivery": "pickup", "address": "", "comment": "к 5"}
    till = {"product_id": [tea], "qty": ["2"], "contact": "anna@example.com", "method": "qr"}
    return {"/miniapp/cart": till, "/miniapp/orders": till,
            "/miniapp/products": {"name": "Булочка", "price": "50", "vat": "none",
                                  "measure": "piece", "payment_object": "commodity"},
            "/shop/cart": shop, "/shop/checkout": shop, "/shop/orders": shop}


SCREEN_STATUSES = {200, 403, 404, 409, 422, 429, 286}


def check_screen(response, before: dict, after: dict, *, signed: bool) -> None:
    """An HTML screen for #screen (never a traceback); unsigned is the 403 refusal; a
    refusal (4xx) wrote no row."""
    assert response.status_code in SCREEN_STATUSES, (
        response.status_code, response.get_data(as_text=True)[:500])
    assert response.mimetype == "text/html"
    assert 'class="screen"' in response.get_data(as_text=True)
    if not signed:
        assert response.status_code == 403
    if response.status_code >= 400:
        assert after == before, (response.status_code, before, after)


@pytest.mark.parametrize("path", ["/miniapp/cart", "/miniapp/orders", "/miniapp/products",
                                  "/shop/cart", "/shop/checkout", "/shop/orders"])
def test_mini_app_forms_never_fail(shop_stack, path):
    user = CASHIER if path.startswith("/miniapp") else CUSTOMER
    fields = ["contact", "method", "delivery", "address", "comment", "expected_total",
              "name", "price", "vat", "measure", "payment_object", "stock"]

    valid = valid_forms(shop_stack.products)[path]

    @given(form=form_strategy(shop_stack.products, fields) | mutated_form(valid),
           signed=st.booleans())
    @FUZZ
    def run(form, signed):
        headers = {"HX-Request": "true"}
        if signed:
            headers["Authorization"] = tma(user)
        before = row_counts(shop_stack.app)
        response = shop_stack.app.test_client().post(path, data=form, headers=headers)
        check_screen(response, before, row_counts(shop_stack.app), signed=signed)
        if signed:
            statuses.add(response.status_code)

    statuses: set[int] = set()
    run()
    # Past the sign-in: the fuzz reached the parsing (a refusal) and past it (a screen
    # that took the form: a priced cart, a saved product, an order with its QR).
    assert {200, 422} <= statuses if path not in ("/miniapp/cart", "/shop/cart") \
        else 200 in statuses, statuses


@pytest.mark.parametrize("path", ["/miniapp/cart", "/miniapp/orders", "/shop/orders"])
def test_mini_app_refuses_raw_bodies(shop_stack, path):
    user = CASHIER if path.startswith("/miniapp") else CUSTOMER

    @given(raw=RAW, content_type=CONTENT_TYPES, signed=st.booleans())
    @with_examples(key="raw", content_type="application/json", signed=True)
    @FUZZ
    def run(raw, content_type, signed):
        headers = {"HX-Request": "true", "Content-Type": content_type}
        if signed:
            headers["Authorization"] = tma(user)
        before = row_counts(shop_stack.app)
        response = shop_stack.app.test_client().post(path, data=raw, headers=headers)
        check_screen(response, before, row_counts(shop_stack.app), signed=signed)

    run()


TOKENS = (st.text(st.characters(exclude_categories=["Cs"]), max_size=80).map(
    lambda text: quote(text, safe="")) | st.sampled_from(
    ["%ff%fe", "%00", "..%2f..%2fetc", "a" * 2000, "%ed%a0%80", "x%20y", "%E2%80%AE"]))


@given(token=TOKENS)
@FUZZ
def test_the_pay_page_answers_any_token(bot_app, token):
    client = bot_app.test_client()
    for path in (f"/checkout/{token}", f"/checkout/{token}/status"):
        response = client.get(path)
        assert response.status_code in (200, 308, 404), (path, response.status_code)


# -- a 10 MB body everywhere --------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/sbp/callback", "/fiscal/atol/callback", "/telegram/webhook",
                                  "/api/v1/payments"])
def test_a_ten_megabyte_body_is_a_413_and_writes_nothing(make_app, path):
    app = make_app(TELEGRAM_BOT_TOKEN=TOKEN, **ATOL, **NO_LIMITS)
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: "0" * 64,
               SECRET_HEADER: app.config["TELEGRAM_WEBHOOK_SECRET"],
               "X-Api-Key": new_key(app)}
    before = row_counts(app)
    response = app.test_client().post(path, data=TEN_MB, headers=headers)
    assert response.status_code == 413
    assert row_counts(app) == before


@pytest.mark.parametrize("path", ["/miniapp/orders", "/miniapp/products", "/shop/orders"])
def test_a_ten_megabyte_form_is_the_413_screen_and_writes_nothing(shop_stack, path):
    user = CASHIER if path.startswith("/miniapp") else CUSTOMER
    before = row_counts(shop_stack.app)
    response = shop_stack.app.test_client().post(path, data={"comment": TEN_MB.decode()},
                                                 headers={"HX-Request": "true",
                                                          "Authorization": tma(user)})
    assert response.status_code == 413
    assert 'class="screen"' in response.get_data(as_text=True)
    assert row_counts(shop_stack.app) == before


# -- what the fuzz found: each was a 500 -----------------------------------------------------------

FOUND_JSON = [
    # nesting deeper than Python's recursion limit
    ("/sbp/callback", b"[" * 50_000 + b"]" * 50_000, "bad_payload"),
    ("/fiscal/atol/callback", b'{"a":' * 30_000 + b"1" + b"}" * 30_000, "bad_payload"),
    ("/telegram/webhook", b"[" * 50_000 + b"]" * 50_000, "not_json"),
    # a lone surrogate (no driver encodes it), unsigned: the signature was computed over it
    ("/sbp/callback", b'{"order": "\\ud800", "amount": 1}', "bad_payload"),
    ("/sbp/callback", b'{"event": "payment", "transaction": {"orderId": "\\udfff", '
                      b'"status": {"value": "SUCCESS"}}}', "bad_payload"),
    ("/fiscal/atol/callback", b'{"uuid": "\\ud800", "status": "done"}', "bad_payload"),
    # NUL in a string PostgreSQL is asked about; NaN / Infinity its json type refuses
    ("/fiscal/atol/callback", b'{"uuid": "a\\u0000", "status": "done"}', "bad_payload"),
    ("/telegram/webhook", b'{"update_id": 1, "x": NaN}', "not_json"),
    ("/telegram/webhook", b'{"update_id": 2, "x": 1e999}', "not_json"),
]


@pytest.mark.parametrize(("path", "raw", "code"), FOUND_JSON)
def test_what_the_fuzz_found_in_callbacks_is_a_400(make_app, path, raw, code):
    app = make_app(TELEGRAM_BOT_TOKEN=TOKEN, **ATOL, **NO_LIMITS)
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: "0" * 64,
               SECRET_HEADER: app.config["TELEGRAM_WEBHOOK_SECRET"]}
    before = row_counts(app)
    response = app.test_client().post(path, data=raw, headers=headers)
    assert refusal(response, statuses={400}) == code
    assert row_counts(app) == before


FOUND_FORMS = [
    # a product id beyond PostgreSQL's integer, a quantity beyond Decimal's exponent
    ("/miniapp/cart", {"product_id": ["99999999999999999"], "qty": ["1"]}, 200),
    ("/miniapp/orders", {"product_id": ["2147483648"], "qty": ["1"]}, 422),
    ("/miniapp/orders", {"product_id": ["1"], "qty": ["1e999999999"]}, 422),
    ("/shop/cart", {"product_id": ["99999999999999999"], "qty": ["1"]}, 200),
    ("/shop/orders", {"product_id": ["99999999999999999"], "qty": ["1"], "price": ["1"]}, 422),
]


@pytest.mark.parametrize(("path", "form", "status"), FOUND_FORMS)
def test_what_the_fuzz_found_in_carts_is_a_screen(shop_stack, path, form, status):
    user = CASHIER if path.startswith("/miniapp") else CUSTOMER
    before = row_counts(shop_stack.app)
    response = shop_stack.app.test_client().post(path, data=form, headers={
        "HX-Request": "true", "Authorization": tma(user)})
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert row_counts(shop_stack.app) == before


@pytest.mark.parametrize("path", ["/miniapp/orders/2147483648",
                                  "/miniapp/orders/99999999999999999999",
                                  "/shop/products/2147483648"])
def test_an_id_beyond_the_database_integer_is_a_404(shop_stack, path):
    user = CASHIER if path.startswith("/miniapp") else CUSTOMER
    response = shop_stack.app.test_client().get(path, headers={
        "HX-Request": "true", "Authorization": tma(user)})
    assert response.status_code == 404
