"""``flask sandbox run`` wiring (the blocking server itself is replaced)."""

from __future__ import annotations

from typing import Any

import click
import pytest
from flask import Flask

from app.sandbox import SandboxSettings, cli


def test_settings_from_config() -> None:
    settings = cli.settings_from_config(
        {
            "RAIFFEISEN_SBP_MERCHANT_ID": "MA0000000552",
            "RAIFFEISEN_SECRET_KEY": "key",
            "PUBLIC_URL": "https://shop.example/",
            "SANDBOX_PORT": "9090",
        }
    )
    assert settings.merchant_id == "MA0000000552"
    assert settings.secret_key == "key"
    assert settings.callback_url == "https://shop.example/sbp/callback"
    assert settings.base_url == "http://127.0.0.1:9090"
    with pytest.raises(click.ClickException):
        cli.settings_from_config({"RAIFFEISEN_SECRET_KEY": "key"})


def test_run_command(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[SandboxSettings, str, int]] = []

    def fake_serve(settings: SandboxSettings, host: str, port: int) -> None:
        calls.append((settings, host, port))

    monkeypatch.setattr(cli, "serve_sandbox", fake_serve)
    app = Flask("kassa-test")
    app.config.update(
        RAIFFEISEN_SBP_MERCHANT_ID="MA0000000552",
        RAIFFEISEN_SECRET_KEY="key",
        PUBLIC_URL="http://127.0.0.1:5000",
        SANDBOX_PORT=8099,
    )
    app.cli.add_command(cli.sandbox_cli)
    runner = app.test_cli_runner()
    result: Any = runner.invoke(args=["sandbox", "run"])
    assert result.exit_code == 0, result.output
    settings, host, port = calls[-1]
    assert (host, port) == ("127.0.0.1", 8099)
    assert settings.callback_url == "http://127.0.0.1:5000/sbp/callback"
    assert "http://127.0.0.1:8099/" in result.output
    any_interface = "0.0.0.0"  # noqa: S104 - only passed through, nothing binds here
    result = runner.invoke(args=["sandbox", "run", "--host", any_interface, "--port", "7000"])
    assert result.exit_code == 0, result.output
    assert calls[-1][1:] == (any_interface, 7000)
    assert "http://127.0.0.1:7000/" in result.output


@pytest.mark.parametrize(("args", "port", "complaint"), [
    (["--port", "99999"], 8099, "'--port': 99999 is not in the range 1<=x<=65535"),
    (["--port", "0"], 8099, "'--port': 0 is not in the range 1<=x<=65535"),
    ([], 70000, "Error: SANDBOX_PORT must be 1..65535, not 70000"),
])
def test_a_port_out_of_range_is_refused(monkeypatch: pytest.MonkeyPatch, args, port,
                                        complaint) -> None:
    calls: list = []
    monkeypatch.setattr(cli, "serve_sandbox", lambda *a, **kw: calls.append(a))
    app = Flask("kassa-test")
    app.config.update(RAIFFEISEN_SBP_MERCHANT_ID="MA0000000552", RAIFFEISEN_SECRET_KEY="key",
                      SANDBOX_PORT=port)
    app.cli.add_command(cli.sandbox_cli)
    result: Any = app.test_cli_runner().invoke(args=["sandbox", "run", *args])
    assert result.exit_code in (1, 2)
    assert complaint in result.output
    assert calls == []
