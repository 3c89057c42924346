"""Mini App initData: only data Telegram signed for our bot, recent, with a user, gets in."""

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from telebot.util import validate_web_app_data

from app.telegram.initdata import InitDataError, parse_init_data, sign_init_data

# Telegram-Mini-Apps' published example: bot token, initData exactly as sent, its hash.
VECTOR_TOKEN = "5768337691:AAGDAe6rjxu1cUgxK4BizYi--Utc3J9v5AU"
VECTOR_RAW = (
    "user=%7B%22id%22%3A279058397%2C%22first_name%22%3A%22Vladislav%22%2C%22last_name%22%3A"
    "%22Kibenko%22%2C%22username%22%3A%22vdkfrost%22%2C%22language_code%22%3A%22en%22%2C"
    "%22is_premium%22%3Atrue%2C%22allows_write_to_pm%22%3Atrue%7D"
    "&chat_instance=-3788475317572404878&chat_type=private&auth_date=1709144340"
    "&hash=371697738012ebd26a111ace4aff23ee265596cd64026c8c3677956a85ca1827"
)
VECTOR_TIME = datetime.fromtimestamp(1709144340, tz=UTC)

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
DAY = 24 * 3600
USER = {"id": 42, "first_name": "Анна", "last_name": "Петрова", "username": "anna_p",
        "language_code": "ru"}


def fields(**overrides):
    data = {
        "query_id": "AAHdF6IQAAAAAN0XohDhrOrc",
        "user": json.dumps(USER, ensure_ascii=False, separators=(",", ":")),
        "auth_date": str(int(NOW.timestamp())),
        "start_param": "shop_7",
    }
    data.update(overrides)
    return data


def parse(raw, *, token=TOKEN, now=NOW, max_age=DAY):
    return parse_init_data(raw, bot_token=token, max_age_seconds=max_age, now=now)


def refused(raw, code, **kwargs):
    with pytest.raises(InitDataError) as err:
        parse(raw, **kwargs)
    assert err.value.code == code
    assert err.value.message
    return err.value


def independent_hash(decoded_pairs, token):
    """The documented algorithm written out again, without the module under test."""
    secret = hmac.new(b"WebAppData", token.encode(), hashlib.sha256).digest()
    check = "\n".join(f"{k}={v}" for k, v in sorted(decoded_pairs.items()))
    return hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()


def test_the_published_example_is_accepted():
    data = parse(VECTOR_RAW, token=VECTOR_TOKEN, now=VECTOR_TIME + timedelta(seconds=5))

    assert data.user_id == 279058397
    assert (data.first_name, data.last_name, data.username, data.language_code) == (
        "Vladislav", "Kibenko", "vdkfrost", "en",
    )
    assert data.auth_date == VECTOR_TIME
    assert data.auth_date.tzinfo is not None
    assert data.query_id is None
    assert data.start_param is None
    assert data.fields["chat_type"] == "private"
    assert "hash" not in data.fields


def test_the_published_example_is_refused_for_another_bot():
    refused(VECTOR_RAW, "bad_hash", now=VECTOR_TIME)


def test_signed_data_round_trips():
    data = parse(sign_init_data(fields(), bot_token=TOKEN))

    assert data.user_id == 42
    assert (data.first_name, data.last_name, data.username) == ("Анна", "Петрова", "anna_p")
    assert data.language_code == "ru"
    assert data.query_id == "AAHdF6IQAAAAAN0XohDhrOrc"
    assert data.start_param == "shop_7"
    assert data.auth_date == NOW


def test_signing_encodes_values_that_look_like_query_syntax():
    raw = sign_init_data(fields(start_param="a+b&c=d %#"), bot_token=TOKEN)

    assert parse(raw).start_param == "a+b&c=d %#"


def test_signed_data_passes_an_independent_check():
    raw = sign_init_data(fields(), bot_token=TOKEN)

    assert validate_web_app_data(TOKEN, raw)
    assert not validate_web_app_data("1:other", raw)


def test_values_are_decoded_before_hashing_as_telegram_does():
    # Telegram percent-encodes the values and hashes the decoded text; a '+' or '&' inside a
    # value must survive the trip, and a hash over the encoded text must be refused.
    decoded = fields(start_param="a+b&c=d %", user=json.dumps({"id": 7, "first_name": "Ёж"}))
    good = independent_hash(decoded, TOKEN)
    encoded = "&".join(f"{k}={quote(v, safe='')}" for k, v in decoded.items())

    data = parse(f"{encoded}&hash={good}")
    assert data.start_param == "a+b&c=d %"
    assert data.first_name == "Ёж"

    encoded_pairs = {k: quote(v, safe="") for k, v in decoded.items()}
    wrong = independent_hash(encoded_pairs, TOKEN)
    refused(f"{encoded}&hash={wrong}", "bad_hash")


def test_signature_field_is_part_of_the_signed_data():
    raw = sign_init_data(fields(signature="c2lnbmF0dXJl"), bot_token=TOKEN)
    assert parse(raw).fields["signature"] == "c2lnbmF0dXJl"

    refused(raw.replace("signature=c2lnbmF0dXJl", "signature=b3RoZXI"), "bad_hash")


def test_a_tampered_field_is_refused():
    raw = sign_init_data(fields(), bot_token=TOKEN)
    assert "start_param=shop_7" in raw

    refused(raw.replace("start_param=shop_7", "start_param=shop_8"), "bad_hash")


def test_an_added_field_is_refused():
    raw = sign_init_data(fields(), bot_token=TOKEN)

    refused(f"{raw}&chat_type=private", "bad_hash")


def with_hash(change):
    """Our signed initData with its hash passed through `change`."""
    head, digest = sign_init_data(fields(), bot_token=TOKEN).rsplit("hash=", 1)
    return f"{head}hash={change(digest)}"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (lambda d: d[:-1] + ("1" if d.endswith("0") else "0"), "bad_hash"),
        (str.upper, "bad_hash"),
        (lambda d: quote("ж" + d[2:]), "bad_hash"),  # non-ASCII
        (lambda d: "", "missing"),
    ],
    ids=["last-digit", "upper-case", "non-ascii", "empty"],
)
def test_a_tampered_hash_is_refused(change, code):
    refused(with_hash(change), code)


@pytest.mark.parametrize("raw", ["", "   ", "auth_date=1&user=%7B%7D"])
def test_missing_data_or_hash_is_refused(raw):
    refused(raw, "missing")


@pytest.mark.parametrize("raw", ["no-equals-sign", "user=%FF%FE&hash=ab", "a=1&a=1&hash=ab"])
def test_malformed_data_is_refused(raw):
    refused(raw, "malformed")


def test_stale_data_is_refused():
    raw = sign_init_data(fields(), bot_token=TOKEN)

    assert parse(raw, now=NOW + timedelta(seconds=DAY)).user_id == 42
    refused(raw, "expired", now=NOW + timedelta(seconds=DAY + 1))


def test_data_from_the_future_is_refused():
    raw = sign_init_data(fields(), bot_token=TOKEN)

    assert parse(raw, now=NOW - timedelta(seconds=60)).user_id == 42
    refused(raw, "future", now=NOW - timedelta(seconds=61))


@pytest.mark.parametrize("auth_date", [None, "", "abc", "-5", "1e9", "99999999999999999999"])
def test_a_bad_auth_date_is_refused(auth_date):
    data = fields(auth_date=auth_date)
    if auth_date is None:
        del data["auth_date"]

    refused(sign_init_data(data, bot_token=TOKEN), "malformed")


@pytest.mark.parametrize(
    "user",
    [
        None,
        "not json",
        "{\"id\": 42, \"first_name\": ",
        "[42]",
        "{\"first_name\": \"Анна\"}",
        "{\"id\": \"42\", \"first_name\": \"Анна\"}",
        "{\"id\": true, \"first_name\": \"Анна\"}",
        "{\"id\": 0, \"first_name\": \"Анна\"}",
        "{\"id\": 42}",
        "{\"id\": 42, \"first_name\": \"Анна\", \"username\": 5}",
    ],
)
def test_a_bad_user_is_refused(user):
    data = fields(user=user)
    if user is None:
        del data["user"]

    refused(sign_init_data(data, bot_token=TOKEN), "bad_user")


def test_signing_refuses_a_ready_hash():
    with pytest.raises(ValueError, match="hash"):
        sign_init_data(fields(hash="00"), bot_token=TOKEN)


def test_a_naive_now_is_a_programming_error():
    raw = sign_init_data(fields(), bot_token=TOKEN)

    with pytest.raises(ValueError, match="timezone"):
        parse(raw, now=datetime(2026, 12, 6, 12, 0))  # noqa: DTZ001


def test_the_result_cannot_be_changed():
    data = parse(sign_init_data(fields(), bot_token=TOKEN))

    with pytest.raises(AttributeError):
        data.user_id = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        data.fields["start_param"] = "other"  # type: ignore[index]
