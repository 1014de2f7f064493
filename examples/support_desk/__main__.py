"""``python -m examples.support_desk serve|worker|requeue``: run the example.

Configured from the environment like every portside application (``DATABASE_URL``,
``REDIS_URL``, ``OPENAI_API_KEY``/``OPENAI_BASE_URL``); with nothing set it runs on the
embedded defaults, where the web server and the worker must share one process
(``serve --with-worker``) because the queue is in memory. Triage jobs go through the
outbox; where they are relayed to the queue is ``PORTSIDE_OUTBOX_RELAY`` (right after
each commit by default; ``worker`` for the worker, ``process`` for ``portside relay``).
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from collections.abc import Sequence

from examples.support_desk.wiring import build_desk, services_from_environment

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m examples.support_desk")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="the HTTP API (Flask development server)")
    serve.add_argument("--port", type=int, default=5000)
    serve.add_argument("--with-worker", action="store_true", help="triage in this process too")
    worker = sub.add_parser("worker", help="triage tickets from the queue until stopped")
    worker.add_argument("--consumer", default="triage-1")
    sub.add_parser("requeue", help="publish again the tickets waiting for triage")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from examples.support_desk.worker import run_triage_worker

    services = services_from_environment()
    try:
        desk = build_desk(services)
        if args.command == "requeue":
            count = desk.requeue().unwrap()
            print(f"published {count} ticket(s) again")
            return 0
        if args.command == "worker":
            report = run_triage_worker(services, desk, consumer=args.consumer)
            print(report)
            return 0
        from examples.support_desk.app import create_app

        app = create_app(services, create_tables=False)
        stop = threading.Event()
        if args.with_worker:
            threading.Thread(
                target=run_triage_worker,
                args=(services, desk),
                kwargs={"stop": stop, "handle_signals": False},
                daemon=True,
            ).start()
        try:
            app.run(host="127.0.0.1", port=args.port)
        finally:
            stop.set()
        return 0
    finally:
        services.close()


if __name__ == "__main__":
    sys.exit(main())
