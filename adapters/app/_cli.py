"""The ``portside`` command: ``demo``, ``check``, ``config`` and ``relay``.

Invalid configuration exits with code 2 and one line naming the variable; a service
that is down makes ``check`` exit with code 1. No traceback reaches the user for
either.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from collections.abc import Sequence
from typing import Any, TextIO, cast

import attrs

from portside.adapters.app._settings import Settings, SettingsError, describe, load_settings

__all__ = ["main"]


def _table(rows: Sequence[Sequence[str]], headers: Sequence[str], out: TextIO) -> None:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print(line.format(*headers).rstrip(), file=out)
    print(line.format(*("-" * w for w in widths)), file=out)
    for row in rows:
        print(line.format(*row).rstrip(), file=out)


def _config(settings: Settings, out: TextIO) -> int:
    _table(describe(settings), ("variable", "value", "source", "accepted"), out)
    return 0


def _check(settings: Settings, out: TextIO) -> int:
    from portside.adapters.app._health import check_services
    from portside.adapters.app._services import build_services

    services = build_services(settings)
    try:
        rows = check_services(services, max_age=0)
    finally:
        services.close()
    _table(
        [(r.service, r.adapter, r.status, f"{r.latency_ms:.1f} ms") for r in rows],
        ("service", "adapter", "status", "latency"),
        out,
    )
    return 0 if all(r.ok for r in rows) else 1


def _relay(settings: Settings, out: TextIO, args: argparse.Namespace) -> int:
    from portside.adapters.app._services import build_services
    from portside.adapters.app._worker import stop_on_signals

    given = {"outbox_poll_interval": args.interval, "outbox_batch": args.batch}
    changes = {name: value for name, value in given.items() if value is not None}
    try:
        # Tuning is an attrs class (typed-settings' decorator hides it from mypy).
        tuning = attrs.evolve(cast(Any, settings.tuning), **changes)
    except ValueError as exc:
        print(f"portside: invalid argument: {exc}", file=sys.stderr)
        return 2
    services = build_services(attrs.evolve(settings, tuning=tuning))
    try:
        loop = services.outbox
        if loop is None:  # pragma: no cover - a database built from settings has an engine
            print("portside: the database has no engine to relay from", file=sys.stderr)
            return 2
        if services.adapters.get("queue") == "memory":
            logging.getLogger("portside.outbox").warning(
                "the queue is in memory: messages relayed by this process reach no other"
                " process (set REDIS_URL)"
            )
        stop = threading.Event()
        with stop_on_signals(stop, enabled=True):
            report = loop.run(stop)
    finally:
        services.close()
    print(
        f"relayed {report.published} message(s) in {report.rounds} round(s),"
        f" {report.failures} failed",
        file=out,
    )
    return 0


def _demo(settings: Settings, out: TextIO) -> int:
    from portside.adapters.app._demo import run_demo

    return run_demo(settings, out)


# HTTP clients log every request at INFO; that is noise unless the user asked for it.
_CHATTY_LOGGERS = ("httpx", "httpx2", "httpcore", "openai", "urllib3")


def _guard_refuses(settings: Settings) -> bool:
    """Whether the real-LLM guard would refuse the configured server (a usage error here)."""
    from portside.ports.llm_rules import real_llm_forbidden

    return settings.real_llm and not settings.local_llm and real_llm_forbidden()


def _parser() -> argparse.ArgumentParser:
    from portside import __version__

    # Global options are accepted before and after the subcommand: the subcommands
    # share them, with SUPPRESS so a later absence does not undo an earlier -v.
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,
        help="log at DEBUG level, HTTP client requests included",
    )
    parser = argparse.ArgumentParser(
        prog="portside",
        description="portside: typed ports with honest fakes and real adapters. Services are"
        " chosen by OPENAI_API_KEY, OPENAI_BASE_URL, REDIS_URL, DATABASE_URL and PORTSIDE_*"
        " (see `portside config`).",
        parents=[options],
    )
    parser.add_argument("--version", action="version", version=f"portside {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, text in (
        ("demo", "run every port once through the configured adapters, then clean up"),
        ("check", "probe each configured service; exit 1 if one is down"),
        ("config", "list every setting: value (secrets redacted), source, accepted values"),
    ):
        sub.add_parser(name, help=text, description=text, parents=[options])
    text = (
        "move committed outbox messages to the queue until SIGTERM/SIGINT"
        " (PORTSIDE_OUTBOX_POLL_INTERVAL, PORTSIDE_OUTBOX_BATCH)"
    )
    relay = sub.add_parser("relay", help=text, description=text, parents=[options])
    relay.add_argument("--interval", type=float, help="seconds between rounds when idle")
    relay.add_argument("--batch", type=int, help="messages per round, 1 to 1000")
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Entry point of the ``portside`` console script; returns the exit code.

    0 on success (``relay``: stopped by a signal), 1 when ``check`` finds a service
    down or ``demo`` fails a step, 2 for invalid configuration or arguments (one line
    on stderr, no traceback).
    """
    stream = out or sys.stdout
    args = _parser().parse_args(argv)
    verbose = getattr(args, "verbose", False)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.WARNING)
    try:
        settings = load_settings()
        if args.command != "config" and _guard_refuses(settings):
            print(
                "portside: real LLM providers are forbidden (PORTSIDE_FORBID_REAL_LLM) and"
                " OPENAI_BASE_URL is not a loopback server",
                file=sys.stderr,
            )
            return 2
        if args.command == "relay":
            return _relay(settings, stream, args)
        commands = {"demo": _demo, "check": _check, "config": _config}
        return commands[args.command](settings, stream)
    except SettingsError as exc:
        print(f"portside: invalid configuration: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover - exercised through the console script
    sys.exit(main())
