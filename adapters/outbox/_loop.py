"""The relay loop: ``relay_once`` in rounds until stopped, and the after-commit round.

One ``RelayLoop`` serves every way of running the relay: a thread beside a worker's
handlers, the ``portside relay`` process, and the after-commit path, which runs one
round in the committing thread right after a commit that wrote messages and leaves
whatever that round could not deliver to the loop (started in the background on first
use). Each is the same ``OutboxRelay.relay_once``: the after-commit path is a round
started early, not a second relay.
"""

from __future__ import annotations

import logging
import threading
from typing import Final

import attrs
from returns.result import Failure, Result, Success

from portside.adapters.observability import Metrics
from portside.adapters.outbox._relay import OutboxRelay, RelayReport
from portside.domain._errors import ServiceError
from portside.ports.queue_rules import MAX_BATCH

__all__ = ["RelayLoop", "RelayLoopReport"]

_LOG: Final = logging.getLogger("portside.outbox")

#: Counters and the gauge a ``RelayLoop`` keeps in its ``Metrics``.
RELAYED: Final = "outbox.relayed"
FAILURES: Final = "outbox.relay_failures"
LAG: Final = "outbox.lag_seconds"


@attrs.frozen
class RelayLoopReport:
    """What ``RelayLoop.run`` did before it stopped: rounds, messages, failed rounds."""

    rounds: int = 0
    published: int = 0
    failures: int = 0


def _check(instance: RelayLoop, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0 < value <= 86_400:
        raise ValueError(f"{attribute.name} must be seconds, more than 0 to 86400")


@attrs.define
class RelayLoop:
    """Runs ``relay`` in rounds of up to ``batch`` messages, ``interval`` seconds apart.

    A full round (``batch`` messages) is followed at once by the next, so a backlog
    drains at the relay's speed; a failed round (queue or database down) is logged and
    counted, and the next waits ``interval`` doubled per failure in a row, up to
    ``max_backoff``. ``metrics`` (optional) counts ``outbox.relayed`` and
    ``outbox.relay_failures`` and keeps the gauge ``outbox.lag_seconds``, read after
    each round of the loop. Raises ``ValueError`` for a ``batch`` outside 1 to 1000 or
    an ``interval`` or ``max_backoff`` outside (0, 86400] seconds.
    """

    relay: OutboxRelay
    interval: float = attrs.field(default=1.0, validator=_check)
    batch: int = attrs.field(default=100)
    metrics: Metrics | None = None
    max_backoff: float = attrs.field(default=30.0, validator=_check)
    # After a failed round, commits leave delivery to the loop until a round succeeds:
    # a queue that is down must not cost every commit its timeout.
    _degraded: bool = attrs.field(default=False, init=False, repr=False)
    _thread: threading.Thread | None = attrs.field(default=None, init=False, repr=False)
    _stop: threading.Event = attrs.field(factory=threading.Event, init=False, repr=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False)

    @batch.validator
    def _check_batch(self, attribute: attrs.Attribute[int], value: int) -> None:
        if type(value) is not int or not 1 <= value <= MAX_BATCH:
            raise ValueError(f"batch must be an int from 1 to {MAX_BATCH}")

    def run_round(self) -> Result[RelayReport, ServiceError]:
        """One ``relay_once`` of up to ``batch`` messages, counted in ``metrics``.

        Returns what ``OutboxRelay.relay_once`` returns.
        """
        result = self.relay.relay_once(max_messages=self.batch)
        match result:
            case Success(report):
                self._degraded = False
                if self.metrics is not None and report.published:
                    self.metrics.incr(RELAYED, report.published)
            case Failure(error):
                self._degraded = True
                if self.metrics is not None:
                    self.metrics.incr(FAILURES)
                _LOG.warning("outbox relay round failed (the messages stay): %s", error)
        return result

    def record_lag(self) -> Result[float, ServiceError]:
        """The relay's ``lag()``, also set as the gauge ``outbox.lag_seconds``."""
        lag = self.relay.lag()
        if isinstance(lag, Success) and self.metrics is not None:
            self.metrics.gauge(LAG, lag.unwrap())
        return lag

    def run(self, stop: threading.Event) -> RelayLoopReport:
        """Relay in rounds until ``stop`` is set; never raises for a service error.

        A round in progress when ``stop`` is set finishes first (its messages are
        published and removed, or left for the next relay).
        """
        rounds = published = failures = in_a_row = 0
        while not stop.is_set():
            result = self.run_round()
            rounds += 1
            if isinstance(result, Failure):
                failures += 1
                in_a_row += 1
                stop.wait(min(self.max_backoff, self.interval * 2 ** min(in_a_row - 1, 30)))
                continue
            in_a_row = 0
            report = result.unwrap()
            published += report.published
            self.record_lag()
            if report.published < self.batch:
                stop.wait(self.interval)
        return RelayLoopReport(rounds, published, failures)

    def after_commit(self) -> None:
        """Relay at once after a commit that wrote messages; the loop takes what fails.

        Runs one round in the caller's thread (this unit's messages go out with any
        older ones still waiting, so each topic keeps its order) and makes sure the
        background loop runs. After a failed round it only does the latter until a
        round succeeds again. Never raises for a service error: the commit succeeded
        and its messages are safe in the outbox either way.
        """
        if not self._degraded:
            self.run_round()
        self.start()

    def start(self) -> None:
        """Run the loop in a background thread, if it is not running yet."""
        with self._lock:
            if self._thread is not None or self._stop.is_set():
                return
            self._thread = threading.Thread(
                target=self.run, args=(self._stop,), name="portside-outbox-relay", daemon=True
            )
            self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Stop the background loop (waiting up to ``timeout`` seconds for its round)."""
        with self._lock:
            self._stop.set()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    @property
    def running(self) -> bool:
        """Whether the background loop (``start``) is running."""
        thread = self._thread
        return thread is not None and thread.is_alive()
