"""How each constructor wants to be called back: one function per preset that turns a
payment's flat fields and the client's settings into the HTTP requests to send.

Nothing here knows Flask or sends anything; app/constructor/callbacks.py sends what these
build and logs it. The constructors' API base URLs come in `base_urls` (settings, whose
defaults are the real services), so tests point them at a local capture server.

The settings each preset reads (`ApiClient.settings`; `callback_url` is the client's):

| preset    | needs                           | optional                                        |
|-----------|---------------------------------|-------------------------------------------------|
| salebot   | api_key                         | message_<event> (the text that starts a block)  |
| puzzlebot | token                           | variables (fields to set), scenario_id[_<event>] |
| leadteh   | callback_url (incoming webhook) |                                                 |
| smartbot  | callback_url (Webhook event)    |                                                 |
| botmother | callback_url (external event)   | platform ("tg")                                 |
| bothelp   | client_id, client_secret        | variables, bot_referral, step_referral          |
| webhook   | callback_url, secret            |                                                 |

Every preset but the generic webhook addresses one end user of the constructor: the
payment's `client_id` (the API's `client_id`, `Order.client_ref`) is required for them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from app.constructor import signing
from app.logs import mask_values

DEFAULT_BASE_URLS = {
    "salebot": "https://chatter.salebot.pro",
    "puzzlebot": "https://api.puzzlebot.top",
    "bothelp_oauth": "https://oauth.bothelp.io",
    "bothelp": "https://api.bothelp.io",
}
USER_AGENT = "Kassa-Callbacks/1"
JSON_TYPE = "application/json; charset=utf-8"

# The text Salebot receives as the client's `message`: it starts the block that waits for it.
SALEBOT_TRIGGERS = {"paid": "kassa_paid", "expired": "kassa_expired",
                    "refunded": "kassa_refunded", "test": "kassa_test"}
# PuzzleBot sets one variable per call (120 calls a minute): by default only these.
PUZZLEBOT_VARIABLES = ("status", "payment_id")
# Fields that are not variables: `ok` says nothing a bot needs in a callback.
NOT_VARIABLES = frozenset({"ok"})
# Query parameters whose values are secrets wherever they appear in a URL.
SECRET_PARAMS = frozenset({"token", "api_token", "access_token", "api_key", "key", "secret",
                           "client_secret"})
# A path segment that looks like a token (a webhook URL's hash): long, letters and digits.
TOKEN_SEGMENT = re.compile(r"^(?=[^/]*\d)[A-Za-z0-9_\-]{20,}$")
MASK = "***"


class PresetError(Exception):
    """The client's settings (or the payment) cannot make this callback: a missing key, a
    missing end-user id. Sending again would not help, so the callback is given up."""


@dataclass(frozen=True)
class OutboundRequest:
    """One HTTP request of a callback, exactly as it goes on the wire.

    :param code_zero: the answer is JSON whose `code` must be 0 (PuzzleBot says "done" so,
        with HTTP 200 either way).
    """

    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None = None
    code_zero: bool = False


@dataclass(frozen=True)
class Callback:
    """What one callback is about: the event, the payment's flat fields, and the client's
    preset settings."""

    event: str                       # paid | expired | refunded | test
    fields: dict[str, Any]           # the flat fields, as the API answers them
    settings: dict[str, Any] = field(default_factory=dict)
    callback_url: str | None = None
    base_urls: dict[str, str] = field(default_factory=dict)

    @property
    def client_ref(self) -> str | None:
        value = self.fields.get("client_id")
        return None if value in (None, "") else str(value)

    def base(self, name: str) -> str:
        return (self.base_urls.get(name) or DEFAULT_BASE_URLS[name]).rstrip("/")

    def setting(self, name: str, default: Any = None) -> Any:
        value = self.settings.get(name)
        return default if value in (None, "") else value

    def per_event(self, name: str) -> Any:
        """`<name>_<event>` when set, else `<name>`."""
        return self.setting(f"{name}_{self.event}", self.setting(name))


# -- the flat fields as variables -------------------------------------------------------------

def variables(fields: dict[str, Any], only: list[str] | tuple[str, ...] | None = None
              ) -> list[tuple[str, str]]:
    """(name, text) of each field that has a value, in the fields' order (or `only`'s)."""
    names = list(only) if only else [name for name in fields if name not in NOT_VARIABLES]
    return [(name, _text(fields[name])) for name in names if fields.get(name) not in (None, "")]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _id(value: str) -> int | str:
    """A constructor's user id as a number when it is one (their APIs store numbers)."""
    return int(value) if value.isdigit() and len(value) < 19 else value


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _post_json(url: str, body: Any, **headers: str) -> OutboundRequest:
    return OutboundRequest("POST", url, {"Content-Type": JSON_TYPE, "User-Agent": USER_AGENT,
                                         **headers}, _json(body))


def _end_user(callback: Callback) -> str:
    ref = callback.client_ref
    if ref is None:
        raise PresetError("the payment has no client_id (the end user's id in the "
                          "constructor), so there is nobody to call back")
    return ref


def _require(callback: Callback, *names: str) -> list[str]:
    values = [callback.setting(name) for name in names]
    missing = [name for name, value in zip(names, values, strict=True) if value is None]
    if missing:
        raise PresetError(f"settings lack {', '.join(missing)}")
    return [str(value) for value in values]


def _url(callback: Callback) -> str:
    if not callback.callback_url:
        raise PresetError("no callback URL")
    return callback.callback_url


# -- the presets -------------------------------------------------------------------------------

def salebot(callback: Callback) -> list[OutboundRequest]:
    """`POST {base}/api/{api_key}/callback` with `client_id` and `message` (Salebot runs the
    block waiting for that text; the client does not see it); every other parameter is
    saved as the client's variable. The API's own `message` (a sentence for people) goes as
    `payment_message`, since `message` is Salebot's."""
    (api_key,) = _require(callback, "api_key")
    ref = _end_user(callback)
    body: dict[str, Any] = {
        "client_id": _id(ref),
        "message": str(callback.setting(f"message_{callback.event}")
                       or SALEBOT_TRIGGERS.get(callback.event, f"kassa_{callback.event}")),
    }
    for name, value in variables(callback.fields):
        if name == "message":
            body["payment_message"] = value
        elif name != "client_id":
            body[name] = value
    return [_post_json(f"{callback.base('salebot')}/api/{api_key}/callback", body)]


def puzzlebot(callback: Callback) -> list[OutboundRequest]:
    """One `GET {base}/?token=…&method=variableChange&user_id=…&variable=…&expression=…`
    per variable (the expression a quoted string), then `method=scenarioRun` with
    `scenario_id` when one is set for the event. PuzzleBot answers `"code": 0` when done."""
    (token,) = _require(callback, "token")
    ref = _end_user(callback)
    base = callback.base("puzzlebot")

    def call(**params: str) -> OutboundRequest:
        query = urlencode({"token": token, **params})
        return OutboundRequest("GET", f"{base}/?{query}", {"User-Agent": USER_AGENT},
                               code_zero=True)

    only = callback.setting("variables") or PUZZLEBOT_VARIABLES
    calls = [call(method="variableChange", user_id=ref, variable=name,
                  expression=json.dumps(value, ensure_ascii=False))
             for name, value in variables(callback.fields, only)]
    scenario = callback.per_event("scenario_id")
    if scenario is not None:
        calls.append(call(method="scenarioRun", scenario_id=str(scenario), user_id=ref))
    return calls


def leadteh(callback: Callback) -> list[OutboundRequest]:
    """The client's incoming webhook (standard type): POST JSON with every variable inside
    `variables` as `{"name", "value"}` and the contact's id as `contact_id`."""
    url, ref = _url(callback), _end_user(callback)
    body = {"contact_id": _id(ref),
            "variables": [{"name": name, "value": value}
                          for name, value in variables(callback.fields)]}
    return [_post_json(url, body)]


def smartbot(callback: Callback) -> list[OutboundRequest]:
    """SmartBot Pro's scenario event "Webhook": POST JSON with the chat's `peer_id` and the
    variables beside it."""
    url, ref = _url(callback), _end_user(callback)
    body: dict[str, Any] = {"peer_id": _id(ref)}
    body.update((name, value) for name, value in variables(callback.fields)
                if name != "peer_id")
    return [_post_json(url, body)]


def botmother(callback: Callback) -> list[OutboundRequest]:
    """Botmother's external event: POST JSON `{"platform", "users": [id], "data": {...}}`;
    the bot finds `data` in `last_request`."""
    url, ref = _url(callback), _end_user(callback)
    body = {"platform": str(callback.setting("platform", "tg")), "users": [ref],
            "data": dict(variables(callback.fields))}
    return [_post_json(url, body)]


def bothelp_token_request(callback: Callback) -> OutboundRequest:
    """BotHelp's OAuth2 client_credentials token request (form data)."""
    client_id, client_secret = _require(callback, "client_id", "client_secret")
    body = urlencode({"grant_type": "client_credentials", "client_id": client_id,
                      "client_secret": client_secret}).encode()
    return OutboundRequest("POST", f"{callback.base('bothelp_oauth')}/oauth2/token",
                           {"Content-Type": "application/x-www-form-urlencoded",
                            "User-Agent": USER_AGENT}, body)


def bothelp(callback: Callback, access_token: str) -> list[OutboundRequest]:
    """`PATCH {base}/v1/subscribers/cuid/{cuid}/customFields` with the fields as
    `[{"name", "value"}]`, then, with `bot_referral` set, `POST …/bot` to move the
    subscriber to that bot (and `step_referral`)."""
    _require(callback, "client_id", "client_secret")
    cuid = _end_user(callback)
    base = f"{callback.base('bothelp')}/v1/subscribers/cuid/{cuid}"
    auth = {"Authorization": f"Bearer {access_token}"}
    fields = [{"name": name, "value": value}
              for name, value in variables(callback.fields, callback.setting("variables"))]
    calls = [OutboundRequest("PATCH", f"{base}/customFields",
                             {"Content-Type": JSON_TYPE, "User-Agent": USER_AGENT, **auth},
                             _json(fields))]
    referral = callback.per_event("bot_referral")
    if referral is not None:
        body = {"botReferral": str(referral)}
        if callback.per_event("step_referral") is not None:
            body["stepReferral"] = str(callback.per_event("step_referral"))
        calls.append(_post_json(f"{base}/bot", body, **auth))
    return calls


def webhook(callback: Callback, *, timestamp: int | None = None) -> list[OutboundRequest]:
    """POST the flat fields as JSON, signed: `X-Kassa-Signature: t=…,v1=…` (signing.py)."""
    url = _url(callback)
    (secret,) = _require(callback, "secret")
    body = _json(callback.fields)
    return [OutboundRequest("POST", url, {
        "Content-Type": JSON_TYPE, "User-Agent": USER_AGENT,
        signing.HEADER: signing.sign(secret, body, timestamp=timestamp),
        "X-Kassa-Event": callback.event,
    }, body)]


BUILDERS: dict[str, Callable[[Callback], list[OutboundRequest]]] = {
    "salebot": salebot, "puzzlebot": puzzlebot, "leadteh": leadteh, "smartbot": smartbot,
    "botmother": botmother, "webhook": webhook,
}
# What a preset cannot call back without (the panel shows what is missing).
REQUIRED = {
    "salebot": ("api_key",), "puzzlebot": ("token",), "leadteh": ("callback_url",),
    "smartbot": ("callback_url",), "botmother": ("callback_url",),
    "bothelp": ("client_id", "client_secret"), "webhook": ("callback_url", "secret"),
}
# Settings that are secrets: masked wherever they would be written down.
SECRET_SETTINGS = ("api_key", "token", "client_secret", "secret")


def missing(preset: str, settings: dict[str, Any] | None, callback_url: str | None
            ) -> list[str]:
    """The settings `preset` still needs before it can call anyone back."""
    known = {**(settings or {}), "callback_url": callback_url}
    return [name for name in REQUIRED.get(preset, ("callback_url",))
            if known.get(name) in (None, "")]


def build(preset: str, callback: Callback, *, access_token: str | None = None
          ) -> list[OutboundRequest]:
    """The requests of `callback` for `preset` (BotHelp's need its access token).

    :raises PresetError: the settings or the payment cannot make this callback.
    """
    if preset == "bothelp":
        if access_token is None:
            raise PresetError("BotHelp needs an access token first")
        return bothelp(callback, access_token)
    builder = BUILDERS.get(preset)
    if builder is None:
        raise PresetError(f"unknown preset {preset!r}")
    return builder(callback)


# -- writing requests down without their secrets -----------------------------------------------

def secrets_of(settings: dict[str, Any] | None) -> list[str]:
    return [str(settings[name]) for name in SECRET_SETTINGS
            if (settings or {}).get(name) not in (None, "")]


def mask(text: str, secrets: list[str]) -> str:
    """`text` with each secret (of 4 characters or more) replaced by ***."""
    return mask_values(text, secrets, min_length=4)


def mask_url(url: str, secrets: list[str]) -> str:
    """A URL fit for the delivery log: known secrets, secret-named query parameters and
    token-like path segments (a webhook URL's hash) masked."""
    parts = urlsplit(mask(url, secrets))
    path = "/".join(segment[:4] + MASK if TOKEN_SEGMENT.match(segment) else segment
                    for segment in parts.path.split("/"))
    query = "&".join(
        f"{name}={MASK}" if name.lower() in SECRET_PARAMS else f"{name}={value}" if sep
        else name
        for name, sep, value in (pair.partition("=") for pair in parts.query.split("&")
                                 if pair)
    )
    return urlunsplit((parts.scheme, parts.netloc, path, query, parts.fragment))
