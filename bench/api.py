"""Benchmark of the constructor API on PostgreSQL under gunicorn, with the sandbox bank.

One run, everything on 127.0.0.1, started and stopped by this script:

1. a fresh database (DROP/CREATE) and `flask db upgrade`; one API client (its key);
2. the sandbox bank (`flask sandbox run`), Kassa (`wsgi:app`) and a bare Flask app
   (bench/bare_api.py) on the API's paths, both under the same gunicorn command line;
3. N `POST /api/v1/payments` (JSON, a distinct `order_id` each: every one a new order and a
   QR registered at the sandbox bank within the request) against the bare app, then Kassa;
4. M `GET /api/v1/payments/<id>` of those payments against both;
5. throughput, p50 and p99 of each, and Kassa's throughput as a ratio of the bare one.

    .venv/bin/python bench/api.py            # 1000 creates, 3000 status calls, 16 clients
    .venv/bin/python bench/api.py --quick    # 200 and 600: a smoke run

See bench/README.md. Exit status 1 when a request failed or a payment is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` and `app` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.callbacks import LoadResult, gunicorn_argv, run_load
from bench.harness import (
    RESULTS,
    ROOT,
    Processes,
    Req,
    background_load,
    code_version,
    free_port,
    percentile,
    recreate_database,
    step,
    stop_on_signals,
    utc_stamp,
    wait_http,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--creates", type=int, default=1000, help="create requests [1000]")
    p.add_argument("--statuses", type=int, default=3000, help="status requests [3000]")
    p.add_argument("--concurrency", type=int, default=16, help="concurrent clients [16]")
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers, both apps [2]")
    p.add_argument("--worker-class", default="sync", help="gunicorn worker class [sync]")
    p.add_argument("--threads", type=int, default=0, help="gunicorn --threads")
    p.add_argument("--warmup", type=int, default=50, help="warm-up requests per server [50]")
    p.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432")
    p.add_argument("--db-name", default="kassa_bench_api")
    p.add_argument("--request-timeout", type=float, default=30.0)
    p.add_argument("--deadline", type=int, default=900, help="abort after this many s [900]")
    p.add_argument("--quick", action="store_true", help="200 creates, 600 status calls")
    args = p.parse_args(argv)
    args.client = "raw"  # bench.callbacks.run_load's HTTP client
    if args.quick:
        args.creates, args.statuses, args.warmup = 200, 600, 20
    return args


def create_req(i: int, key: str) -> Req:
    body = json.dumps({"amount": f"{100 + i % 5000}.{i % 100:02d}", "order_id": f"bench-{i}",
                       "client_id": str(700000 + i), "description": f"Заказ {i}"},
                      ensure_ascii=False).encode()
    return Req(f"c{i}", "POST", "/api/v1/payments", body,
               (("Authorization", f"Bearer {key}"), ("Content-Type", "application/json")))


def status_req(i: int, payment_id: str, key: str) -> Req:
    return Req(f"s{i}", "GET", f"/api/v1/payments/{payment_id}", b"",
               (("X-Api-Key", key),))


def figures(result: LoadResult) -> dict[str, Any]:
    latencies = sorted(s.latency for s in result.samples)
    return {
        "requests": result.n, "statuses": result.statuses(),
        "rps": round(result.n / result.wall, 1),
        "p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "p99_ms": round(percentile(latencies, 99) * 1000, 1),
        "cpu_ms_per_request": result.cpu.get("cpu_ms_per_request"),
    }


def compare(name: str, bare: LoadResult, kassa: LoadResult) -> dict[str, Any]:
    b, k = figures(bare), figures(kassa)
    row = {"bare": b, "kassa": k, "ratio": round(k["rps"] / b["rps"], 3)}
    step(name, f"Kassa {k['rps']} req/s (p50 {k['p50_ms']} ms, p99 {k['p99_ms']} ms) / "
               f"bare {b['rps']} req/s (p99 {b['p99_ms']} ms) = {row['ratio']}")
    return row


def _api_key(env: dict[str, str]) -> str:
    """An API client (a generic webhook; nothing is paid, so no callback fires); its key."""
    code = ("from app import create_app\nfrom app.constructor.clients import create_client\n"
            "with create_app().app_context():\n"
            "    print(create_client('bench', preset='webhook')[1])\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True,
                          capture_output=True, text=True, timeout=60)
    return done.stdout.strip().splitlines()[-1]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stamp = utc_stamp()
    log_dir = RESULTS / f"logs-api-{stamp}"
    log_dir.mkdir(parents=True, exist_ok=True)
    stop_on_signals(args.deadline, "the run")
    from app.config import SANDBOX_MERCHANT_ID, SANDBOX_SECRET_KEY

    bank_port, kassa_port, bare_port = free_port(), free_port(), free_port()
    env = {
        **os.environ, "APP_ENV": "development", "SECRET_KEY": "bench-secret-key",
        "DATABASE_URL": f"{args.pg_url.replace('postgresql://', 'postgresql+psycopg://')}"
                        f"/{args.db_name}",
        "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1",
        "RAIFFEISEN_SBP_MERCHANT_ID": SANDBOX_MERCHANT_ID,
        "RAIFFEISEN_SECRET_KEY": SANDBOX_SECRET_KEY,
        "RAIFFEISEN_API_URL": f"http://127.0.0.1:{bank_port}",
        "PUBLIC_URL": f"http://127.0.0.1:{kassa_port}",
        "FISCAL_PROVIDER": "none",  # nothing is paid here: no receipts
        # One key, one address: the limits stay on (a hit costs what it costs in
        # production) but above what the bench sends.
        "RATELIMIT_API": "1000000/minute", "RATELIMIT_SBP_CALLBACK": "1000000/minute",
    }
    env.pop("FLASK_DEBUG", None)
    procs = Processes(log_dir)
    report: dict[str, Any] = {"started_at": datetime.now(UTC).isoformat(timespec="seconds"),
                              "settings": {k: v for k, v in vars(args).items()
                                           if k != "pg_url"},
                              "code": code_version(), "background_load": background_load()}
    ok = True
    try:
        step("database", f"DROP/CREATE {args.db_name}, flask db upgrade, one API client")
        recreate_database(args.pg_url, args.db_name)
        subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
                       cwd=ROOT, env=env, check=True, timeout=120,
                       stdout=(log_dir / "migrate.log").open("wb"), stderr=subprocess.STDOUT)
        key = _api_key(env)
        procs.start("sandbox", [sys.executable, "-m", "flask", "--app", "wsgi", "sandbox",
                                "run", "--port", str(bank_port)], env)
        procs.start("kassa-web", gunicorn_argv(args, "wsgi:app", kassa_port), env)
        procs.start("bare-web", gunicorn_argv(args, "bench.bare_api:app", bare_port), env)
        wait_http(kassa_port, "GET", "/readyz", body=None, procs=procs)
        wait_http(bare_port, "GET", "/api/v1/payments/x", body=None, procs=procs)
        wait_http(bank_port, "GET", "/sandbox/state", body=None, procs=procs)
        step("servers", f"kassa :{kassa_port}, bare :{bare_port}, sandbox bank :{bank_port}; "
                        f"gunicorn {' '.join(gunicorn_argv(args, '<app>', 0)[3:])}")

        warm = [create_req(-1 - i, key) for i in range(args.warmup)]
        run_load("warmup-bare", bare_port, warm, args, procs)
        run_load("warmup-kassa", kassa_port, warm, args, procs)

        creates = [create_req(i, key) for i in range(args.creates)]
        bare_c = run_load("create-bare", bare_port, creates, args, procs)
        kassa_c = run_load("create-kassa", kassa_port, creates, args, procs)
        report["create"] = compare("create", bare_c, kassa_c)
        answers = [json.loads(s.body) if s.status in (200, 201) else {}
                   for s in kassa_c.samples]
        ids = [a.get("payment_id") for a in answers if a.get("payment_id")]
        with_qr = sum(1 for a in answers if a.get("qr_payload"))
        report["create"]["payments"] = len(ids)
        report["create"]["with_qr_in_the_answer"] = with_qr
        if len(set(ids)) != args.creates:
            ok = False
            step("check", f"FAILED: {len(set(ids))} payments for {args.creates} creates; "
                          f"statuses {kassa_c.statuses()}")

        statuses = [status_req(i, ids[i % len(ids)], key) for i in range(args.statuses)]
        bare_s = run_load("status-bare", bare_port, statuses, args, procs)
        kassa_s = run_load("status-kassa", kassa_port, statuses, args, procs)
        report["status"] = compare("status", bare_s, kassa_s)
        if kassa_s.statuses() != {"200": args.statuses}:
            ok = False
            step("check", f"FAILED: status answers {kassa_s.statuses()}")
    finally:
        procs.stop()
    report["ok"] = ok
    out = RESULTS / f"api-{stamp}.json"
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    step("report", str(out.relative_to(ROOT)))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
