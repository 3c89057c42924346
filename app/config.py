"""Settings from the environment (a `.env` file is read if present); the README lists them."""

from __future__ import annotations

import hashlib
import ipaddress
import os
import secrets
import socket
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import load_dotenv
from flask.helpers import get_debug_flag

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = ROOT / "instance"

# Credentials the sandbox (app/sandbox) accepts. They are public on purpose and a
# production configuration that still carries them refuses to start.
SANDBOX_MERCHANT_ID = "MA0000000552"
SANDBOX_SECRET_KEY = "sandbox-secret-key-not-for-production"  # noqa: S105 - the sandbox's public key  # nosec B105
SANDBOX_ATOL_LOGIN = "v5-online-atol-ru"
SANDBOX_ATOL_PASSWORD = "zUr0OxfI"  # noqa: S105 - the public ATOL test password  # nosec B105
SANDBOX_ATOL_GROUP = "v5-online-atol-ru_5179"


# A production SECRET_KEY: at least this many characters (32 random bytes written in hex),
# not a placeholder and not a few characters repeated.
SECRET_KEY_MIN_LENGTH = 64
SECRET_KEY_MIN_DISTINCT = 10
PLACEHOLDER_WORDS = ("change", "secret", "example", "placeholder", "password", "replace")
SECRET_KEY_HINT = (
    f"use at least {SECRET_KEY_MIN_LENGTH} random characters, e.g. the output of "
    "python -c 'import secrets; print(secrets.token_hex(32))'"
)


class ConfigError(RuntimeError):
    """The environment does not describe a configuration Kassa may start with.

    `problems` holds one line per problem; str() is a heading and those lines.
    """

    def __init__(self, problems: str | list[str], heading: str = "configuration refused"):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.heading = heading
        super().__init__("\n".join([f"{heading}:", *(f"  - {p}" for p in self.problems)]))


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _int(name: str, default: int) -> int:
    raw = _env(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc


def _summary_hour() -> int | None:
    raw = _env("DAILY_SUMMARY_HOUR", "21")
    if raw.strip().lower() == "off":
        return None
    if not raw.strip().isdigit() or not 0 <= int(raw) <= 23:
        raise ConfigError(f"DAILY_SUMMARY_HOUR must be an hour from 0 to 23 (Moscow time) "
                          f"or off, got {raw!r}")
    return int(raw)


def _development_secret_key() -> str:
    """Development without SECRET_KEY: a random key made once and kept in the instance
    folder, so that every process (gunicorn's workers, the worker, a restart) signs sessions
    and derives the webhook secret alike."""
    path = INSTANCE / "secret-key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        INSTANCE.mkdir(parents=True, exist_ok=True)
        key = secrets.token_hex(32)
        try:
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
                f.write(key)
        except FileExistsError:  # another process made it first: use theirs
            return path.read_text().strip()
        return key


def _bool(name: str, default: bool) -> bool:
    raw = _env(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be 1 or 0 (true/false, on/off), got {raw!r}")


def _float(name: str, default: float) -> float:
    raw = _env(name)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from exc


def load_config(env: str | None = None, overrides: dict | None = None) -> dict:
    """Build the Flask config mapping for `env` (development, testing or production).

    :param env: overrides APP_ENV.
    :param overrides: values that win over the environment (tests use this).
    :raises ConfigError: production without its secrets, or with sandbox providers.
    """
    load_dotenv(ROOT / ".env", override=False)
    overrides = dict(overrides or {})
    app_env = overrides.pop("APP_ENV", None) or env or _env("APP_ENV", "development")
    if app_env not in ("development", "testing", "production"):
        raise ConfigError(f"APP_ENV must be development, testing or production, not {app_env!r}")
    production = app_env == "production"

    sandbox_port = _int("SANDBOX_PORT", 8081)
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    secret_key = _env("SECRET_KEY")
    database_url = _env("DATABASE_URL", f"sqlite:///{INSTANCE / 'kassa.db'}")

    cfg: dict = {
        "APP_ENV": app_env,
        "DEBUG": False,
        "TESTING": app_env == "testing",
        "SECRET_KEY": secret_key or (
            _development_secret_key() if app_env == "development" else secrets.token_hex(32)
        ),
        "SQLALCHEMY_DATABASE_URI": database_url,
        # A pooled connection is pinged before use: a database restart costs no request.
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "PUBLIC_URL": (
            _env("PUBLIC_URL", None if production else "http://127.0.0.1:5000") or ""
        ).rstrip("/"),
        # A callback or an API call bigger than this is refused with 413.
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        "TELEGRAM_BOT_TOKEN": _env("TELEGRAM_BOT_TOKEN"),
        "TELEGRAM_API_URL": _env("TELEGRAM_API_URL", "https://api.telegram.org"),
        # The bot's @username for t.me links; asked with getMe when not set.
        "TELEGRAM_BOT_USERNAME": _env("TELEGRAM_BOT_USERNAME"),
        # How old a Mini App's initData may be before the cashier must open the till again.
        "TELEGRAM_INIT_DATA_MAX_AGE": _int("TELEGRAM_INIT_DATA_MAX_AGE", 24 * 3600),
        "SBP_PROVIDER": _env("SBP_PROVIDER", "raiffeisen"),
        "RAIFFEISEN_API_URL": _env(
            "RAIFFEISEN_API_URL", "https://pay.raif.ru" if production else sandbox_url
        ),
        "RAIFFEISEN_SBP_MERCHANT_ID": _env(
            "RAIFFEISEN_SBP_MERCHANT_ID", None if production else SANDBOX_MERCHANT_ID
        ),
        "RAIFFEISEN_SECRET_KEY": _env(
            "RAIFFEISEN_SECRET_KEY", None if production else SANDBOX_SECRET_KEY
        ),
        "RAIFFEISEN_ACCOUNT": _env("RAIFFEISEN_ACCOUNT"),
        # The merchant's publicId that the bank's ecom (cash-link order) notifications are
        # signed with; the sbpMerchantId when unset.
        "RAIFFEISEN_PUBLIC_ID": _env("RAIFFEISEN_PUBLIC_ID"),
        "FISCAL_PROVIDER": _env("FISCAL_PROVIDER", "atol"),
        "ATOL_API_URL": _env(
            "ATOL_API_URL",
            "https://online.atol.ru/possystem/v5" if production else f"{sandbox_url}/possystem/v5",
        ),
        "ATOL_LOGIN": _env("ATOL_LOGIN", None if production else SANDBOX_ATOL_LOGIN),
        "ATOL_PASSWORD": _env("ATOL_PASSWORD", None if production else SANDBOX_ATOL_PASSWORD),
        "ATOL_GROUP_CODE": _env("ATOL_GROUP_CODE", None if production else SANDBOX_ATOL_GROUP),
        "COMPANY_INN": _env("COMPANY_INN", None if production else "5544332219"),
        "COMPANY_EMAIL": _env("COMPANY_EMAIL", None if production else "shop@example.com"),
        "COMPANY_SNO": _env("COMPANY_SNO", None if production else "usn_income"),
        "COMPANY_PAYMENT_ADDRESS": _env(
            "COMPANY_PAYMENT_ADDRESS", None if production else _env("PUBLIC_URL", "http://127.0.0.1:5000")
        ),
        "COMPANY_NAME": _env("COMPANY_NAME"),
        # The one line of a receipt for a static-QR payment (it has no order).
        "STATIC_QR_ITEM_NAME": _env("STATIC_QR_ITEM_NAME", "Оплата по QR-коду"),
        "STATIC_QR_VAT": _env("STATIC_QR_VAT", "none"),
        "STATIC_QR_PAYMENT_OBJECT": _env("STATIC_QR_PAYMENT_OBJECT", "commodity"),
        "QR_TTL_MINUTES": _int("QR_TTL_MINUTES", 10),
        "SANDBOX_PORT": sandbox_port,
        # Outbound HTTP: seconds to connect and to read.
        "HTTP_TIMEOUT": (3.05, 15),
        # Worker: how long a claimed job is leased, how often the reconciler runs,
        # how many attempts before a job is dead.
        "JOB_LEASE_SECONDS": _int("JOB_LEASE_SECONDS", 120),
        "JOB_MAX_ATTEMPTS": _int("JOB_MAX_ATTEMPTS", 12),
        # First retry delay of a failed job; it doubles with each attempt, up to an hour.
        "JOB_BACKOFF_SECONDS": _int("JOB_BACKOFF_SECONDS", 2),
        # Done jobs are deleted this many days after they finished; dead ones are kept.
        "JOB_RETENTION_DAYS": _int("JOB_RETENTION_DAYS", 14),
        "RECONCILE_INTERVAL_SECONDS": _int("RECONCILE_INTERVAL_SECONDS", 15),
        # A QR still open this long after creation without a callback is asked about.
        "RECONCILE_QR_AFTER_SECONDS": _int("RECONCILE_QR_AFTER_SECONDS", 60),
        # How often the worker makes one read-only call to the bank, the register and the
        # bot, for the dashboard's health table; 0 turns the check off.
        "HEALTH_CHECK_INTERVAL_SECONDS": _int("HEALTH_CHECK_INTERVAL_SECONDS", 300),
        # The hour (Moscow time, 0-23) the managers get the day's summary in Telegram;
        # "off" turns it off.
        "DAILY_SUMMARY_HOUR": _summary_hour(),
        # How long an idle worker waits before it looks for due jobs again.
        "WORKER_IDLE_SLEEP": float(_env("WORKER_IDLE_SLEEP", "0.2")),
        # The bot constructors' APIs that callbacks call; unset, the real services
        # (app/constructor/presets.py DEFAULT_BASE_URLS).
        **{name: _env(name) for name in ("SALEBOT_API_URL", "PUZZLEBOT_API_URL",
                                         "BOTHELP_OAUTH_URL", "BOTHELP_API_URL")},
        # Callback URLs that an admin or an API client sets may point at internal addresses
        # (loopback, private, link-local, ...) only when this is on: development and tests
        # call their capture servers on 127.0.0.1; production refuses them (SSRF).
        "OUTBOUND_ALLOW_PRIVATE": _bool("OUTBOUND_ALLOW_PRIVATE", not production),
        # How long a constructor's create-payment call waits for the bank before it answers
        # `pending` (the QR then follows through a job); constructors give up after 3 s.
        "API_BANK_BUDGET_SECONDS": _float("API_BANK_BUDGET_SECONDS", 1.5),
        # The storefront: how many orders one Telegram user may create in 10 minutes, and
        # NSPK's list of SBP bank apps (refreshed by a periodic job; 0 hours turns it off).
        "STOREFRONT_ORDERS_PER_10_MIN": _int("STOREFRONT_ORDERS_PER_10_MIN", 5),
        "NSPK_BANKS_URL": _env(
            "NSPK_BANKS_URL",
            "https://qr.nspk.ru/proxyapp/c2bmembers.json" if production
            else f"{sandbox_url}/proxyapp/c2bmembers.json"),
        "NSPK_BANKS_REFRESH_HOURS": _int("NSPK_BANKS_REFRESH_HOURS", 24),
        # Rate limits (app/ratelimit), shared by every process through RATELIMIT_STORAGE_URI:
        # Kassa's database by default (kassa-db://), or redis://... . Each limit is a string
        # such as "600/minute" or "10/second;300/hour"; see docs/security.md.
        "RATELIMIT_STORAGE_URI": _env("RATELIMIT_STORAGE_URI", "kassa-db://"),
        # Admin login POSTs per client address (the database's failure throttle also holds).
        "RATELIMIT_ADMIN_LOGIN": _env("RATELIMIT_ADMIN_LOGIN", "30/minute"),
        # on: every admin of the panel must use two-factor authentication (TOTP); one
        # without it enrolls right after the password, before anything else.
        "ADMIN_REQUIRE_2FA": _bool("ADMIN_REQUIRE_2FA", False),
        # /api/v1 requests per API client (per address for a request without a known key).
        "RATELIMIT_API": _env("RATELIMIT_API", "600/minute"),
        # The bank's callbacks per address: generous, a refused callback is only resent.
        "RATELIMIT_SBP_CALLBACK": _env("RATELIMIT_SBP_CALLBACK", "1200/minute"),
        "RATELIMIT_TELEGRAM_WEBHOOK": _env("RATELIMIT_TELEGRAM_WEBHOOK", "1200/minute"),
        # POSTs to the till's and the shop's Mini Apps per address.
        "RATELIMIT_MINIAPP": _env("RATELIMIT_MINIAPP", "300/minute"),
        "LOG_LEVEL": _env("LOG_LEVEL", "INFO"),
        # json: one JSON object per line (for a log collector); plain: for a terminal.
        "LOG_FORMAT": (_env("LOG_FORMAT") or ("json" if production else "plain")).lower(),
        # /metrics: when set, a scraper must send `Authorization: Bearer <token>`; when
        # unset, only loopback and private addresses may scrape.
        "METRICS_TOKEN": _env("METRICS_TOKEN"),
        "BABEL_DEFAULT_LOCALE": "ru",
        "BABEL_DEFAULT_TIMEZONE": "Europe/Moscow",
    }
    if _env("TELEGRAM_WEBHOOK_SECRET"):
        cfg["TELEGRAM_WEBHOOK_SECRET"] = _env("TELEGRAM_WEBHOOK_SECRET")
    else:
        # Derived, so that web and worker processes agree without another variable.
        digest = hashlib.sha256(("telegram-webhook:" + cfg["SECRET_KEY"]).encode()).hexdigest()
        cfg["TELEGRAM_WEBHOOK_SECRET"] = digest[:48]

    if app_env == "development":
        cfg["DEBUG"] = _env("FLASK_DEBUG", "0") == "1"
    if app_env == "testing":
        cfg["SQLALCHEMY_DATABASE_URI"] = _env("TEST_DATABASE_URL", "sqlite://")
        cfg["WTF_CSRF_ENABLED"] = False
        # Nothing runs by the clock in a test unless the test asks for it.
        cfg["HEALTH_CHECK_INTERVAL_SECONDS"] = 0
        cfg["DAILY_SUMMARY_HOUR"] = None
        cfg["NSPK_BANKS_REFRESH_HOURS"] = 0

    cfg.update(overrides)
    if cfg["JOB_RETENTION_DAYS"] < 1:
        # A repeated event finds its done job (by key) and adds nothing: keep them a while.
        raise ConfigError(f"JOB_RETENTION_DAYS must be at least 1, got {cfg['JOB_RETENTION_DAYS']}")
    if cfg["LOG_FORMAT"] not in ("json", "plain"):
        raise ConfigError(f"LOG_FORMAT must be json or plain, got {cfg['LOG_FORMAT']!r}")
    if cfg["TELEGRAM_INIT_DATA_MAX_AGE"] < 1:
        raise ConfigError("TELEGRAM_INIT_DATA_MAX_AGE must be at least 1 second, got "
                          f"{cfg['TELEGRAM_INIT_DATA_MAX_AGE']}")
    if production:
        _check_production(cfg, secret_key_given=bool(secret_key) or "SECRET_KEY" in overrides)
    return cfg


def _check_production(cfg: dict, *, secret_key_given: bool) -> None:
    problems = []
    if cfg.get("DEBUG") or get_debug_flag():
        # `flask --debug` and FLASK_DEBUG=1 turn on Werkzeug's debugger, which runs any code
        # a visitor types into a traceback page.
        problems.append("FLASK_DEBUG is on: the debugger must never run in production "
                        "(unset FLASK_DEBUG, drop --debug)")
    if not secret_key_given:
        problems.append(f"SECRET_KEY is not set: {SECRET_KEY_HINT}")
    else:
        problems += _secret_key_problems(cfg["SECRET_KEY"])
    problems += _url_problems("PUBLIC_URL", cfg.get("PUBLIC_URL"), "the bank and customers "
                              "must reach it from the internet")
    for name in ("RAIFFEISEN_SBP_MERCHANT_ID", "RAIFFEISEN_SECRET_KEY"):
        if not cfg.get(name):
            problems.append(f"{name} is not set")
    if cfg.get("RAIFFEISEN_SECRET_KEY") == SANDBOX_SECRET_KEY:
        problems.append("RAIFFEISEN_SECRET_KEY is the sandbox key")
    if cfg.get("RAIFFEISEN_SBP_MERCHANT_ID") == SANDBOX_MERCHANT_ID:
        problems.append("RAIFFEISEN_SBP_MERCHANT_ID is the sandbox merchant")
    problems += _url_problems("RAIFFEISEN_API_URL", cfg.get("RAIFFEISEN_API_URL"),
                              "the local sandbox, not the bank")
    problems += _url_problems("TELEGRAM_API_URL", cfg.get("TELEGRAM_API_URL"),
                              "not Telegram")
    if cfg.get("FISCAL_PROVIDER") == "atol":
        for name in ("ATOL_LOGIN", "ATOL_PASSWORD", "ATOL_GROUP_CODE"):
            if not cfg.get(name):
                problems.append(f"{name} is not set (or set FISCAL_PROVIDER=none)")
        if cfg.get("ATOL_PASSWORD") == SANDBOX_ATOL_PASSWORD:
            problems.append("ATOL_PASSWORD is the sandbox's")
        problems += _url_problems("ATOL_API_URL", cfg.get("ATOL_API_URL"),
                                  "the local sandbox, not ATOL")
    if cfg.get("FISCAL_PROVIDER") != "none":
        for name in ("COMPANY_INN", "COMPANY_EMAIL", "COMPANY_SNO", "COMPANY_PAYMENT_ADDRESS"):
            if not cfg.get(name):
                problems.append(f"{name} is not set")
    if problems:
        raise ConfigError(problems, heading="production configuration refused")


def _secret_key_problems(key: str) -> list[str]:
    lowered = key.lower()
    if any(word in lowered for word in PLACEHOLDER_WORDS):
        return [f"SECRET_KEY looks like a placeholder: {SECRET_KEY_HINT}"]
    if len(key) < SECRET_KEY_MIN_LENGTH:
        return [f"SECRET_KEY has {len(key)} characters: {SECRET_KEY_HINT}"]
    if len(set(key)) < SECRET_KEY_MIN_DISTINCT:
        return [f"SECRET_KEY repeats a few characters: {SECRET_KEY_HINT}"]
    return []


def _url_problems(name: str, url: str | None, loopback_means: str) -> list[str]:
    """What is wrong with a production URL: not https, or pointing at this machine."""
    if not url:
        return [f"{name} is not set"]
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return [f"{name} is not a valid URL: {url!r}"]
    if not host:
        return [f"{name} has no host: {url!r}"]
    problems = []
    if parts.scheme.lower() != "https":
        problems.append(f"{name} must be an https:// URL, not {url!r}")
    if _is_loopback(host):
        problems.append(f"{name} points at this machine ({host}): {loopback_means}")
    return problems


def _is_loopback(host: str) -> bool:
    """localhost (any case, any subdomain), 127.0.0.0/8 in any spelling the OS accepts
    (127.1, 2130706433), ::1, an IPv4-mapped loopback, and the unspecified 0.0.0.0 / ::."""
    host = host.rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        try:
            # The short and numeric IPv4 forms that resolvers also accept.
            address = ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return False
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    return address.is_loopback or address.is_unspecified
