"""Sustained traffic for fault tests: threads that call a port in a loop and keep score."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

import attrs
from returns.result import Failure, Result

from portside.domain import ServiceError


@attrs.define
class Score:
    """What the load saw: calls, failures by kind, exceptions, slowest call, successes."""

    calls: int = 0
    failures: Counter[str] = attrs.field(factory=Counter)
    exceptions: list[BaseException] = attrs.field(factory=list)
    slowest_failure: float = 0.0
    success_times: list[float] = attrs.field(factory=list)
    #: When each failed call started (``time.monotonic()``), in order.
    failure_times: list[float] = attrs.field(factory=list)
    lock: threading.Lock = attrs.field(factory=threading.Lock, repr=False)

    def first_success_after(self, moment: float) -> float | None:
        """Seconds from ``moment`` to the first successful call that started after it."""
        with self.lock:
            later = [t for t in self.success_times if t >= moment]
        return min(later) - moment if later else None

    def outage_after(self, moment: float, until: float) -> tuple[float, float, int] | None:
        """Failures between ``moment`` and ``until``: (first, recovered, count), in seconds.

        ``first`` is from ``moment`` to the first failed call, ``recovered`` from
        ``moment`` to the first successful call after the last failed one; ``None``
        when no call failed in that span.
        """
        with self.lock:
            failed = [t for t in self.failure_times if moment <= t <= until]
            if not failed:
                return None
            later = [t for t in self.success_times if t > failed[-1]]
        back = min(later) if later else until
        return failed[0] - moment, back - moment, len(failed)


Step = Callable[[int, int], Result[object, ServiceError]]


@attrs.define
class Load:
    """``threads`` threads, each calling ``step(thread, n)`` until ``stop()``.

    A call that raises is recorded (the test fails on it) and the thread goes on, so one
    bad call does not hide the rest of the run.
    """

    step: Step
    threads: int
    pause: float = 0.001
    score: Score = attrs.field(factory=Score)
    _stop: threading.Event = attrs.field(factory=threading.Event)
    _workers: list[threading.Thread] = attrs.field(factory=list)

    def start(self) -> Load:
        """Start the threads."""
        for index in range(self.threads):
            worker = threading.Thread(target=self._run, args=(index,), daemon=True)
            self._workers.append(worker)
            worker.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the threads and wait for them (bounded)."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for worker in self._workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        alive = [w for w in self._workers if w.is_alive()]
        assert not alive, f"{len(alive)} load threads hung"

    def _run(self, index: int) -> None:
        n = 0
        score = self.score
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                result = self.step(index, n)
            except Exception as exc:  # every escape is recorded and fails the test
                with score.lock:
                    score.exceptions.append(exc)
                continue
            finally:
                n += 1
            took = time.monotonic() - started
            with score.lock:
                score.calls += 1
                if isinstance(result, Failure):
                    score.failures[result.failure().kind] += 1
                    score.failure_times.append(started)
                    score.slowest_failure = max(score.slowest_failure, took)
                else:
                    score.success_times.append(started)
            if isinstance(result, Failure):
                time.sleep(0.01)  # a real client backs off; a hot loop would starve the others
            elif self.pause:
                time.sleep(self.pause)
