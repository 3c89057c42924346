"""Helpers the tests share: waiting for a condition, reading a QR image as a phone does,
emptying the tables between tests, and serving a WSGI app on loopback."""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from werkzeug.serving import make_server

from app.extensions import db
from app.models.audit import APPEND_ONLY_DDL

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")


def wait_for(predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.05):
    """Poll `predicate` until it returns something truthy; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        time.sleep(interval)


def decode_qr(png: bytes) -> str:
    """What a phone camera reads from a QR image (zbarimg, Debian's zbar-tools)."""
    with tempfile.NamedTemporaryFile(suffix=".png") as image:
        image.write(png)
        image.flush()
        out = subprocess.run(["zbarimg", "-q", "--raw", image.name], capture_output=True,
                             text=True, check=True, timeout=20)
    return out.stdout.strip()


def empty_tables(app) -> None:
    with app.app_context():
        tables = list(reversed(db.metadata.sorted_tables))
        if db.engine.dialect.name == "postgresql":
            names = ", ".join(t.name for t in tables)
            db.session.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            # The audit log refuses DELETE (a trigger); a test database may be emptied.
            db.session.execute(sa.text("DROP TRIGGER IF EXISTS audit_log_no_delete"))
            for table in tables:
                db.session.execute(table.delete())
            db.session.execute(sa.text(next(
                ddl for ddl in APPEND_ONLY_DDL["sqlite"] if "audit_log_no_delete" in ddl)))
        db.session.commit()


class LiveServer:
    """A WSGI app served by werkzeug on 127.0.0.1 in a thread."""

    def __init__(self, wsgi_app):
        self.server = make_server("127.0.0.1", 0, wsgi_app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
