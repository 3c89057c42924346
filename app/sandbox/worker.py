"""The sandbox's single background thread: delivers callbacks, completes refunds and
finishes fiscal documents (whose ATOL callbacks it then delivers too)."""

from __future__ import annotations

import logging
import threading
import time

import requests

from . import clock
from .fiscal_state import CallbackDelivery
from .outgoing import Attempt
from .state import Delivery, SandboxState

log = logging.getLogger(__name__)

#: Timeout of one callback POST, in seconds.
DELIVERY_TIMEOUT = 5.0
#: Upper bound of one idle wait (the thread is also woken whenever work is queued).
_MAX_IDLE_WAIT = 1.0


class Worker:
    """Started lazily when the first callback or refund is queued; :meth:`stop` ends it."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._thread: threading.Thread | None = None
        self._stopped = False
        # Local callbacks must not go through a proxy from the environment.
        self._session = requests.Session()
        self._session.trust_env = False
        state.on_work = self._ensure_started

    def _ensure_started(self) -> None:
        # Called with state.lock held, which serialises the check-and-start.
        if self._thread is None and not self._stopped:
            self._thread = threading.Thread(target=self._run, name="sandbox-worker", daemon=True)
            self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = DELIVERY_TIMEOUT + 1) -> None:
        with self.state.lock:
            self._stopped = True
            self.state.on_work = None
            self.state.changed.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._session.close()

    def _run(self) -> None:
        state = self.state
        while True:
            with state.lock:
                while True:
                    if self._stopped:
                        return
                    now = time.monotonic()
                    state._complete_due_refunds(now)
                    state.fiscal._complete_due(now)
                    due = state._due_deliveries(now)
                    if due:
                        break
                    wait = state._next_wakeup(now)
                    if wait is None or wait > _MAX_IDLE_WAIT:
                        wait = _MAX_IDLE_WAIT
                    state.changed.wait(wait)
            for delivery, url in due:
                if self._stopped:
                    return
                self._attempt(delivery, url)

    def _attempt(self, delivery: Delivery | CallbackDelivery, url: str) -> None:
        started = time.monotonic()
        attempt = Attempt(at=clock.now(), url=url)
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if delivery.signature is not None:
            headers[delivery.signature_header] = delivery.signature
        try:
            response = self._session.post(
                url,
                data=delivery.body.encode("utf-8"),
                headers=headers,
                timeout=DELIVERY_TIMEOUT,
                allow_redirects=False,
            )
            attempt.status_code = response.status_code
            response.close()
        except Exception as exc:  # any failure is just a failed attempt
            attempt.error = f"{type(exc).__name__}: {exc}"
        log.info(
            "callback for %s to %s: %s",
            delivery.label,
            url,
            attempt.status_code if attempt.error is None else attempt.error,
        )
        with self.state.lock:
            self.state._record_attempt(delivery, attempt, started)
