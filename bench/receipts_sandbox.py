"""The sandbox (bank + ATOL Online emulator) as a process, for bench/receipts.py.

`flask sandbox run` takes its settings from Kassa's config, which has no knob for how long
an ATOL document stays `wait`; this runner is the same server (app.sandbox.serve_sandbox)
with `fiscal_processing_seconds` from the command line:

    .venv/bin/python -m bench.receipts_sandbox --port 18081 --processing 3.0

Loopback only. SIGTERM or SIGINT stops it.
"""

from __future__ import annotations

import argparse
import logging
import signal

from app.config import SANDBOX_MERCHANT_ID, SANDBOX_SECRET_KEY
from app.sandbox import SandboxSettings, serve_sandbox

HOST = "127.0.0.1"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--processing", type=float, default=3.0,
                   help="seconds an ATOL document stays 'wait' before it is done [3.0]")
    p.add_argument("--log-level", default="WARNING",
                   help="level of the sandbox's loggers; werkzeug's per-request lines are INFO")
    args = p.parse_args(argv)
    logging.basicConfig(level=args.log_level,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")

    def stop(_signum, _frame):
        raise KeyboardInterrupt  # serve_sandbox closes the server and its worker thread

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    settings = SandboxSettings(
        merchant_id=SANDBOX_MERCHANT_ID, secret_key=SANDBOX_SECRET_KEY, callback_url=None,
        base_url=f"http://{HOST}:{args.port}", fiscal_processing_seconds=args.processing,
    )
    logging.getLogger(__name__).warning(
        "sandbox on %s:%s, ATOL documents done after %.2fs", HOST, args.port, args.processing)
    serve_sandbox(settings, host=HOST, port=args.port)


if __name__ == "__main__":
    main()
