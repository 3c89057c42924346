"""Configuration: production refuses to start without secrets or with sandbox providers."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app import create_app
from app.config import SANDBOX_MERCHANT_ID, SANDBOX_SECRET_KEY, ConfigError, load_config

PRODUCTION = {
    "SECRET_KEY": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "PUBLIC_URL": "https://kassa.shop.example.ru",
    "RAIFFEISEN_SBP_MERCHANT_ID": "MA0000123456",
    "RAIFFEISEN_SECRET_KEY": "real-bank-key",
    "RAIFFEISEN_API_URL": "https://pay.raif.ru",
    "ATOL_LOGIN": "shop-login",
    "ATOL_PASSWORD": "shop-password",
    "ATOL_GROUP_CODE": "group-1",
    "ATOL_API_URL": "https://online.atol.ru/possystem/v5",
    "COMPANY_INN": "7707083893",
    "COMPANY_EMAIL": "shop@example.ru",
    "COMPANY_SNO": "usn_income",
    "COMPANY_PAYMENT_ADDRESS": "https://shop.example.ru",
    "DATABASE_URL": "postgresql+psycopg://kassa@db/kassa",
}


@pytest.fixture
def production_env(monkeypatch):
    for name in [*list(PRODUCTION), "TELEGRAM_WEBHOOK_SECRET", "FISCAL_PROVIDER"]:
        monkeypatch.delenv(name, raising=False)
    for name, value in PRODUCTION.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("APP_ENV", "production")
    return monkeypatch


def test_production_starts_with_real_settings(production_env):
    config = load_config()
    assert config["APP_ENV"] == "production"
    assert config["SECRET_KEY"] == PRODUCTION["SECRET_KEY"]
    assert config["RAIFFEISEN_API_URL"] == "https://pay.raif.ru"


@pytest.mark.parametrize(
    ("name", "value", "complaint"),
    [
        ("SECRET_KEY", None, "SECRET_KEY is not set"),
        ("SECRET_KEY", "change-me", "SECRET_KEY looks like a placeholder"),
        ("SECRET_KEY", "change-me-to-64-random-hex-chars", "SECRET_KEY looks like a placeholder"),
        ("SECRET_KEY", "dev", "SECRET_KEY has 3 characters"),
        ("SECRET_KEY", "a-real-secret", "SECRET_KEY looks like a placeholder"),
        ("SECRET_KEY", "9f86d081884c7d659a2feaa0c55ad015", "SECRET_KEY has 32 characters"),
        ("SECRET_KEY", "x" * 80, "SECRET_KEY repeats a few characters"),
        ("SECRET_KEY", "abab" * 20, "SECRET_KEY repeats a few characters"),
        ("PUBLIC_URL", None, "PUBLIC_URL is not set"),
        ("PUBLIC_URL", "http://kassa.shop.example.ru", "PUBLIC_URL must be an https:// URL"),
        ("PUBLIC_URL", "https://LocalHost:5000", "PUBLIC_URL points at this machine"),
        ("PUBLIC_URL", "https://127.0.0.1", "PUBLIC_URL points at this machine"),
        ("PUBLIC_URL", "https://127.3.2.1:8443", "PUBLIC_URL points at this machine"),
        ("PUBLIC_URL", "https://[::1]:5000", "PUBLIC_URL points at this machine"),
        ("PUBLIC_URL", "https://0.0.0.0:5000", "PUBLIC_URL points at this machine"),
        ("PUBLIC_URL", "https://127.1/", "PUBLIC_URL points at this machine"),
        ("PUBLIC_URL", "https://[::ffff:127.0.0.1]/", "PUBLIC_URL points at this machine"),
        ("PUBLIC_URL", "https://kassa.localhost", "PUBLIC_URL points at this machine"),
        ("PUBLIC_URL", "https://kassa.example.ru:port", "PUBLIC_URL is not a valid URL"),
        ("RAIFFEISEN_API_URL", "http://pay.raif.ru", "RAIFFEISEN_API_URL must be an https://"),
        ("RAIFFEISEN_API_URL", "https://LOCALHOST:8081", "local sandbox"),
        ("RAIFFEISEN_API_URL", "https://[::1]:8081", "local sandbox"),
        ("RAIFFEISEN_API_URL", "https://127.0.0.2:8081", "local sandbox"),
        ("ATOL_API_URL", "http://online.atol.ru/possystem/v5", "ATOL_API_URL must be an https://"),
        ("ATOL_API_URL", "https://0.0.0.0:8081/possystem/v5", "ATOL_API_URL points at this"),
        ("ATOL_PASSWORD", "zUr0OxfI", "ATOL_PASSWORD is the sandbox's"),
        ("TELEGRAM_API_URL", "http://api.telegram.org", "TELEGRAM_API_URL must be an https://"),
        ("RAIFFEISEN_SECRET_KEY", None, "RAIFFEISEN_SECRET_KEY is not set"),
        ("RAIFFEISEN_SECRET_KEY", SANDBOX_SECRET_KEY, "sandbox key"),
        ("RAIFFEISEN_SBP_MERCHANT_ID", SANDBOX_MERCHANT_ID, "sandbox merchant"),
        ("RAIFFEISEN_API_URL", "http://127.0.0.1:8081", "local sandbox"),
        ("ATOL_API_URL", "http://localhost:8081/possystem/v5", "sandbox"),
        ("ATOL_PASSWORD", None, "ATOL_PASSWORD is not set"),
        ("COMPANY_INN", None, "COMPANY_INN is not set"),
    ],
)
def test_production_refuses(production_env, name, value, complaint):
    if value is None:
        production_env.delenv(name)
    else:
        production_env.setenv(name, value)
    with pytest.raises(ConfigError) as refused:
        create_app()
    assert any(complaint in problem for problem in refused.value.problems), refused.value


@pytest.mark.parametrize("host", ["localhost", "LocalHost", "127.0.0.1", "127.200.3.4",
                                  "[::1]", "0.0.0.0",  # noqa: S104
                                  "[::]", "2130706433"])
def test_every_loopback_spelling_is_refused_for_a_provider(production_env, host):
    production_env.setenv("RAIFFEISEN_API_URL", f"https://{host}:8081")
    with pytest.raises(ConfigError) as refused:
        load_config()
    assert refused.value.problems == [
        f"RAIFFEISEN_API_URL points at this machine ({host.strip('[]').lower()}): "
        "the local sandbox, not the bank"
    ]


@pytest.mark.parametrize("url", ["https://pay.raif.ru", "https://localhost.example.ru",
                                 "https://127-0-0-1.example.ru", "https://10.0.0.5:8443"])
def test_hosts_that_only_look_local_are_accepted(production_env, url):
    production_env.setenv("RAIFFEISEN_API_URL", url)
    assert load_config()["RAIFFEISEN_API_URL"] == url


ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
BAD_PRODUCTION = {
    "SECRET_KEY": "change-me",
    "PUBLIC_URL": "http://localhost:5000",
    "RAIFFEISEN_API_URL": "http://127.0.0.1:8081",
}


def _production_process(command: list[str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if k not in PRODUCTION and not k.startswith(("FLASK_", "ATOL_", "TELEGRAM_"))}
    env.update(PRODUCTION, **BAD_PRODUCTION, APP_ENV="production", FLASK_APP="wsgi")
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL, check=False)


@pytest.mark.parametrize("command", [
    [str(BIN / "flask"), "qr", "show", "1"],
    [str(BIN / "gunicorn"), "--no-control-socket", "--bind", "127.0.0.1:0", "wsgi:app"],
], ids=["flask", "gunicorn"])
def test_refused_production_exits_with_one_line_per_problem(command):
    done = _production_process(command)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    problems = [line for line in done.stderr.splitlines() if line.startswith("  - ")]
    assert sorted(problems) == sorted([
        "  - SECRET_KEY looks like a placeholder: use at least 64 random characters, e.g. "
        "the output of python -c 'import secrets; print(secrets.token_hex(32))'",
        "  - PUBLIC_URL must be an https:// URL, not 'http://localhost:5000'",
        "  - PUBLIC_URL points at this machine (localhost): the bank and customers must "
        "reach it from the internet",
        "  - RAIFFEISEN_API_URL must be an https:// URL, not 'http://127.0.0.1:8081'",
        "  - RAIFFEISEN_API_URL points at this machine (127.0.0.1): the local sandbox, "
        "not the bank",
    ])


def test_production_without_a_register_needs_no_atol(production_env):
    production_env.setenv("FISCAL_PROVIDER", "none")
    production_env.delenv("ATOL_PASSWORD")
    assert load_config()["FISCAL_PROVIDER"] == "none"


def test_development_defaults_point_at_the_sandbox(monkeypatch):
    for name in ("APP_ENV", "RAIFFEISEN_API_URL", "ATOL_API_URL", "SECRET_KEY",
                 "RAIFFEISEN_SECRET_KEY", "SANDBOX_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SANDBOX_PORT", "9191")
    config = load_config()
    assert config["RAIFFEISEN_API_URL"] == "http://127.0.0.1:9191"
    assert config["ATOL_API_URL"] == "http://127.0.0.1:9191/possystem/v5"
    assert config["RAIFFEISEN_SECRET_KEY"] == SANDBOX_SECRET_KEY
    assert len(config["SECRET_KEY"]) >= 32
    assert config["TELEGRAM_WEBHOOK_SECRET"]


def test_bad_app_env_is_refused(monkeypatch):
    monkeypatch.setenv("APP_ENV", "staging")
    with pytest.raises(ConfigError):
        load_config()


@pytest.mark.parametrize(("name", "value", "line"), [
    ("SBP_PROVIDER", "tochka", "  - SBP_PROVIDER='tochka' is not a bank Kassa knows: raiffeisen"),
    ("FISCAL_PROVIDER", "kkt",
     "  - FISCAL_PROVIDER='kkt' is not a register Kassa knows: atol, raiffeisen, none"),
])
def test_an_unknown_provider_is_one_line_not_a_traceback(name, value, line):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
    env.update({"APP_ENV": "development", "FLASK_APP": "wsgi", name: value})
    done = subprocess.run([str(BIN / "flask"), "qr", "show", "1"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, check=False)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines() == ["configuration refused:", line]


def test_demo_receipts_name_the_shops_own_site_as_the_place_of_settlement(monkeypatch):
    """In development the place of settlement on a receipt is the shop's PUBLIC_URL (where
    the customer pays), not the register's site."""
    monkeypatch.delenv("COMPANY_PAYMENT_ADDRESS", raising=False)
    monkeypatch.setenv("PUBLIC_URL", "http://127.0.0.1:5050")
    assert load_config("development")["COMPANY_PAYMENT_ADDRESS"] == "http://127.0.0.1:5050"
    monkeypatch.delenv("PUBLIC_URL")
    assert load_config("development")["COMPANY_PAYMENT_ADDRESS"] == "http://127.0.0.1:5000"


def test_an_init_data_age_under_a_second_is_refused(monkeypatch):
    monkeypatch.setenv("TELEGRAM_INIT_DATA_MAX_AGE", "0")
    with pytest.raises(ConfigError, match="TELEGRAM_INIT_DATA_MAX_AGE must be at least 1"):
        load_config()
    monkeypatch.setenv("TELEGRAM_INIT_DATA_MAX_AGE", "600")
    assert load_config()["TELEGRAM_INIT_DATA_MAX_AGE"] == 600


def test_development_without_a_secret_key_keeps_one_for_every_process(monkeypatch, tmp_path):
    import app.config as config_module

    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setattr(config_module, "INSTANCE", tmp_path)
    first = load_config("development")["SECRET_KEY"]
    second = load_config("development")["SECRET_KEY"]  # another gunicorn worker, a restart
    assert first == second and len(first) == 64
    assert (tmp_path / "secret-key").stat().st_mode & 0o777 == 0o600
    assert load_config("development")["TELEGRAM_WEBHOOK_SECRET"] == \
        load_config("development")["TELEGRAM_WEBHOOK_SECRET"]


def test_a_form_without_its_csrf_token_is_refused_in_russian(make_app):
    app = make_app(WTF_CSRF_ENABLED=True)
    response = app.test_client().post("/admin/login", data={"email": "a@b.ru", "password": "x"})
    assert response.status_code == 400
    assert "Обновите страницу" in response.get_data(as_text=True)
