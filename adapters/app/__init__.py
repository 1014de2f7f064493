"""The application ring: settings, composition root, raw clients, health checks, worker, CLI.

- ``load_settings()`` reads the conventional variables (``OPENAI_API_KEY``,
  ``OPENAI_BASE_URL``, ``REDIS_URL``, ``DATABASE_URL``) and the ``PORTSIDE_*`` tuning.
- ``build_services()`` / ``get_services()`` build one adapter per port from them (embedded
  defaults when nothing is set); ``reset_services()`` closes them.
- ``get_openai_client()`` and ``get_redis_client()`` are the process-wide raw clients.
- ``check_services()`` reports each configured service's health.
- ``build_async_services()`` / ``AsyncServices`` and ``acheck_services()`` are the
  asyncio twins (``async with build_async_services() as services:``).
- ``run_worker()`` is the receive / handle / ack loop; ``run_async_worker()`` its twin
  for asyncio (async handlers, N concurrent tasks, graceful shutdown).
- ``main()`` is the ``portside`` command.

Flask integration (``init_db``, ``init_app``) is ``portside.adapters.app.flask``
(needs ``portside[flask]``).
"""

from portside.adapters.app._async_health import acheck_services
from portside.adapters.app._async_services import (
    AsyncServices,
    build_async_services,
)
from portside.adapters.app._async_worker import AsyncHandler, run_async_worker
from portside.adapters.app._cli import main
from portside.adapters.app._clients import (
    get_openai_client,
    get_redis_client,
)
from portside.adapters.app._health import (
    CheckRow,
    check_services,
)
from portside.adapters.app._services import (
    Services,
    build_services,
    get_services,
    reset_services,
)
from portside.adapters.app._settings import (
    Backend,
    Connections,
    Settings,
    SettingsError,
    Tuning,
    describe,
    load_settings,
    redact_url,
)
from portside.adapters.app._worker import (
    Backoff,
    Handler,
    WorkerReport,
    run_worker,
)

__all__ = [
    "AsyncHandler",
    "AsyncServices",
    "Backend",
    "Backoff",
    "CheckRow",
    "Connections",
    "Handler",
    "Services",
    "Settings",
    "SettingsError",
    "Tuning",
    "WorkerReport",
    "acheck_services",
    "build_async_services",
    "build_services",
    "check_services",
    "describe",
    "get_openai_client",
    "get_redis_client",
    "get_services",
    "load_settings",
    "main",
    "redact_url",
    "reset_services",
    "run_async_worker",
    "run_worker",
]
