"""FastAPI integration: services for the app's lifetime, a unit of work per request, ``/healthz``.

::

    from portside.adapters.app.fastapi import UnitOfWorkDep, health_router, lifespan

    app = FastAPI(lifespan=lifespan())          # build_async_services() at start-up
    app.include_router(health_router())         # GET /healthz: 200, or 503 when degraded

    @app.post("/notes")
    async def create(uow: UnitOfWorkDep) -> dict[str, str]:
        await uow.repository(Note).add(...)
        await uow.commit()                     # not committed: rolled back at the end
        ...

``lifespan()`` builds the services (or takes the ones given), opens them at start-up,
keeps them on ``app.state`` and closes them at shut-down. The dependencies read them
from there: ``get_services``, ``get_cache``, ``get_queue``, ``get_llm`` and
``unit_of_work`` (one async unit of work per request, exited after the endpoint: what it
did not commit is rolled back, and an exception in the endpoint rolls it back too).
Tests replace any of them with FastAPI's ``app.dependency_overrides`` (``get_services``
with ``build_async_services(...)`` on fakes, or one port alone). Needs the ``fastapi``
extra.
"""

from __future__ import annotations

from portside.adapters._extras import require

require("fastapi", "fastapi")

from collections.abc import AsyncIterator, Callable  # noqa: E402 - after the extra check
from contextlib import AbstractAsyncContextManager, asynccontextmanager  # noqa: E402
from typing import Annotated, Any  # noqa: E402

import fastapi  # noqa: E402
from fastapi.responses import JSONResponse  # noqa: E402

from portside.adapters.app._async_health import acheck_services  # noqa: E402
from portside.adapters.app._async_services import (  # noqa: E402
    AsyncServices,
    build_async_services,
)
from portside.adapters.app._health import health_body  # noqa: E402
from portside.adapters.entities import Entities  # noqa: E402
from portside.ports._cache import AsyncCachePort  # noqa: E402
from portside.ports._llm import AsyncLLMPort  # noqa: E402
from portside.ports._queue import AsyncQueuePort  # noqa: E402
from portside.ports._uow import AsyncUnitOfWork  # noqa: E402

__all__ = [
    "CacheDep",
    "LLMDep",
    "QueueDep",
    "ServicesDep",
    "UnitOfWorkDep",
    "get_cache",
    "get_llm",
    "get_queue",
    "get_services",
    "health_router",
    "lifespan",
    "unit_of_work",
]

_STATE = "portside"


def lifespan(
    services: AsyncServices | None = None,
    *,
    entities: Entities | None = None,
    **overrides: Any,
) -> Callable[[fastapi.FastAPI], AbstractAsyncContextManager[None]]:
    """A FastAPI ``lifespan`` that opens the services at start-up and closes them after.

    ``services`` is used as given (and closed at shut-down: the lifespan owns it);
    otherwise ``build_async_services(entities=entities, **overrides)`` builds them at
    start-up from the environment, overrides first (``cache=AsyncMemoryCache()``).
    Compose it with an application's own lifespan by entering it inside that one.
    """

    @asynccontextmanager
    async def run(app: fastapi.FastAPI) -> AsyncIterator[None]:
        built = services or build_async_services(entities=entities, **overrides)
        async with built:
            setattr(app.state, _STATE, built)
            try:
                yield
            finally:
                delattr(app.state, _STATE)

    return run


async def get_services(request: fastapi.Request) -> AsyncServices:
    """The application's ``AsyncServices`` (a dependency); needs ``lifespan()``.

    The dependencies here are coroutines: FastAPI runs a plain ``def`` dependency in
    its thread pool, a hop that cost more than half the request rate of a small
    endpoint on the fakes (``benchmarks/bench_fastapi.py``).

    Raises ``RuntimeError`` when the lifespan did not run (an ASGI server runs it; in
    tests, enter ``app.router.lifespan_context(app)`` or override this dependency).
    """
    services: AsyncServices | None = getattr(request.app.state, _STATE, None)
    if services is None:
        raise RuntimeError(
            "portside services are not open: create the app with FastAPI(lifespan=lifespan())"
            " or override get_services"
        )
    return services


#: ``AsyncServices`` as an endpoint parameter type.
ServicesDep = Annotated[AsyncServices, fastapi.Depends(get_services)]


async def get_cache(services: ServicesDep) -> AsyncCachePort:
    """The services' cache (a dependency to override alone in tests)."""
    return services.cache


async def get_queue(services: ServicesDep) -> AsyncQueuePort:
    """The services' queue (a dependency to override alone in tests)."""
    return services.queue


async def get_llm(services: ServicesDep) -> AsyncLLMPort:
    """The services' LLM, with its response cache (a dependency to override alone)."""
    return services.llm


async def unit_of_work(services: ServicesDep) -> AsyncIterator[AsyncUnitOfWork]:
    """One async unit of work per request, rolled back unless the endpoint committed.

    Entered before the endpoint runs and exited after it returns: what it did not
    commit is rolled back, and an exception the endpoint raised (an ``HTTPException``
    included) rolls it back and goes on to FastAPI's handlers.
    """
    async with services.unit_of_work() as uow:
        yield uow


#: The request's unit of work as an endpoint parameter type.
UnitOfWorkDep = Annotated[AsyncUnitOfWork, fastapi.Depends(unit_of_work)]
#: The cache as an endpoint parameter type.
CacheDep = Annotated[AsyncCachePort, fastapi.Depends(get_cache)]
#: The queue as an endpoint parameter type.
QueueDep = Annotated[AsyncQueuePort, fastapi.Depends(get_queue)]
#: The LLM as an endpoint parameter type.
LLMDep = Annotated[AsyncLLMPort, fastapi.Depends(get_llm)]


def health_router(path: str = "/healthz") -> fastapi.APIRouter:
    """A router serving ``acheck_services``'s report at ``path`` (GET).

    200 with ``{"status": "ok", "services": [...]}`` when every service answers (a
    warning, such as an in-memory queue, still answers), 503 with ``"degraded"``
    otherwise. The report is kept for ``PORTSIDE_HEALTH_INTERVAL`` seconds, so a busy
    probe does not hammer the servers.
    """
    router = fastapi.APIRouter()

    @router.get(path, include_in_schema=False)
    async def healthz(services: ServicesDep) -> JSONResponse:
        body, status = health_body(await acheck_services(services))
        return JSONResponse(body, status_code=status)

    return router
