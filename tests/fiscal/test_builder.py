"""The pure receipt builder: sale and refund drafts always satisfy the register invariants."""

from __future__ import annotations

from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from app.fiscal.builder import (
    MAX_TOTAL_KOPECKS,
    PAYMENT_METHODS,
    ReceiptError,
    _check,
    sale_receipt,
    single_line_receipt,
)
from app.fiscal.receipt import (
    ELECTRONIC,
    SELL,
    SELL_REFUND,
    Company,
    ReceiptDraft,
    ReceiptLine,
)
from app.fiscal.refund_builder import refund_by_amount, refund_by_lines
from app.receipt_lines import (
    MAX_LINES,
    MAX_NAME,
    MAX_PRICE_KOPECKS,
    MAX_QUANTITY_MILLI,
    MEASURES,
    PAYMENT_OBJECTS,
    VAT_RATES,
    line_amount,
)

COMPANY = Company(inn="5544332219", email="shop@example.com", sno="usn_income",
                  payment_address="https://shop.example")
PROPERTY = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def item(name: str, price: int, quantity: int = 1000, **kwargs) -> ReceiptLine:
    return ReceiptLine(name=name, price_kopecks=price, quantity_milli=quantity,
                       amount_kopecks=line_amount(price, quantity), **kwargs)


def key(line: ReceiptLine) -> tuple[str, str, str, str, str]:
    return (line.name, line.vat, line.payment_object, line.measure, line.payment_method)


def assert_valid(draft: ReceiptDraft, operation: str) -> None:
    """The invariants, checked independently of the builder (line_amount is the oracle)."""
    assert draft.operation == operation
    assert 1 <= len(draft.lines) <= MAX_LINES
    assert draft.payment_type == ELECTRONIC
    assert draft.company == COMPANY
    assert sum(line.amount_kopecks for line in draft.lines) == draft.total_kopecks
    assert 0 < draft.total_kopecks <= MAX_TOTAL_KOPECKS
    for line in draft.lines:
        assert 1 <= len(line.name) <= MAX_NAME
        assert line.name == " ".join(line.name.split())
        assert 0 < line.price_kopecks <= MAX_PRICE_KOPECKS
        assert 0 < line.quantity_milli <= MAX_QUANTITY_MILLI
        assert 0 < line.amount_kopecks <= MAX_PRICE_KOPECKS
        assert line.amount_kopecks == line_amount(line.price_kopecks, line.quantity_milli)
        assert line.vat in VAT_RATES
        assert line.payment_object in PAYMENT_OBJECTS
        assert line.measure in MEASURES
        assert line.payment_method in PAYMENT_METHODS
    _check(draft)  # and the builder's own check agrees


def per_key(lines, attr: str) -> dict:
    sums: dict = defaultdict(int)
    for line in lines:
        sums[key(line)] += getattr(line, attr)
    return sums


# ------------------------------------------------------------------------- strategies

NAMES = st.one_of(
    st.text(min_size=1, max_size=200),
    st.text(alphabet="абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВЖЯ \t\n", min_size=1, max_size=300),
    st.sampled_from([
        "Кофе латте", "  Чай\t🍵  зелёный\n", "🍰" * 150, "Ж" * 200, "Сыр «Российский», кг",
        "x" * 127 + " y", "👨‍👩‍👧 набор",
    ]),
).filter(lambda name: name.split())
QUANTITIES = st.one_of(
    st.sampled_from([1, 333, 500, 999, 1000, 1001, 1500, 2000, 50_000, 999_999]),
    st.integers(1, 50_000),
    st.integers(1, 999_999),
)


@st.composite
def carts(draw, *, max_lines: int = 20, unique: bool = False, duplicates: bool = False,
          max_quantity: int = 999_999, max_price: int = 10_000_000) -> list[ReceiptLine]:
    """1..20 sale lines; amounts 1..MAX_PRICE_KOPECKS; names unique if asked; maybe the
    same product twice (same name and attributes) if `duplicates`."""
    lines = []
    for number in range(draw(st.integers(1, max_lines))):
        price = draw(st.one_of(st.integers(1, max_price), st.just(max_price)))
        quantity = min(draw(QUANTITIES), max_quantity, MAX_PRICE_KOPECKS * 1000 // price)
        quantity = max(quantity, -(-500 // price))  # worth at least one kopeck
        if duplicates and draw(st.booleans()):
            lines.append(item(draw(st.sampled_from(["Кофе", "Чай"])), price, quantity))
            continue
        name = draw(NAMES)
        lines.append(item(
            f"{number}. {name}" if unique else name, price, quantity,
            vat=draw(st.sampled_from(VAT_RATES)),
            payment_object=draw(st.sampled_from(sorted(PAYMENT_OBJECTS))),
            measure=draw(st.sampled_from(sorted(MEASURES))),
        ))
    return lines


LIMIT_CARTS = carts(max_lines=3, max_price=MAX_PRICE_KOPECKS, max_quantity=3000)


def sale_of(cart: list[ReceiptLine]) -> ReceiptDraft:
    assume(sum(line.amount_kopecks for line in cart) <= MAX_TOTAL_KOPECKS)
    return sale_receipt(cart, company=COMPANY)


# --------------------------------------------------------------------- property tests


@PROPERTY
@given(price=st.integers(0, MAX_PRICE_KOPECKS), quantity=st.integers(0, MAX_QUANTITY_MILLI))
def test_line_amount_rounds_half_up_like_a_register(price, quantity):
    exact = Decimal(price) * Decimal(quantity) / Decimal(1000)
    assert line_amount(price, quantity) == int(exact.quantize(Decimal(1), ROUND_HALF_UP))


@PROPERTY
@given(cart=carts(), email=st.one_of(st.none(), st.just("buyer@example.com")))
def test_sale_receipt_always_valid(cart, email):
    total = sum(line.amount_kopecks for line in cart)
    if total > MAX_TOTAL_KOPECKS:
        with pytest.raises(ReceiptError) as error:
            sale_receipt(cart, company=COMPANY)
        assert error.value.code == "too_large"
        return
    draft = sale_receipt(cart, company=COMPANY, customer_email=email)
    assert_valid(draft, SELL)
    assert draft.total_kopecks == total
    assert draft.customer_email == email
    assert len(draft.lines) == len(cart)
    for sold, line in zip(cart, draft.lines, strict=True):
        assert line.name == " ".join(sold.name.split())[:MAX_NAME].rstrip()
        assert (line.price_kopecks, line.quantity_milli, line.amount_kopecks) == (
            sold.price_kopecks, sold.quantity_milli, sold.amount_kopecks)
        assert (line.vat, line.payment_object, line.measure) == (
            sold.vat, sold.payment_object, sold.measure)
        assert line.payment_method == "full_payment"


@PROPERTY
@given(cart=carts(duplicates=True, max_quantity=50_000), data=st.data())
def test_refunds_by_amount_add_up_to_the_sale(cart, data):
    refund_by_amount_until_done(cart, data)


@settings(PROPERTY, max_examples=100)
@given(cart=LIMIT_CARTS, data=st.data())
def test_refunds_by_amount_at_the_price_limit(cart, data):
    refund_by_amount_until_done(cart, data)


def refund_by_amount_until_done(cart, data):
    """Random partial refunds by amount, then the rest, then one kopeck too many."""
    sale = sale_of(cart)
    sold_amount = per_key(sale.lines, "amount_kopecks")
    sold_quantity = per_key(sale.lines, "quantity_milli")
    done: list[ReceiptLine] = []
    left = sale.total_kopecks
    for step in range(data.draw(st.integers(0, 8), label="partial refunds")):
        if left <= 1:
            break
        amount = data.draw(st.one_of(st.integers(1, left - 1), st.integers(1, min(100, left - 1)),
                                     st.just(left - 1)), label="amount")
        draft = refund_by_amount(sale.lines, amount, company=COMPANY, already_refunded=done,
                                 customer_phone="+79990000000")
        assert_valid(draft, SELL_REFUND)
        assert draft.total_kopecks == amount
        assert draft.customer_phone == "+79990000000"
        assert len(draft.lines) <= len(sale.lines)
        shares = per_key(draft.lines, "amount_kopecks")
        for line_key, quantity in per_key(draft.lines, "quantity_milli").items():
            assert line_key in sold_amount  # mirrors a sale line's name, vat, object, measure
            assert quantity <= sold_quantity[line_key]
        if step == 0:  # proportional to the sale amounts, to within a kopeck per line
            for line_key in sold_amount:
                lines = [x for x in sale.lines if key(x) == line_key]
                low = sum(amount * x.amount_kopecks // sale.total_kopecks for x in lines)
                high = sum(-(-amount * x.amount_kopecks // sale.total_kopecks) for x in lines)
                assert low <= shares.get(line_key, 0) <= high
        done.extend(draft.lines)
        left -= amount
        refunded = per_key(done, "amount_kopecks")
        assert all(refunded[k] <= sold_amount[k] for k in refunded)  # nothing over-refunded
        assert sale.total_kopecks - sum(refunded.values()) == left

    final = refund_by_amount(sale.lines, left, company=COMPANY, already_refunded=done)
    assert_valid(final, SELL_REFUND)
    done.extend(final.lines)
    assert per_key(done, "amount_kopecks") == sold_amount  # every line exactly, kopeck-exact
    assert sum(line.amount_kopecks for line in done) == sale.total_kopecks
    with pytest.raises(ReceiptError) as error:
        refund_by_amount(sale.lines, 1, company=COMPANY, already_refunded=done)
    assert error.value.code == "over_refund"


@PROPERTY
@given(cart=carts(unique=True, max_quantity=50_000), data=st.data())
def test_refunds_by_lines_add_up_to_the_sale(cart, data):
    refund_by_lines_until_done(cart, data, exact=True)


@settings(PROPERTY, max_examples=100)
@given(cart=carts(unique=True, max_lines=3, max_price=MAX_PRICE_KOPECKS, max_quantity=3000),
       data=st.data())
def test_refunds_by_lines_at_the_price_limit(cart, data):
    refund_by_lines_until_done(cart, data, exact=False)


def refund_by_lines_until_done(cart, data, *, exact: bool):
    """Random partial returns, then everything left, then one thousandth too many.

    `exact`: prices are far from the limit, so a partial return refunds exactly
    min(price × quantity, what is left − 1 kopeck) and is refused only when that is < 1.
    """
    sale = sale_of(cart)
    lines = sale.lines
    done: list[ReceiptLine] = []

    def left(index: int) -> tuple[int, int]:
        mine = [x for x in done if x.name == lines[index].name]
        return (lines[index].amount_kopecks - sum(x.amount_kopecks for x in mine),
                max(0, lines[index].quantity_milli - sum(x.quantity_milli for x in mine)))

    for _ in range(data.draw(st.integers(0, 6), label="partial returns")):
        open_lines = [i for i in range(len(lines)) if all(left(i))]
        if not open_lines:
            break
        chosen = data.draw(st.lists(st.sampled_from(open_lines), min_size=1, unique=True),
                           label="lines")
        selection = [(i, data.draw(st.integers(1, left(i)[1]), label="quantity"))
                     for i in chosen]
        # A part (not all that is left) worth 0 kopecks, or taking the last kopeck, is refused.
        refused = any(quantity < left(i)[1]
                      and (line_amount(lines[i].price_kopecks, quantity) == 0 or left(i)[0] < 2)
                      for i, quantity in selection)
        try:
            draft = refund_by_lines(lines, selection, company=COMPANY, already_refunded=done)
        except ReceiptError as error:
            assert refused or not exact, error
            assert error.code in {"bad_selection", "over_refund"}
            assert any(quantity < left(i)[1] for i, quantity in selection)  # never a last part
            continue
        assert not refused
        assert_valid(draft, SELL_REFUND)
        for i, quantity in selection:
            mine = [x for x in draft.lines if x.name == lines[i].name]
            amount_left, quantity_left = left(i)
            amount = sum(x.amount_kopecks for x in mine)
            if quantity == quantity_left:
                assert amount == amount_left  # the last part gets exactly what is left
            else:
                nominal = line_amount(lines[i].price_kopecks, quantity)
                assert 1 <= amount < amount_left
                assert amount == min(nominal, amount_left - 1) or not exact
                if amount == nominal:  # the natural line: sale price × returned quantity
                    assert [(x.price_kopecks, x.quantity_milli) for x in mine] == [
                        (lines[i].price_kopecks, quantity)]
            assert 1 <= len(mine) <= 2
            assert sum(x.quantity_milli for x in mine) <= quantity
            assert all(x.vat == lines[i].vat and x.measure == lines[i].measure
                       and x.payment_object == lines[i].payment_object for x in mine)
        done.extend(draft.lines)

    rest = [(i, left(i)[1]) for i in range(len(lines)) if all(left(i))]
    if rest:
        final = refund_by_lines(lines, rest, company=COMPANY, already_refunded=done)
        assert_valid(final, SELL_REFUND)
        done.extend(final.lines)
    for i, line in enumerate(lines):
        assert left(i)[0] == 0  # each line's refunds add up to its sale amount exactly
        assert sum(x.quantity_milli for x in done if x.name == line.name) <= line.quantity_milli
    assert sum(x.amount_kopecks for x in done) == sale.total_kopecks
    with pytest.raises(ReceiptError) as error:
        refund_by_lines(lines, [(0, 1)], company=COMPANY, already_refunded=done)
    assert error.value.code == "over_refund"


@PROPERTY
@given(cart=carts(unique=True, max_quantity=50_000), data=st.data())
def test_amount_refunds_then_returning_the_goods(cart, data):
    """Money back first, then the customer returns what is left: the sums still close."""
    sale = sale_of(cart)
    lines = sale.lines
    done: list[ReceiptLine] = []
    for _ in range(data.draw(st.integers(1, 3), label="amount refunds")):
        left = sale.total_kopecks - sum(x.amount_kopecks for x in done)
        if left <= 1:
            break
        draft = refund_by_amount(lines, data.draw(st.integers(1, left - 1), label="amount"),
                                 company=COMPANY, already_refunded=done)
        done.extend(draft.lines)

    def left(index: int) -> tuple[int, int]:
        mine = [x for x in done if x.name == lines[index].name]
        return (lines[index].amount_kopecks - sum(x.amount_kopecks for x in mine),
                max(0, lines[index].quantity_milli - sum(x.quantity_milli for x in mine)))

    rest = [(i, left(i)[1]) for i in range(len(lines)) if all(left(i))]
    if rest:
        draft = refund_by_lines(lines, rest, company=COMPANY, already_refunded=done)
        assert_valid(draft, SELL_REFUND)
        done.extend(draft.lines)
    money_left = sale.total_kopecks - sum(x.amount_kopecks for x in done)
    if money_left:  # lines whose quantity the amount refunds used up (indivisible rests)
        done.extend(refund_by_amount(lines, money_left, company=COMPANY,
                                     already_refunded=done).lines)
    assert all(left(i)[0] == 0 for i in range(len(lines)))
    assert sum(x.amount_kopecks for x in done) == sale.total_kopecks


# ---------------------------------------------------------------------- example tests


def test_three_coffees_and_cheese_by_weight():
    draft = sale_receipt([item("Кофе", 9999, 3000), item("Сыр", 45050, 1500, measure="kilogram")],
                         company=COMPANY, customer_email=" buyer@example.com ")
    assert [(x.price_kopecks, x.quantity_milli, x.amount_kopecks) for x in draft.lines] == [
        (9999, 3000, 29997), (45050, 1500, 67575)]
    assert draft.total_kopecks == 97572
    assert draft.operation == SELL
    assert draft.payment_type == ELECTRONIC
    assert draft.customer_email == "buyer@example.com"
    assert draft.lines[1].measure == "kilogram"


def test_refund_of_100_rubles_from_three_lines():
    sale = sale_receipt([item("Кофе", 9999, 3000), item("Сыр", 45050, 1500),
                         item("Хлеб", 1234)], company=COMPANY)
    assert sale.total_kopecks == 98806
    first = refund_by_amount(sale.lines, 10000, company=COMPANY)
    # 10000 × (29997, 67575, 1234) / 98806 = 3035.98, 6839.15, 124.89 -> 3035, 6839, 124
    # + 2 leftover kopecks to the largest remainders (Кофе .98, Хлеб .89).
    assert [(x.name, x.price_kopecks, x.quantity_milli, x.amount_kopecks)
            for x in first.lines] == [
        ("Кофе", 10020, 303, 3036),   # 0,303 of 3 cups ≈ 3036 / 29997; 100,20 ≈ 3036 / 0,303
        ("Сыр", 45291, 151, 6839),
        ("Хлеб", 1234, 101, 125),     # the sale price itself is exact here
    ]
    assert first.total_kopecks == 10000
    assert first.operation == SELL_REFUND
    rest = refund_by_amount(sale.lines, 88806, company=COMPANY, already_refunded=first.lines)
    assert [x.amount_kopecks for x in rest.lines] == [29997 - 3036, 67575 - 6839, 1234 - 125]
    assert sum(x.quantity_milli for x in first.lines + rest.lines if x.name == "Хлеб") == 1000
    with pytest.raises(ReceiptError) as error:
        refund_by_amount(sale.lines, 1, company=COMPANY,
                         already_refunded=first.lines + rest.lines)
    assert error.value.code == "over_refund"


def test_full_refund_by_amount_mirrors_the_sale():
    sale = sale_receipt([item("Кофе", 9999, 3000, vat="vat22", payment_object="service"),
                         item("Сыр", 45050, 1500, measure="kilogram")], company=COMPANY)
    draft = refund_by_amount(sale.lines, sale.total_kopecks, company=COMPANY)
    assert draft.lines == sale.lines


def test_partial_amount_refund_keeps_quantities_for_the_goods():
    sale = sale_receipt([item("Кофе", 9999, 3000)], company=COMPANY)
    money = refund_by_amount(sale.lines, 19998, company=COMPANY)
    assert [(x.price_kopecks, x.quantity_milli) for x in money.lines] == [(9999, 2000)]
    goods = refund_by_lines(sale.lines, [(0, 1000)], company=COMPANY,
                            already_refunded=money.lines)
    assert [(x.price_kopecks, x.quantity_milli, x.amount_kopecks) for x in goods.lines] == [
        (9999, 1000, 9999)]


def test_indivisible_rest_falls_back_to_one_unit():
    """0,001 kg left and only part of its money refunded: the quantity cannot be divided."""
    sale = sale_receipt([item("Шафран", 400_000, 1, measure="kilogram")], company=COMPANY)
    assert sale.total_kopecks == 400
    first = refund_by_amount(sale.lines, 100, company=COMPANY)
    assert [(x.price_kopecks, x.quantity_milli, x.amount_kopecks) for x in first.lines] == [
        (100_000, 1, 100)]
    second = refund_by_amount(sale.lines, 300, company=COMPANY, already_refunded=first.lines)
    assert [x.amount_kopecks for x in second.lines] == [300]
    assert second.lines[0].quantity_milli == 1


def test_static_qr_single_line():
    draft = single_line_receipt(150_000, name="  Оплата   по QR-коду ", company=COMPANY,
                                vat="vat20", payment_object="service",
                                customer_phone="+79990000000")
    assert draft.lines == (ReceiptLine(name="Оплата по QR-коду", price_kopecks=150_000,
                                       quantity_milli=1000, amount_kopecks=150_000,
                                       vat="vat20", payment_object="service"),)
    assert draft.total_kopecks == 150_000
    assert draft.operation == SELL
    assert draft.customer_phone == "+79990000000"
    refund = single_line_receipt(150_000, name="Оплата по QR-коду", company=COMPANY,
                                 operation=SELL_REFUND)
    assert refund.operation == SELL_REFUND


def test_long_name_trimmed_to_128():
    name = "Очень длинное название товара " * 7  # 210 characters
    assert len(name) > 200
    draft = sale_receipt([item(name, 100)], company=COMPANY)
    assert len(draft.lines[0].name) <= MAX_NAME
    assert name.startswith(draft.lines[0].name)
    assert len(single_line_receipt(100, name="я" * 200, company=COMPANY).lines[0].name) == 128
    refund = refund_by_amount([item(name, 100)], 50, company=COMPANY)
    assert refund.lines[0].name == draft.lines[0].name


@pytest.mark.parametrize("amount", [0, -1, -10_000, True, 1.5])
def test_zero_and_negative_amounts_refused(amount):
    with pytest.raises(ReceiptError) as error:
        single_line_receipt(amount, name="QR", company=COMPANY)
    assert error.value.code == "bad_amount"
    with pytest.raises(ReceiptError) as error:
        refund_by_amount([item("Кофе", 9999)], amount, company=COMPANY)
    assert error.value.code == "bad_amount"


@pytest.mark.parametrize("bad", [
    ReceiptLine("Кофе", 0, 1000, 0),                    # zero price (KKT -3805)
    ReceiptLine("Кофе", -100, 1000, -100),
    ReceiptLine("Кофе", 1, 1, 0),                       # worth 0 kopecks
    ReceiptLine("Кофе", 9999, 3000, 29998),             # amount != price × quantity
    ReceiptLine("Кофе", 9999, 0, 0),
    ReceiptLine("Кофе", MAX_PRICE_KOPECKS + 1, 1000, MAX_PRICE_KOPECKS + 1),
    ReceiptLine("Кофе", MAX_PRICE_KOPECKS, 2000, 2 * MAX_PRICE_KOPECKS),
    ReceiptLine(" \t ", 100, 1000, 100),
    ReceiptLine("Кофе", 100, 1000, 100, vat="vat18"),
    ReceiptLine("Кофе", 100, 1000, 100, measure="bag"),
])
def test_bad_sale_lines_refused(bad):
    with pytest.raises(ReceiptError) as error:
        sale_receipt([item("Чай", 500), bad], company=COMPANY)
    assert error.value.code == "bad_line"


def test_line_count_limits():
    with pytest.raises(ReceiptError) as error:
        sale_receipt([], company=COMPANY)
    assert error.value.code == "empty"
    with pytest.raises(ReceiptError) as error:
        sale_receipt([item(f"Товар {n}", 100) for n in range(MAX_LINES + 1)], company=COMPANY)
    assert error.value.code == "too_many_lines"
    assert len(sale_receipt([item("Товар", 100)] * MAX_LINES, company=COMPANY).lines) == 100


def test_refund_by_lines_last_part_takes_what_is_left():
    sale = sale_receipt([item("Сыр", 333, 1500, measure="kilogram")], company=COMPANY)
    assert sale.total_kopecks == 500  # 499.5 rounded half up
    first = refund_by_lines(sale.lines, [(0, 500)], company=COMPANY)
    assert [(x.price_kopecks, x.quantity_milli, x.amount_kopecks) for x in first.lines] == [
        (333, 500, 167)]  # 166.5 -> 167
    second = refund_by_lines(sale.lines, [(0, 1000)], company=COMPANY,
                             already_refunded=first.lines)
    assert [(x.price_kopecks, x.quantity_milli, x.amount_kopecks) for x in second.lines] == [
        (333, 1000, 333)]
    assert first.total_kopecks + second.total_kopecks == 500
    with pytest.raises(ReceiptError) as error:
        refund_by_lines(sale.lines, [(0, 1)], company=COMPANY,
                        already_refunded=first.lines + second.lines)
    assert error.value.code == "over_refund"


def test_refund_by_lines_splits_when_no_single_price_fits():
    # Rounding drift: 2,5 kg at 0,03 = 0,075 -> 0,08; returning 0,5 kg (0,015 -> 0,02) twice
    # leaves 1,5 kg with 0,04, and no price p gives round(p × 1,5) == 4.
    sale = sale_receipt([item("Гвозди", 3, 2500, measure="kilogram")], company=COMPANY)
    assert sale.total_kopecks == 8
    done = []
    for _ in range(2):
        done += refund_by_lines(sale.lines, [(0, 500)], company=COMPANY,
                                already_refunded=done).lines
    assert sum(x.amount_kopecks for x in done) == 4
    last = refund_by_lines(sale.lines, [(0, 1500)], company=COMPANY, already_refunded=done)
    assert last.total_kopecks == 4  # 1,5 kg at 0,03 = 0,045 -> 5, but only 4 are left
    assert sum(x.quantity_milli for x in last.lines) == 1500
    assert [(x.price_kopecks, x.quantity_milli, x.amount_kopecks) for x in last.lines] == [
        (3, 500, 2), (2, 1000, 2)]


def test_prices_at_the_register_limit():
    # 3 g at 42 949 672,95 ₽/g = 128 849 018,85 ₽ (amount 12 884 902 kopecks is 3 × 4 294 967,4)
    sale = sale_receipt([item("Слиток", MAX_PRICE_KOPECKS, 3, measure="gram")], company=COMPANY)
    assert sale.total_kopecks == 12_884_902
    first = refund_by_lines(sale.lines, [(0, 1)], company=COMPANY)
    assert first.total_kopecks == 4_294_967
    # 1 + 1 thousandths cannot carry the 8 589 935 left (at most 4 294 967 each): refused
    with pytest.raises(ReceiptError) as error:
        refund_by_lines(sale.lines, [(0, 1)], company=COMPANY, already_refunded=first.lines)
    assert error.value.code == "bad_selection"
    rest = refund_by_lines(sale.lines, [(0, 2)], company=COMPANY, already_refunded=first.lines)
    assert [(x.price_kopecks, x.quantity_milli, x.amount_kopecks) for x in rest.lines] == [
        (MAX_PRICE_KOPECKS, 2, 8_589_935)]  # the sale price itself fits
    assert first.total_kopecks + rest.total_kopecks == sale.total_kopecks
    # 4 294 968 needs 2 thousandths and the 8 589 934 left needs 2 more: 4 > 3, so the
    # indivisible fallback writes it on the whole 0,003 g.
    by_amount = refund_by_amount(sale.lines, 4_294_968, company=COMPANY)
    assert [(x.price_kopecks, x.quantity_milli, x.amount_kopecks) for x in by_amount.lines] == [
        (1_431_656_000, 3, 4_294_968)]
    smaller = refund_by_amount(sale.lines, 4_294_967, company=COMPANY)
    assert smaller.lines[0].quantity_milli == 1  # fits, proportional: one thousandth
    with pytest.raises(ReceiptError) as error:
        single_line_receipt(MAX_PRICE_KOPECKS + 1, name="QR", company=COMPANY)
    assert error.value.code == "too_large"


def test_refund_by_lines_errors():
    sale = sale_receipt([item("Кофе", 9999, 3000), item("Сыр", 45050, 1500)], company=COMPANY)
    for selection, code in [
        ([(0, 3001)], "over_refund"),
        ([(0, 2000), (0, 1001)], "over_refund"),  # repeated indexes add up
        ([(2, 1000)], "bad_selection"),
        ([(-1, 1000)], "bad_selection"),
        ([(0, 0)], "bad_selection"),
        ([(0, -5)], "bad_selection"),
        ([(0,)], "bad_selection"),
        ([], "empty"),
    ]:
        with pytest.raises(ReceiptError) as error:
            refund_by_lines(sale.lines, selection, company=COMPANY)
        assert error.value.code == code, selection
    draft = refund_by_lines(sale.lines, [(1, 1500), (0, 1000), (0, 1000)], company=COMPANY)
    assert [(x.name, x.quantity_milli, x.amount_kopecks) for x in draft.lines] == [
        ("Кофе", 2000, 19998), ("Сыр", 1500, 67575)]


def test_refund_history_must_fit_the_sale():
    sale = sale_receipt([item("Кофе", 9999, 3000)], company=COMPANY)
    for history in ([item("Чай", 100)], [item("Кофе", 9999, 3000, vat="vat20")],
                    [item("Кофе", 9999, 4000)]):
        with pytest.raises(ReceiptError) as error:
            refund_by_amount(sale.lines, 1, company=COMPANY, already_refunded=history)
        assert error.value.code == "bad_history"


def test_customer_contacts():
    draft = sale_receipt([item("Кофе", 100)], company=COMPANY, customer_email="  ",
                         customer_phone=" +79990000000 ")
    assert (draft.customer_email, draft.customer_phone) == (None, "+79990000000")
    with pytest.raises(ReceiptError) as error:
        sale_receipt([item("Кофе", 100)], company=COMPANY, customer_email="a" * 60 + "@x.ru")
    assert error.value.code == "bad_customer"


def test_check_rejects_broken_drafts():
    good = sale_receipt([item("Кофе", 9999, 3000)], company=COMPANY)
    broken = [
        ReceiptDraft(SELL, good.lines, good.total_kopecks + 1, COMPANY),
        ReceiptDraft(SELL, (), 0, COMPANY),
        ReceiptDraft("buy", good.lines, good.total_kopecks, COMPANY),
        ReceiptDraft(SELL, good.lines, good.total_kopecks, COMPANY, payment_type=0),
        ReceiptDraft(SELL, (ReceiptLine("Кофе", 9999, 3000, 29998),), 29998, COMPANY),
        ReceiptDraft(SELL, (ReceiptLine("x" * 129, 1, 1000, 1),), 1, COMPANY),
    ]
    for draft in broken:
        with pytest.raises(ReceiptError):
            _check(draft)
