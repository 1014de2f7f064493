"""The ``portside`` command: ``demo``, ``check`` and ``config``.

Invalid configuration exits with code 2 and one line naming the variable; a service
that is down makes ``check`` exit with code 1. No traceback reaches the user for
either.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import TextIO

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
    _table(describe(settings), ("variable", "value", "source"), out)
    return 0


def _check(settings: Settings, out: TextIO) -> int:
    from portside.adapters.app._health import check_services
    from portside.adapters.app._services import build_services

    services = build_services(settings)
    try:
        rows = check_services(services)
    finally:
        services.close()
    _table(
        [(r.service, r.adapter, r.status, f"{r.latency_ms:.1f} ms") for r in rows],
        ("service", "adapter", "status", "latency"),
        out,
    )
    return 0 if all(r.ok for r in rows) else 1


def _demo(settings: Settings, out: TextIO) -> int:
    from portside.adapters.app._demo import demo_entities, run_demo
    from portside.adapters.app._services import build_services

    services = build_services(settings, entities=demo_entities())
    try:
        return run_demo(services, out)
    finally:
        services.close()


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Entry point of the ``portside`` console script; returns the exit code."""
    stream = out or sys.stdout
    parser = argparse.ArgumentParser(
        prog="portside", description="portside: typed ports with honest fakes and real adapters"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="run every port once through the configured adapters")
    sub.add_parser("check", help="connect to each configured service and report")
    sub.add_parser("config", help="print the effective settings (secrets redacted)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"portside: invalid configuration: {exc}", file=sys.stderr)
        return 2
    commands = {"demo": _demo, "check": _check, "config": _config}
    return commands[args.command](settings, stream)


if __name__ == "__main__":  # pragma: no cover - exercised through the console script
    sys.exit(main())
