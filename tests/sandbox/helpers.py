"""What the sandbox tests share: the sandbox's test credentials, a fake clock for the bank,
a client of its API, and a receiver that records the callbacks it sends."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from app.sandbox import clock

MERCHANT_ID = "MA0000000552"
SECRET_KEY = "test-secret-key"
AUTH = {"Authorization": f"Bearer {SECRET_KEY}"}
FAST_RETRIES = (0.05, 0.05, 0.05, 0.05, 0.05)


class FakeClock:
    """Replaces ``app.sandbox.clock.now``; starts at the real time and moves only on advance()."""

    def __init__(self) -> None:
        self.current = datetime.now(clock.MSK)

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


class Bank:
    """Thin helper over the Flask test client speaking the bank API with the right key."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def call(self, method: str, path: str, body: Any = None, *, auth: bool = True, **kw: Any):
        headers = dict(AUTH) if auth else {}
        headers.update(kw.pop("headers", {}))
        if body is not None:
            kw["json"] = body
        return self.client.open(path, method=method, headers=headers, **kw)

    def register(self, **fields: Any):
        body = {"sbpMerchantId": MERCHANT_ID, **fields}
        if "amount" in fields and "currency" not in fields:
            body["currency"] = "RUB"
        return self.call("POST", "/api/sbp/v2/qrs", body)

    def dynamic(self, order: str = "order-1", amount: Any = "100.00", **fields: Any) -> str:
        response = self.register(qrType="QRDynamic", order=order, amount=amount, **fields)
        assert response.status_code == 200, response.get_json()
        return response.get_json()["qrId"]

    def static(self, order: str = "static-1", **fields: Any) -> str:
        response = self.register(qrType="QRStatic", order=order, **fields)
        assert response.status_code == 200, response.get_json()
        return response.get_json()["qrId"]

    def variable(self, **fields: Any) -> str:
        response = self.register(qrType="QRVariable", **fields)
        assert response.status_code == 200, response.get_json()
        return response.get_json()["qrId"]

    def qr(self, qr_id: str) -> dict[str, Any]:
        return self.call("GET", f"/api/sbp/v2/qrs/{qr_id}").get_json()

    def pay(self, qr_id: str, status: str = "SUCCESS", amount: str | None = None):
        body: dict[str, Any] = {"status": status}
        if amount is not None:
            body["amount"] = amount
        return self.client.post(f"/sandbox/qrs/{qr_id}/pay", json=body)

    def activate(self, qr_id: str, amount: Any = "250.00", **fields: Any):
        return self.call(
            "POST", "/api/payment/v1/orders", {"amount": amount, "qr": {"id": qr_id}, **fields}
        )

    def order(self, order_id: str):
        return self.call("GET", f"/api/payment/v1/orders/{order_id}")

    def refund(self, **fields: Any):
        return self.call("POST", "/api/sbp/v1/refund", fields)


class Receiver:
    """A tiny real HTTP server standing in for Kassa's /sbp/callback."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.responses: list[int] = []  # status codes to answer with, in order; then 200
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.requests.append(
                        {"path": self.path, "headers": dict(self.headers), "body": body}
                    )
                    status = receiver.responses.pop(0) if receiver.responses else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/sbp/callback"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
