"""The steady mix the fault suite runs under every fault: checkouts (the cashier's Mini App
and the constructor API, alternating web 1 and web 2) and payments through the sandbox bank,
which then calls Kassa back. Every answer is kept, with the phase it came in."""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import requests

from tests.faults.conftest import BOT_TOKEN, CASHIER_ID, QR_IN_PAYLOAD, Stack

ORDER_ID = re.compile(r'data-order-id="(\d+)"')
STATE = re.compile(r'data-state="([a-z:]+)"')
TRACEBACK_SIGNS = ("Traceback (most recent call last)", 'File "/')


def till_auth() -> str:
    from app.telegram.initdata import sign_init_data

    user = {"id": CASHIER_ID, "first_name": "Анна", "language_code": "ru"}
    return "tma " + sign_init_data({
        "auth_date": str(int(time.time())), "query_id": "AAfaults",
        "user": json.dumps(user, ensure_ascii=False, separators=(",", ":")),
    }, bot_token=BOT_TOKEN)


@dataclass
class Checkout:
    """One checkout the load (or a test) made, and what became of it."""

    phase: str
    channel: str  # "till" (the Mini App) or "api" (the constructor API)
    web: int  # 1 or 2
    status: int | None  # the HTTP answer; None when there was none
    ok: bool  # a QR is shown (till) / the payment exists (api)
    order_id: int | None = None  # Kassa's order id (till; api once known)
    public_id: str | None = None  # the API's payment_id
    qr_id: str | None = None
    paid: str | None = None  # "sandbox": paid by us; "bank": the bank had paid it already
    without_qr: bool = False  # answered without a QR (the API's `pending`: the job makes it)
    message: str = ""
    at: float = field(default_factory=time.monotonic)


class Load:
    """Two client threads, each: a checkout, then (mostly) the customer pays its QR."""

    def __init__(self, stack: Stack, *, threads: int = 2, pause: float = 0.35,
                 pay_share: float = 0.85, seed: int = 14):
        self.stack = stack
        self.phase = "warm-up"
        self.checkouts: list[Checkout] = []
        self.bad_answers: list[str] = []  # what a client must never see
        self.answers: Counter[tuple[str, str]] = Counter()  # (phase, "till 200") -> n
        self.pending_api: list[Checkout] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(n,), daemon=True,
                                          name=f"load-{n}") for n in range(threads)]
        self._pause, self._pay_share = pause, pay_share
        self._rng = random.Random(seed)
        self._numbers = iter(range(1, 10**9))
        self.auth = till_auth()

    # -- control

    def start(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def in_phase(self, phase: str) -> list[Checkout]:
        with self._lock:
            return [c for c in self.checkouts if c.phase == phase]

    # -- the clients

    def _run(self, index: int) -> None:
        session = requests.Session()
        session.trust_env = False
        turn = index
        while not self._stop.is_set():
            channel = "till" if turn % 2 == 0 else "api"
            web = 1 + (turn // 2 + index) % 2
            turn += 1
            try:
                checkout = self.checkout(session, channel, web)
                if checkout.qr_id and self._rng.random() < self._pay_share:
                    self.pay(session, checkout)
                elif checkout.ok and checkout.qr_id is None and channel == "api":
                    with self._lock:
                        self.pending_api.append(checkout)
                self._sweep_pending(session)
            except Exception as exc:  # a client thread must live through every fault
                with self._lock:
                    self.answers[(self.phase, f"{channel} {type(exc).__name__}")] += 1
            self._stop.wait(self._pause)

    def checkout(self, session: requests.Session, channel: str, web: int) -> Checkout:
        url = self.stack.web_urls[web - 1]
        phase = self.phase
        if channel == "till":
            product = self._rng.choice(self.stack.product_ids)
            response = session.post(
                f"{url}/miniapp/orders", timeout=30,
                data={"product_id": [str(product)], "qty": [self._rng.choice(["1", "2"])]},
                headers={"Authorization": self.auth, "HX-Request": "true"})
            self._look(phase, channel, response)
            found = ORDER_ID.search(response.text)
            state = STATE.search(response.text)
            checkout = Checkout(phase, channel, web, response.status_code,
                                ok=response.status_code == 200 and state is not None
                                and state.group(1).startswith(("pending", "paid")),
                                order_id=int(found.group(1)) if found else None,
                                message=_error_text(response.text))
            if checkout.ok:
                checkout.qr_id = self.stack.scalar(
                    "SELECT qr_id FROM qr_codes WHERE order_id = :o AND kind = 'dynamic' "
                    "ORDER BY id DESC LIMIT 1", o=checkout.order_id)
        else:
            number = next(self._numbers)
            response = session.post(
                f"{url}/api/v1/payments", timeout=30,
                json={"amount": f"{self._rng.randint(100, 900)}.{number % 100:02d}",
                      "order_id": f"faults-{number}", "description": f"Заказ бота {number}"},
                headers={"Authorization": f"Bearer {self.stack.api_key}"})
            self._look(phase, channel, response)
            body = _json(response)
            checkout = Checkout(phase, channel, web, response.status_code,
                                ok=response.status_code in (200, 201) and body.get("ok") is True,
                                public_id=body.get("payment_id"),
                                message=str(body.get("message", "")))
            found = QR_IN_PAYLOAD.search(body.get("qr_payload") or "")
            checkout.qr_id = found.group(1) if found else None
            checkout.without_qr = checkout.ok and not found
        with self._lock:
            self.checkouts.append(checkout)
        return checkout

    def pay(self, session: requests.Session, checkout: Checkout) -> None:
        """The customer pays in their bank app (the sandbox then calls Kassa back)."""
        response = session.post(f"{self.stack.bank_url}/sandbox/qrs/{checkout.qr_id}/pay",
                                json={"status": "SUCCESS"}, timeout=10)
        if response.status_code == 200:
            checkout.paid = "sandbox"
        elif response.status_code == 409 and "already paid" in response.text:
            checkout.paid = "bank"  # paid the moment it was registered (pay_on_register)

    def _sweep_pending(self, session: requests.Session) -> None:
        """API payments answered `pending` without a QR (a slow or absent bank): once the
        job has registered the QR, the customer pays it."""
        with self._lock:  # each is taken by one client thread
            due = [c for c in self.pending_api if time.monotonic() - c.at > 2][:3]
            for checkout in due:
                self.pending_api.remove(checkout)
        for checkout in due:
            url = self.stack.web_urls[checkout.web - 1]
            response = session.get(f"{url}/api/v1/payments/{checkout.public_id}", timeout=30,
                                   headers={"Authorization": f"Bearer {self.stack.api_key}"})
            found = QR_IN_PAYLOAD.search(_json(response).get("qr_payload") or "")
            if found:
                checkout.qr_id = found.group(1)
                self.pay(session, checkout)
            else:
                with self._lock:
                    self.pending_api.append(checkout)

    def _look(self, phase: str, channel: str, response: requests.Response) -> None:
        """Count the answer; note any that shows a client what it must never see."""
        with self._lock:
            self.answers[(phase, f"{channel} {response.status_code}")] += 1
        text = response.text
        problem = None
        if any(sign in text for sign in TRACEBACK_SIGNS):
            problem = "a traceback"
        elif response.status_code >= 500 and response.status_code not in (502, 503):
            problem = "an internal error (a fault must be answered 502/503, 'try again')"
        elif response.status_code >= 500 and channel == "api" and (
                not response.headers.get("Content-Type", "").startswith("application/json")
                or _json(response).get("ok") is not False):
            problem = "an error that is not the API's JSON"
        elif response.status_code >= 500 and channel == "till" and not _error_text(text):
            problem = "an error without a message"
        if problem:
            with self._lock:
                self.bad_answers.append(f"{phase}: {channel} {response.status_code} showed "
                                        f"{problem}: {text[:300]!r}")


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _error_text(html: str) -> str:
    """The message a screen shows (`data-testid="error"`, or the error page's text)."""
    found = re.search(r'data-testid="error"[^>]*>([^<]+)<', html)
    if found:
        return found.group(1).strip()
    found = re.search(r"<(?:h1|p)[^>]*>([^<]*[А-Яа-я][^<]*)<", html)
    return found.group(1).strip() if found else ""
