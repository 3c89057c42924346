"""Money: kopecks in, kopecks out; floats and extra decimals refused, never rounded away."""

from decimal import Decimal

import pytest

from app.money import MoneyError, format_rubles, parse_rubles, to_decimal, to_string


@pytest.mark.parametrize(
    ("text", "kopecks"),
    [
        ("0", 0),
        ("1", 100),
        ("1250", 125000),
        ("1250.5", 125050),
        ("1250.50", 125050),
        ("1250,50", 125050),
        ("1 250,50", 125050),
        ("1\u00a0250,50", 125050),
        ("0.01", 1),
        (" 99.99 ", 9999),
        (Decimal("12.30"), 1230),
        (Decimal("101.01"), 10101),
        (7, 700),
        ("9999999999", 999999999900),
    ],
)
def test_parse_rubles(text, kopecks):
    assert parse_rubles(text) == kopecks


@pytest.mark.parametrize(
    "bad",
    ["", "abc", "1.001", "1,2,3", "-1", "-0.01", "1e3", "1.", ".5", "NaN", Decimal("0.001"),
     Decimal("NaN"), Decimal("-5"), 0.1, 1.0, True, None, "10000000000000"],
)
def test_parse_rubles_refuses(bad):
    with pytest.raises(MoneyError):
        parse_rubles(bad)


def test_a_sum_too_large_says_so():
    for text in ("10000000001", "99999999999999999999"):
        with pytest.raises(MoneyError, match="too large"):
            parse_rubles(text)


def test_round_trip_and_formatting():
    for kopecks in (0, 1, 99, 100, 101, 123456789, 4294967295):
        assert parse_rubles(to_string(kopecks)) == kopecks
        assert parse_rubles(to_decimal(kopecks)) == kopecks
    assert to_string(125050) == "1250.50"
    assert to_string(1) == "0.01"
    assert to_decimal(10) == Decimal("0.10")
    assert format_rubles(125000) == "1\u00a0250,00\u00a0₽"
    assert format_rubles(1) == "0,01\u00a0₽"
    assert format_rubles(-5050) == "-50,50\u00a0₽"
    assert format_rubles(123456789) == "1\u00a0234\u00a0567,89\u00a0₽"
    assert format_rubles(None) == "—"


def test_to_decimal_refuses_non_integers():
    with pytest.raises(MoneyError):
        to_decimal(1.5)
    with pytest.raises(MoneyError):
        to_decimal(True)
