"""The triage worker: ``run_worker`` feeding each delivery to ``Desk.triage``.

``run_worker`` acks after ``triage`` succeeded and gives the message back (with
backoff) after a ``Failure``; after the queue's last attempt the message is
dead-lettered and ``Desk.requeue`` publishes the ticket again. With
``PORTSIDE_OUTBOX_RELAY=worker`` the worker also relays the jobs the web process
committed (``services.worker_relay``).
"""

from __future__ import annotations

import threading

from returns.result import Result

from examples.support_desk.logic import Desk, Outcome, ticket_id_of
from portside.adapters.app import Services, WorkerReport, run_worker
from portside.domain import Delivery, ServiceError

__all__ = ["run_triage_worker"]


def run_triage_worker(
    services: Services,
    desk: Desk,
    *,
    consumer: str = "triage-1",
    stop: threading.Event | None = None,
    limit: int | None = None,
    wait: float = 1.0,
    handle_signals: bool = True,
) -> WorkerReport:
    """Triage tickets from the queue until ``stop`` is set, a signal, or ``limit``.

    Give each worker process a stable ``consumer`` name: after a restart it gets its
    own unacked tickets back first.
    """

    def handle(delivery: Delivery) -> Result[Outcome, ServiceError]:
        return desk.triage(ticket_id_of(delivery))

    return run_worker(
        services.queue,
        desk.topic,
        desk.group,
        handle,
        consumer=consumer,
        stop=stop,
        limit=limit,
        wait=wait,
        handle_signals=handle_signals,
        relay=services.worker_relay,
    )
