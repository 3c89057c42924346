"""Configuration: production refuses to start without secrets or with sandbox providers."""

import pytest

from app import create_app
from app.config import SANDBOX_MERCHANT_ID, SANDBOX_SECRET_KEY, ConfigError, load_config

PRODUCTION = {
    "SECRET_KEY": "a-real-secret",
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
    assert config["SECRET_KEY"] == "a-real-secret"
    assert config["RAIFFEISEN_API_URL"] == "https://pay.raif.ru"


@pytest.mark.parametrize(
    ("name", "value", "complaint"),
    [
        ("SECRET_KEY", None, "SECRET_KEY is not set"),
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
    assert complaint in str(refused.value)


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
