"""The fault suite (issue 14): the whole stack on PostgreSQL (two web processes, two workers,
the sandbox bank and register, a fake Telegram) under a steady mix of checkouts and
payments while, one at a time: a worker is SIGKILLed; PostgreSQL restarts; the bank is down,
then slow; the register is down; Telegram answers 429, then 500; callbacks arrive twice, out
of order, and before the QR's own transaction has committed.

The tests run in file order against one stack (module fixtures): each phase asserts that
the system recovered from its fault, and the last one counts what the whole run left:
every paid QR has one payment, one sale receipt done at the register and one cashier
message; every refund one refund receipt; no job left behind. See docs/faults.md.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import datetime
from typing import Any

import pytest
import requests

from tests.faults.conftest import CASHIER_ID, JOB_LEASE_SECONDS, Stack, wait_until
from tests.faults.load import Checkout, Load

pytestmark = [pytest.mark.faults, pytest.mark.slow]

PHASE_SECONDS = 10  # how long each fault lasts with the load running
PAID = ("paid", "partially_refunded", "refunded")
# Dead jobs the run may leave: none. (A job is dead only when its handler failed
# JOB_MAX_ATTEMPTS times; no fault here lasts that long.)
EXPECTED_DEAD: list[str] = []


@pytest.fixture(scope="module")
def load(stack: Stack) -> Any:
    running = Load(stack).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def refunds() -> list[int]:
    """Ids of the refunds the admin asked for during the run."""
    return []


def run_phase(load: Load, name: str, seconds: float = PHASE_SECONDS) -> None:
    load.phase = name
    time.sleep(seconds)


def paid_checkouts(stack: Stack) -> int:
    return stack.scalar("SELECT count(*) FROM payments")


def refund_some(stack: Stack, refunds: list[int], *, full: int, partial: int) -> None:
    """An admin refunds a few paid sales (the panel's service: app.sbp.refunds)."""
    from app.extensions import db
    from app.sbp.refunds import request_refund

    candidates = [row.id for row in stack.rows(
        "SELECT p.id FROM payments p WHERE p.status = 'paid' AND p.refunded_kopecks = 0 "
        "AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.payment_id = p.id) "
        "ORDER BY p.id DESC LIMIT :n", n=full + partial)]
    with stack.app.app_context():
        for index, payment_id in enumerate(candidates):
            amount = None
            if index >= full:
                amount = stack.scalar("SELECT amount_kopecks FROM payments WHERE id = :p",
                                      p=payment_id) // 3
            refunds.append(request_refund(payment_id, amount, reason="fault suite").id)
        db.session.remove()


def bank_callback(stack: Stack, qr_id: str, transaction_id: int) -> tuple[bytes, str]:
    """The bank's signed notification of a transaction, byte for byte as the bank sends it
    (the sandbox's builder), from the transaction the sandbox holds."""
    from app.config import SANDBOX_MERCHANT_ID, SANDBOX_SECRET_KEY
    from app.sandbox.signature import build_notification

    state = stack.bank("GET", "/sandbox/state")
    qr = next(q for q in state["qrs"] if q["qrId"] == qr_id)
    tx = next(t for t in qr["transactions"] if t["transactionId"] == transaction_id)
    kopecks = int(tx["amount"].replace(".", ""))
    when = datetime.fromisoformat(tx["transactionDate"])
    body, signature = build_notification(
        secret_key=SANDBOX_SECRET_KEY, transaction_id=transaction_id, qr_id=qr_id,
        sbp_merchant_id=SANDBOX_MERCHANT_ID, merchant_id=552, amount_kopecks=kopecks,
        transaction_date=when, payment_status=tx["paymentStatus"], additional_info=None,
        order=tx["order"], create_date=when)
    return body.encode(), signature


def post_callback(url: str, body: bytes, signature: str) -> requests.Response:
    return requests.post(f"{url}/sbp/callback", data=body, timeout=30, headers={
        "Content-Type": "application/json", "X-Api-Signature-SHA256": signature})


def test_warm_up(stack: Stack, load: Load, refunds: list[int]) -> None:
    run_phase(load, "warm-up", 6)
    wait_until("payments recorded under the steady load", lambda: paid_checkouts(stack) >= 4,
               30)
    refund_some(stack, refunds, full=1, partial=1)
    assert [c for c in load.in_phase("warm-up") if c.ok], load.answers


def test_worker_killed(stack: Stack, load: Load) -> None:
    load.phase = "worker SIGKILL"
    time.sleep(1)
    killed: dict[int, int] = {}  # pid -> jobs it held
    for _ in range(2):
        # Kill the worker the moment it holds jobs: mid-batch, between a job's effect and
        # its done mark, where a lost job or a repeated effect would show.
        pid, held = wait_until("a worker holding jobs", lambda: _busy_worker(stack), 15,
                               every=0.05)
        stack.kill_worker(next(n for n, p in stack.pids().items() if p == pid))
        killed[pid] = held
        time.sleep(2)
        stack.start_worker()
        time.sleep(2)
    run_phase(load, "worker SIGKILL", 2)
    print(f"\nkilled workers (pid: jobs held) {killed}")
    # Whatever the dead workers held is taken over once its lease runs out.
    for pid, held in killed.items():
        wait_until(f"the {held} jobs leased by the killed worker {pid} taken over",
                   lambda pid=pid: _held_by(stack, pid) == 0, JOB_LEASE_SECONDS + 20)
    stack.procs.check_alive()


def _held_by(stack: Stack, pid: int) -> int:
    return stack.scalar("SELECT count(*) FROM jobs WHERE status = 'running' "
                        "AND locked_by LIKE :w", w=f"%:{pid}:%")


def _busy_worker(stack: Stack) -> tuple[int, int] | None:
    for name in stack.worker_names:
        pid = stack.pids()[name]
        held = _held_by(stack, pid)
        if held:
            return pid, held
    return None


def test_postgresql_restarted(stack: Stack, load: Load) -> None:
    load.phase = "PostgreSQL restart"
    time.sleep(2)
    pids = stack.pids()
    stack.cluster.restart(down_for=3)
    restarted = time.monotonic()
    back_at = wait_until("PostgreSQL back", lambda: stack.scalar("SELECT now()"), 30)
    run_phase(load, "PostgreSQL restart", PHASE_SECONDS - 2)
    for number, url in enumerate(stack.web_urls, 1):
        wait_until(f"web {number} ready again after the restart",
                   lambda url=url: requests.get(f"{url}/readyz", timeout=5).status_code == 200,
                   30)
    # Both webs take checkouts again, without being restarted.
    fresh = [c for c in load.in_phase("PostgreSQL restart") if c.ok and c.at > restarted + 3]
    assert {c.web for c in fresh} == {1, 2}, load.answers
    assert stack.pids() == pids, "a process was restarted"
    # While it was down the webs said so: 503 and words (Load checks every answer's form).
    refused = {key: n for key, n in load.answers.items()
               if key[0] == "PostgreSQL restart" and key[1].endswith(" 503")}
    assert refused, f"no checkout met the database down: {load.answers}"
    stack.procs.check_alive()
    # The workers reconnected: jobs finish after the restart.
    wait_until("jobs done by the workers after the restart",
               lambda: stack.scalar("SELECT count(*) FROM jobs WHERE finished_at > :t",
                                    t=back_at) > 0, 30)


def test_bank_down_then_slow(stack: Stack, load: Load) -> None:
    # Each phase is named once its fault is on: what starts under the name meets the fault.
    stack.bank("POST", "/sandbox/bank/faults", {"down": True})
    load.phase = "bank down"
    time.sleep(PHASE_SECONDS)
    load.phase = "bank coming back"
    stack.bank("POST", "/sandbox/bank/faults", {"down": False, "slow": 2})
    load.phase = "bank slow"
    time.sleep(PHASE_SECONDS)
    load.phase = "after the bank"
    stack.bank("POST", "/sandbox/bank/faults", {"slow": 0})
    down = load.in_phase("bank down")
    till_refused = [c for c in down if c.channel == "till" and not c.ok]
    assert till_refused, f"no till checkout failed while the bank was down: {load.answers}"
    for checkout in till_refused:
        assert checkout.status == 502 and "Банк не отвечает" in checkout.message, checkout
    # The API keeps the order and answers `pending`; its job registers the QR later.
    api_down = [c for c in down if c.channel == "api"]
    assert api_down and all(c.ok for c in api_down), api_down
    api_pending = [c for c in api_down if c.without_qr]
    assert api_pending, api_down
    wait_until("the QRs of the API payments made while the bank was down",
               lambda: stack.scalar(
                   "SELECT count(*) FROM orders o WHERE o.public_id = ANY(:ids) AND NOT "
                   "EXISTS (SELECT 1 FROM qr_codes q WHERE q.order_id = o.id)",
                   ids=[c.public_id for c in api_pending]) == 0, 40)
    slow = load.in_phase("bank slow")
    assert [c for c in slow if c.channel == "till" and c.ok], load.answers


def test_register_down(stack: Stack, load: Load, refunds: list[int]) -> None:
    stack.bank("POST", "/sandbox/fiscal/faults", {"down": True})
    load.phase = "register down"
    down_since = stack.scalar("SELECT now()")
    refund_some(stack, refunds, full=1, partial=1)
    time.sleep(PHASE_SECONDS)
    done_meanwhile = stack.scalar("SELECT count(*) FROM receipts WHERE done_at > :t "
                                  "+ interval '2 seconds'", t=down_since)
    stack.bank("POST", "/sandbox/fiscal/faults", {"down": False})
    load.phase = "after the register"
    assert done_meanwhile == 0, "receipts done while the register was down"
    assert stack.bank("GET", "/sandbox/fiscal/state")["requests"], "the register was never asked"
    wait_until("the sale receipts that waited for the register",
               lambda: stack.scalar(
                   "SELECT count(*) FROM payments p WHERE NOT EXISTS (SELECT 1 FROM receipts r "
                   "WHERE r.payment_id = p.id AND r.kind = 'sell' AND r.status = 'done') "
                   "AND p.created_at < :t", t=down_since) == 0, 60)


def test_telegram_429_then_500(stack: Stack, load: Load) -> None:
    stack.bot.outage("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
    load.phase = "Telegram 429"
    time.sleep(PHASE_SECONDS / 2)
    stack.bot.outage("sendMessage", 500, "Internal Server Error")
    load.phase = "Telegram 500"
    time.sleep(PHASE_SECONDS / 2)
    refused_before = stack.bot.refused
    stack.bot.recover("sendMessage")
    load.phase = "after Telegram"
    assert refused_before > 0, "Telegram was never asked during its outage"
    till_paid = lambda: stack.scalar(  # noqa: E731
        "SELECT count(*) FROM payments p JOIN orders o ON o.id = p.order_id "
        "WHERE o.cashier_id IS NOT NULL")
    wait_until("a message per paid till sale once Telegram answers again",
               lambda: len(paid_messages(stack)) >= till_paid(), 60)


def test_callbacks_twice_out_of_order_and_early(stack: Stack, load: Load) -> None:
    load.phase = "callbacks"
    session = requests.Session()
    twice: list[Checkout] = []
    answers: list[tuple[int, str]] = []
    for _ in range(3):
        # Twice: the bank's own delivery, and the same signed body again to web 1 and web 2
        # at the same moment.
        checkout = load.checkout(session, "till", 2)
        assert checkout.ok, checkout
        paid = stack.bank("POST", f"/sandbox/qrs/{checkout.qr_id}/pay", {"status": "SUCCESS"})
        checkout.paid = "sandbox"
        twice.append(checkout)
        body, signature = bank_callback(stack, checkout.qr_id, paid["transactionId"])
        threads = [threading.Thread(target=lambda u=url, b=body, s=signature: answers.append(
            _outcome(post_callback(u, b, s)))) for url in stack.web_urls]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert all(status == 200 for status, _ in answers), answers
    assert {outcome for _, outcome in answers} <= {"paid", "duplicate", "duplicate_payment"}

    # Out of order: a declined attempt, then the payment; the declined news comes again
    # after the payment, and a late SUCCESS repeat after that.
    checkout = load.checkout(session, "till", 1)
    assert checkout.ok, checkout
    declined = stack.bank("POST", f"/sandbox/qrs/{checkout.qr_id}/pay", {"status": "DECLINED"})
    paid = stack.bank("POST", f"/sandbox/qrs/{checkout.qr_id}/pay", {"status": "SUCCESS"})
    checkout.paid = "sandbox"
    wait_until("the payment after a declined attempt",
               lambda: stack.scalar("SELECT status FROM orders WHERE id = :o",
                                    o=checkout.order_id) == "paid", 30)
    late = [_outcome(post_callback(stack.web_urls[1], *bank_callback(
                stack, checkout.qr_id, declined["transactionId"]))),
            _outcome(post_callback(stack.web_urls[0], *bank_callback(
                stack, checkout.qr_id, paid["transactionId"])))]
    assert late == [(200, "duplicate"), (200, "duplicate")], late

    # Early: the bank pays each new QR before its registration has answered, so the
    # callback comes before the QR's own transaction has committed.
    stack.bank("POST", "/sandbox/bank/faults", {"pay_on_register": True, "slow": 0.5})
    load.phase = "early callbacks"
    time.sleep(PHASE_SECONDS)
    load.phase = "after the callbacks"
    stack.bank("POST", "/sandbox/bank/faults", {"pay_on_register": False, "slow": 0})
    early = [c for c in load.in_phase("early callbacks") if c.qr_id]
    assert early, load.answers
    state = stack.bank("GET", "/sandbox/state")
    early_ids = {c.qr_id for c in early}
    first_answers = [d["attempts"][0].get("status_code") for d in state["deliveries"]
                     if _delivery_qr(state, d) in early_ids and d["attempts"]]
    # Kassa did not know the QR yet: it asked the bank to send the news again.
    assert 404 in first_answers, first_answers
    wait_until("every early callback applied once its QR committed",
               lambda: stack.scalar(
                   "SELECT count(*) FROM qr_codes q WHERE q.qr_id = ANY(:ids) AND NOT EXISTS "
                   "(SELECT 1 FROM payments p WHERE p.qr_code_id = q.id)",
                   ids=list(early_ids)) == 0, 40)


def test_counts_after_the_run(stack: Stack, load: Load, refunds: list[int]) -> None:
    load.phase = "quiet"
    load.stop()
    for path, body in (("/sandbox/bank/faults", {"down": False, "slow": 0,
                                                 "pay_on_register": False}),
                       ("/sandbox/fiscal/faults", {"down": False, "slow": 0})):
        stack.bank("POST", path, body)
    stack.bot.recover("sendMessage")
    wait_until("the job queue quiet and every callback delivered", lambda: quiet(stack), 90)

    state = stack.bank("GET", "/sandbox/state")
    fiscal = stack.bank("GET", "/sandbox/fiscal/state")
    paid_at_bank = {q["qrId"]: [t for t in q["transactions"] if t["paymentStatus"] == "SUCCESS"]
                    for q in state["qrs"]}
    paid_at_bank = {qr: txs for qr, txs in paid_at_bank.items() if txs}
    payments = stack.rows(
        "SELECT p.id, p.status, p.amount_kopecks, q.qr_id, o.id AS order_id, o.cashier_id "
        "FROM payments p JOIN qr_codes q ON q.id = p.qr_code_id "
        "LEFT JOIN orders o ON o.id = p.order_id")
    problems: list[str] = []

    # Every paid QR has exactly one payment; no payment without the bank's money.
    per_qr = Counter(p.qr_id for p in payments)
    for qr_id, txs in paid_at_bank.items():
        if len(txs) != 1 or per_qr[qr_id] != 1:
            problems.append(f"QR {qr_id}: {len(txs)} paid at the bank, {per_qr[qr_id]} "
                            "payments in Kassa")
    problems += [f"payment {p.id} for QR {p.qr_id}, which the bank never paid"
                 for p in payments if p.qr_id not in paid_at_bank]
    problems += [f"payment {p.id} is {p.status}" for p in payments if p.status not in PAID]

    # One sale receipt per payment, done, and one sell document at the register.
    receipts = stack.rows("SELECT id, kind, status, payment_id, refund_id, external_id "
                          "FROM receipts")
    at_register = Counter((d["external_id"], d["operation"]) for d in fiscal["documents"])
    done_at_register = {d["external_id"] for d in fiscal["documents"] if d["status"] == "done"}
    sells = Counter(r.payment_id for r in receipts if r.kind == "sell")
    for p in payments:
        if sells[p.id] != 1:
            problems.append(f"payment {p.id}: {sells[p.id]} sale receipts")
    for r in receipts:
        if r.status != "done":
            problems.append(f"receipt {r.id} ({r.kind}) is {r.status}")
        if at_register[(r.external_id, r.kind)] != 1 or r.external_id not in done_at_register:
            problems.append(f"receipt {r.id}: {at_register[(r.external_id, r.kind)]} "
                            f"{r.kind} documents at the register")
    if sum(at_register.values()) != len(receipts):
        problems.append(f"the register holds {sum(at_register.values())} documents for "
                        f"{len(receipts)} receipts")

    # One cashier message per paid till sale, and none for anything else.
    messages = paid_messages(stack)
    till = {p.order_id for p in payments if p.cashier_id is not None}
    problems += [f"order {order}: {messages[order]} 'paid' messages"
                 for order in till | set(messages) if messages[order] != (order in till)]

    # Every refund: completed, one refund receipt done, one sell_refund at the register.
    for refund in stack.rows("SELECT id, status FROM refunds"):
        kinds = [r for r in receipts if r.refund_id == refund.id and r.kind == "sell_refund"]
        if refund.status != "completed" or len(kinds) != 1:
            problems.append(f"refund {refund.id} is {refund.status} with {len(kinds)} "
                            "refund receipts")
    if len(refunds) < 4:
        problems.append(f"only {len(refunds)} refunds were asked for")

    # Nothing left behind: no job waiting or running, dead ones only as expected.
    left = stack.rows("SELECT id, name, status, last_error FROM jobs WHERE (key IS NULL OR "
                      "key NOT LIKE 'periodic:%') AND status IN ('queued', 'running')")
    problems += [f"job {j.id} {j.name} left {j.status}: {j.last_error}" for j in left]
    dead = stack.rows("SELECT id, name, last_error FROM jobs WHERE status = 'dead'")
    problems += [f"dead job {j.id} {j.name}: {j.last_error}" for j in dead
                 if j.name not in EXPECTED_DEAD]

    # A checkout that failed left nothing that could count as paid.
    failed = [c.order_id for c in load.checkouts if not c.ok and c.order_id]
    if failed:
        problems += [f"order {row.order_id} failed at checkout but has a {row.what}"
                     for row in stack.rows(
                         "SELECT order_id, 'QR' AS what FROM qr_codes WHERE order_id = ANY(:o) "
                         "UNION ALL SELECT order_id, 'payment' FROM payments "
                         "WHERE order_id = ANY(:o)", o=failed)]
    problems += load.bad_answers
    problems += [f"callback for transaction {d['transactionId']} never delivered"
                 for d in state["deliveries"] if not d["delivered"]]

    print_summary(load, stack, payments, refunds)
    assert not problems, "\n".join(problems[:40])


# -- helpers -------------------------------------------------------------------------------


def _outcome(response: requests.Response) -> tuple[int, str]:
    try:
        return response.status_code, response.json().get("outcome") or response.json().get(
            "error", "")
    except ValueError:
        return response.status_code, response.text[:100]


def _delivery_qr(state: dict, delivery: dict) -> str | None:
    for qr in state["qrs"]:
        if any(t["transactionId"] == delivery["transactionId"] for t in qr["transactions"]):
            return qr["qrId"]
    return None


def paid_messages(stack: Stack) -> Counter[int]:
    """'Оплачено' messages to the cashier, by the order they name."""
    import re

    found: Counter[int] = Counter()
    for params in stack.bot.sent("sendMessage"):
        text = str(params.get("text", ""))
        if str(params.get("chat_id")) == str(CASHIER_ID) and text.startswith("Оплачено"):
            number = re.search(r"Заказ №(\d+)\b", text)
            if number:
                found[int(number.group(1))] += 1
    return found


def quiet(stack: Stack) -> bool:
    busy = stack.scalar("SELECT count(*) FROM jobs WHERE (key IS NULL OR key NOT LIKE "
                        "'periodic:%') AND status IN ('queued', 'running')")
    state = stack.bank("GET", "/sandbox/state")
    undelivered = [d for d in state["deliveries"] if not d["delivered"] and not d["gaveUp"]]
    return busy == 0 and not undelivered


def print_summary(load: Load, stack: Stack, payments: list, refunds: list[int]) -> None:
    phases: list[str] = []
    for checkout in load.checkouts:
        if checkout.phase not in phases:
            phases.append(checkout.phase)
    print("\nfault suite: checkouts per phase")
    print(f"  {'phase':<22}{'till ok':>8}{'till err':>9}{'api ok':>8}{'api err':>8}"
          f"{'paid':>6}")
    for phase in phases:
        rows = load.in_phase(phase)
        count = Counter((c.channel, c.ok) for c in rows)
        print(f"  {phase:<22}{count[('till', True)]:>8}{count[('till', False)]:>9}"
              f"{count[('api', True)]:>8}{count[('api', False)]:>8}"
              f"{sum(1 for c in rows if c.paid):>6}")
    print(f"  payments {len(payments)}, refunds {len(refunds)}, messages "
          f"{sum(paid_messages(stack).values())}, answers {dict(load.answers)}")
