"""A database that cannot be reached: commands say so in one line and exit 1; the worker
keeps trying with a growing pause and logs one line per attempt."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FLASK = str(Path(sys.executable).parent / "flask")
NOBODY_LISTENS = "postgresql+psycopg://kassa:hunter2@127.0.0.1:1/kassa"


def _env(database_url: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "SQLALCHEMY"))}
    env.update(APP_ENV="development", FLASK_APP="wsgi", DATABASE_URL=database_url,
               LOG_LEVEL="INFO")
    return env


def _missing_dir_sqlite(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'kassa.db'}"


@pytest.mark.parametrize("where", ["postgresql", "sqlite"])
@pytest.mark.parametrize("command", [["qr", "show", "1"], ["receipt", "show", "1"],
                                     ["demo", "seed"], ["worker", "--burst"], ["db", "upgrade"]])
def test_a_command_says_the_database_cannot_be_used_in_one_line(tmp_path, where, command):
    url = NOBODY_LISTENS if where == "postgresql" else _missing_dir_sqlite(tmp_path)
    done = subprocess.run([FLASK, *command], cwd=ROOT, env=_env(url), capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL, check=False)

    assert done.returncode == 1
    assert done.stdout == ""
    shown = url.replace("hunter2", "***")
    reason = "Connection refused" if where == "postgresql" else "unable to open database file"
    [line] = done.stderr.splitlines()
    assert line.startswith(f"Error: the database cannot be used: {shown}: ")
    assert reason in line
    assert "hunter2" not in done.stderr


@pytest.mark.parametrize("where", ["postgresql", "sqlite"])
def test_the_worker_retries_with_backoff_one_line_per_attempt(tmp_path, where):
    url = NOBODY_LISTENS if where == "postgresql" else _missing_dir_sqlite(tmp_path)
    worker = subprocess.Popen([FLASK, "worker"], cwd=ROOT, env=_env(url), text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL)
    try:
        time.sleep(4)
    finally:
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=30)

    assert worker.returncode == 0, output
    assert "Traceback" not in output
    attempts = [line for line in output.splitlines() if "database unavailable" in line]
    # Pauses of 0.5, 1 and 2 s: four attempts in four seconds (one more on a slow start
    # would still be far from a busy loop).
    assert 3 <= len(attempts) <= 5, output
    assert [f"(attempt {n}," in line for n, line in enumerate(attempts, 1)] == \
        [True] * len(attempts)
    assert len(output.splitlines()) == len(attempts) + 3, output  # started, signal, stopped


def test_a_database_without_tables_asks_for_the_migration(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    done = subprocess.run([FLASK, "receipt", "show", "1"], cwd=ROOT, env=_env(url),
                          capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, check=False)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"Error: the database cannot be used: {url}: no such table: receipts "
        "(has `flask db upgrade` run?)"
    ]


def test_web_answers_503_in_words_while_the_database_is_down(capfd):
    """PostgreSQL restarting (tests/faults): the API, the bank's callback and the till answer
    503 with a message to try again, not a 500 'internal error'; the log has one line."""
    import json as json_module

    from app import create_app
    from app.telegram.initdata import sign_init_data

    token = "7000004:unreachable-db-token"
    app = create_app({"APP_ENV": "testing", "SQLALCHEMY_DATABASE_URI": NOBODY_LISTENS,
                      "TELEGRAM_BOT_TOKEN": token, "SECRET_KEY": "x" * 64})
    client = app.test_client()
    api = client.post("/api/v1/payments", json={"amount": "100"},
                      headers={"Authorization": "Bearer kassa_some_key"})
    assert api.status_code == 503
    assert api.get_json()["ok"] is False
    assert api.get_json()["error"] == "database_unavailable"
    assert "повторите" in api.get_json()["message"].lower()

    init = sign_init_data({"auth_date": str(int(time.time())), "query_id": "AAH",
                           "user": json_module.dumps({"id": 1001, "first_name": "Анна"})},
                          bot_token=token)
    till = client.get("/miniapp/catalog", headers={"Authorization": f"tma {init}",
                                                   "HX-Request": "true"})
    assert till.status_code == 503
    page = till.get_data(as_text=True)
    assert "база данных не отвечает" in page and "Traceback" not in page

    log = capfd.readouterr().err
    assert "Traceback" not in log and "hunter2" not in log
    assert [line.split()[2] for line in log.splitlines()
            if "database unavailable" in line] == ["ERROR", "ERROR"]
    with app.app_context():
        from app.extensions import db

        db.engine.dispose()


def test_a_connection_lost_after_the_work_does_not_spoil_the_answer(make_app, monkeypatch):
    """PostgreSQL restarting just after a request did its work (tests/faults): ending the
    session fails on the dropped connection. The answer stands (it was a 500 from gunicorn),
    and the next request gets a fresh connection."""
    import sqlalchemy as sa

    from app.extensions import db

    app = make_app()
    drop_after_the_work = [True]

    def dropped(connection):  # the server ends the session under our feet
        connection.driver_connection.close()
        raise db.engine.dialect.loaded_dbapi.OperationalError(
            "terminating connection due to administrator command")

    @app.get("/test-probe")
    def probe():  # a request that read something and answers; the session ends after it
        one = db.session.execute(sa.text("SELECT 1")).scalar()
        if drop_after_the_work[0]:
            monkeypatch.setattr(db.engine.dialect, "do_rollback", dropped)
        return {"one": one}

    client = app.test_client()
    assert client.get("/test-probe").get_json() == {"one": 1}
    monkeypatch.undo()
    drop_after_the_work[0] = False
    assert client.get("/test-probe").get_json() == {"one": 1}
    assert client.get("/readyz").get_json() == {"ok": True}
