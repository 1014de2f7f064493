"""The cache contract kit: a hypothesis state machine every ``CachePort`` must pass.

The machine drives two caches of the adapter under test (two namespaces) and, as the
model, two ``MemoryCache`` instances on a ``ManualClock``. Every step applies one
operation to both and compares the answers:

- every operation (``get``, ``get_many``, ``set``, ``set_many``, ``add``, ``delete``,
  ``incr``, ``ttl``, ``clear`` and, when offered, ``delete_if_equal``, ``get_or_lock``
  and ``set_and_unlock``), including bad keys, values and TTLs, which must be
  ``Failure(InvalidRequest)`` with nothing written, and ``incr`` on non-integers and
  past 64 bits;
- expiry: time moves forward in whole ticks and TTLs are ``(k + 1/2)`` ticks, so no
  key is ever checked close to its expiry instant (see "Time" below);
- namespaces: the two caches never see each other's keys, and ``clear()`` of one
  leaves the other intact;
- concurrency: several threads ``add`` one key at the same instant and exactly one
  wins; several threads ``incr`` one key and no update is lost (each sees a distinct
  value and the total is exact).

Time. With ``CacheTarget(clock=manual_clock)`` the adapter reads the kit's manual
clock and the run is fully deterministic. Without it the adapter keeps real time
(a server expires keys on its own clock): the kit then sleeps to advance, keeps every
operation within ``0.45`` tick after the model's time (syncing forward by whole ticks
when the machine falls behind). When a single operation took so long that the bound
cannot be kept, the rest of that example is inconclusive and is not checked (reported
as a hypothesis event); results are never guessed.

Use it as ``run_cache_contract(target)`` in a test, or subclass
``cache_contract(target)`` and collect its ``.TestCase``.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, ClassVar, Final

import attrs
from hypothesis import event
from hypothesis import settings as Settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from returns.result import Failure, Result, Success

from portside.adapters.memory._cache import MemoryCache
from portside.adapters.memory._clock import ManualClock
from portside.domain._errors import ServiceError
from portside.ports._cache import CachePort, CompareAndDelete, LockedFill
from portside.ports.cache_rules import MAX_INCR, MIN_INCR, parse_counter

__all__ = ["CacheContract", "CacheTarget", "cache_contract", "run_cache_contract"]

#: Threads racing in the concurrent ``add`` and ``incr`` steps.
THREADS: Final = 6
#: Increments per thread in the concurrent ``incr`` step.
INCRS_PER_THREAD: Final = 5

VALID_KEYS: Final = ("k0", "k1", "k2", "k:3", "ключ", "k" * 1024)
INVALID_KEYS: Final = ("", "line\nbreak", "tab\there", "x" * 1025, "é" * 513)
VALUES: Final = (b"", b"v", b"0", b"41", b"-7", b"9223372036854775806", b"abc", b"\x00\xff")


@attrs.frozen
class CacheTarget:
    """How the kit reaches the adapter under test.

    ``make(namespace)`` returns a cache of that namespace (the kit picks fresh random
    namespaces for every example, clears and closes them afterwards). ``clock``: the
    manual clock the adapter reads for expiry, if it does; ``None`` means the adapter
    keeps real time. ``tick``: the time step, in seconds (defaults: 1 on a manual clock,
    0.1 in real time). ``paired_locks``: the adapter takes only a key's own fill lock
    ``<key>:fill`` (``RedisCache`` on Redis Cluster, where a key and its lock must share
    a hash slot); the kit then asks ``get_or_lock``/``set_and_unlock`` for that lock
    wherever it would have drawn another valid one.
    """

    make: Callable[[str], CachePort]
    clock: ManualClock | None = None
    tick: float | None = None
    paired_locks: bool = False

    @property
    def step(self) -> float:
        """The tick actually used."""
        if self.tick is not None:
            return self.tick
        return 1.0 if self.clock is not None else 0.1


def _outcome(result: Result[Any, ServiceError]) -> tuple[str, Any]:
    """A comparable form: ``("ok", value)`` or ``("error", class name)``."""
    if isinstance(result, Failure):
        return ("error", type(result.failure()).__name__)
    return ("ok", result.unwrap())


keys = st.sampled_from(VALID_KEYS * 3 + INVALID_KEYS)
valid_keys = st.sampled_from(VALID_KEYS)
values = st.sampled_from(VALUES) | st.binary(max_size=6)
bad_values: st.SearchStrategy[Any] = st.sampled_from(["text", 7, None, bytearray(b"x")])
incr_bys = st.sampled_from([1, -1, 7, 2**62, -(2**62), 2**63])
sides = st.sampled_from([0, 1])


class CacheContract(RuleBasedStateMachine):
    """Adapter under test vs ``MemoryCache`` model; bind a target with ``cache_contract``."""

    target: ClassVar[CacheTarget]

    def __init__(self) -> None:
        super().__init__()
        self.tick = self.target.step
        self.model_clock = ManualClock()
        run = uuid.uuid4().hex[:12]
        names = (f"kit-{run}-a", f"kit-{run}-b")
        self.models = [MemoryCache(name, clock=self.model_clock) for name in names]
        self.caches: list[CachePort] = []
        for name in names:
            self.caches.append(self.target.make(name))
        self.real_time = self.target.clock is None
        # Set once a call outlived the timing bound: later answers are not compared.
        # (Rejecting the example instead would change what hypothesis draws on replay.)
        self.inconclusive = False
        self.t0 = time.monotonic()

    def teardown(self) -> None:
        """Leave nothing behind on a shared server."""
        for cache in self.caches:
            cache.clear()
            cache.close()

    # -- time ------------------------------------------------------------------------

    def _unsure(self) -> bool:
        """Whether this example's timing became unknowable (nothing more is compared)."""
        return self.inconclusive

    def _lag(self) -> float:
        return time.monotonic() - self.t0 - self.model_clock.monotonic()

    def _advance(self, seconds: float) -> None:
        self.model_clock.advance(seconds)
        if self.target.clock is not None:
            self.target.clock.advance(seconds)
        else:
            lag = self._lag()
            if lag < 0:
                time.sleep(-lag)

    def _call(self, fn: Callable[[], Result[Any, ServiceError]]) -> Result[Any, ServiceError]:
        """Call the adapter, keeping real time within the bound the TTL checks rely on."""
        if not self.real_time:
            return fn()
        lag = self._lag()
        if lag > 0.3 * self.tick:
            # Fallen behind: let the model's time catch up by whole ticks.
            self._advance(math.ceil(lag / self.tick) * self.tick)
        result = fn()
        if self._lag() > 0.45 * self.tick:
            # One slow call (a stalled machine) makes its timing unknowable.
            self.inconclusive = True
            event("cache kit: example inconclusive after a slow call")
        return result

    def _same(self, side: int, op: Callable[[Any], Result[Any, ServiceError]], what: str) -> Any:
        if self._unsure():
            return None
        got = self._call(lambda: op(self.caches[side]))
        want = op(self.models[side])
        if self._unsure():
            return None
        assert _outcome(got) == _outcome(want), (
            f"{what}: adapter gave {_outcome(got)}, model {_outcome(want)}"
        )
        return got

    # -- rules -----------------------------------------------------------------------

    @initialize()
    def start_in_sync(self) -> None:
        """Both namespaces start empty (a fresh namespace on a shared server)."""
        for cache in self.caches:
            assert _outcome(cache.get_many(VALID_KEYS)) == ("ok", {}), "a new namespace is empty"
        self.t0 = time.monotonic()

    @rule(side=sides, key=keys, value=values, ttl=st.none() | st.integers(0, 3))
    def set(self, side: int, key: str, value: bytes, ttl: int | None) -> None:
        """``set`` stores a value with an optional TTL of (ttl + 1/2) ticks."""
        seconds = None if ttl is None else (ttl + 0.5) * self.tick
        self._same(side, lambda c: c.set(key, value, seconds), f"set({key!r}, ttl={seconds})")

    @rule(
        side=sides,
        key=keys,
        value=bad_values | st.just(b"ok"),
        ttl=st.sampled_from([0, -1.0, math.nan, math.inf, True]),
    )
    def set_refuses_bad_input(self, side: int, key: str, value: Any, ttl: Any) -> None:
        """A bad key, value or TTL is ``InvalidRequest`` and nothing is written."""
        got = self._same(
            side, lambda c: c.set(key, value, ttl), f"set({key!r}, {value!r}, {ttl!r})"
        )
        assert got is None or isinstance(got, Failure), "bad input was accepted"

    @rule(
        side=sides,
        items=st.dictionaries(keys, values, max_size=4),
        ttl=st.none() | st.integers(0, 3),
    )
    def set_many(self, side: int, items: dict[str, bytes], ttl: int | None) -> None:
        """``set_many`` stores all items, or nothing when one of them is bad."""
        seconds = None if ttl is None else (ttl + 0.5) * self.tick
        self._same(side, lambda c: c.set_many(items, seconds), f"set_many({items!r})")

    @rule(side=sides, key=keys)
    def get(self, side: int, key: str) -> None:
        """``get`` sees what the model sees, expiry included."""
        self._same(side, lambda c: c.get(key), f"get({key!r})")

    @rule(side=sides, wanted=st.lists(keys, max_size=6))
    def get_many(self, side: int, wanted: list[str]) -> None:
        """``get_many`` returns exactly the present keys."""
        self._same(side, lambda c: c.get_many(wanted), f"get_many({wanted!r})")

    @rule(side=sides, key=keys, value=values, ttl=st.none() | st.integers(0, 3))
    def add(self, side: int, key: str, value: bytes, ttl: int | None) -> None:
        """``add`` writes only when the key is absent (expired counts as absent)."""
        seconds = None if ttl is None else (ttl + 0.5) * self.tick
        self._same(side, lambda c: c.add(key, value, seconds), f"add({key!r})")

    @rule(side=sides, key=keys)
    def delete(self, side: int, key: str) -> None:
        """``delete`` says whether the key was present."""
        self._same(side, lambda c: c.delete(key), f"delete({key!r})")

    @rule(side=sides, key=keys, value=values)
    def delete_if_equal(self, side: int, key: str, value: bytes) -> None:
        """Compare-and-delete removes the key only while it holds ``value``."""
        cache = self.caches[side]
        if not isinstance(cache, CompareAndDelete) or self._unsure():
            return
        got = self._call(lambda: cache.delete_if_equal(key, value))
        want = self.models[side].delete_if_equal(key, value)
        if self._unsure():
            return
        assert _outcome(got) == _outcome(want), f"delete_if_equal({key!r}): {_outcome(got)}"

    def _lock_for(self, key: str, lock: str) -> str:
        """The drawn lock, or ``<key>:fill`` for a target that takes only paired locks."""
        if self.target.paired_locks and lock in VALID_KEYS:
            return key + ":fill"
        return lock

    @rule(side=sides, key=keys, lock=keys, token=values, ttl=st.integers(0, 3))
    def get_or_lock(self, side: int, key: str, lock: str, token: bytes, ttl: int) -> None:
        """``get_or_lock`` finds the value, or takes the free lock, or finds it held."""
        if not isinstance(self.caches[side], LockedFill):
            return
        lock = self._lock_for(key, lock)
        seconds = (ttl + 0.5) * self.tick
        self._same(
            side,
            lambda c: c.get_or_lock(key, lock, token, seconds),
            f"get_or_lock({key!r}, {lock!r}, ttl={seconds})",
        )

    @rule(
        side=sides,
        key=keys,
        value=values,
        ttl=st.none() | st.integers(0, 3),
        lock=keys,
        token=values,
    )
    def set_and_unlock(
        self, side: int, key: str, value: bytes, ttl: int | None, lock: str, token: bytes
    ) -> None:
        """``set_and_unlock`` stores the value and releases the lock only for its token."""
        if not isinstance(self.caches[side], LockedFill):
            return
        lock = self._lock_for(key, lock)
        seconds = None if ttl is None else (ttl + 0.5) * self.tick
        self._same(
            side,
            lambda c: c.set_and_unlock(key, value, seconds, lock, token),
            f"set_and_unlock({key!r}, ttl={seconds}, {lock!r})",
        )

    @rule(side=sides, key=keys, by=incr_bys)
    def incr(self, side: int, key: str, by: int) -> None:
        """``incr`` adds atomically, keeps the TTL, refuses non-integers and overflow."""
        self._same(side, lambda c: c.incr(key, by), f"incr({key!r}, {by})")

    @rule(side=sides, key=keys)
    def ttl(self, side: int, key: str) -> None:
        """``ttl`` is the model's remaining time within half a tick, or None, or NotFound."""
        if self._unsure():
            return
        got = self._call(lambda: self.caches[side].ttl(key))
        want = self.models[side].ttl(key)
        if self._unsure():
            return
        if isinstance(want, Success) and isinstance(got, Success):
            left, expected = got.unwrap(), want.unwrap()
            if expected is None or left is None:
                assert left == expected, f"ttl({key!r}): adapter {left}, model {expected}"
            else:
                assert abs(left - expected) <= 0.5 * self.tick, (
                    f"ttl({key!r}): adapter {left}, model {expected}"
                )
        else:
            assert _outcome(got) == _outcome(want), f"ttl({key!r}): {_outcome(got)}"

    @rule(side=sides)
    def clear(self, side: int) -> None:
        """``clear`` empties this namespace only; the other keeps every key."""
        self._same(side, lambda c: c.clear(), "clear()")
        other = 1 - side
        self._same(other, lambda c: c.get_many(VALID_KEYS), "the other namespace after clear()")

    @rule(ticks=st.integers(1, 2))
    def time_passes(self, ticks: int) -> None:
        """Time moves forward by whole ticks (TTLs end half a tick away from any step)."""
        self._advance(ticks * self.tick)

    @rule(side=sides, key=valid_keys, value=values)
    def concurrent_add(self, side: int, key: str, value: bytes) -> None:
        """Of several threads adding one key at the same instant, exactly one wins."""
        cache = self.caches[side]
        gate = threading.Barrier(THREADS)
        answers: list[Result[bool, ServiceError]] = [Failure(ServiceError())] * THREADS

        def racer(i: int) -> None:
            gate.wait()
            answers[i] = cache.add(key, value + str(i).encode())

        if self._unsure():
            return
        self._call(lambda: _run_threads(racer))
        if self._unsure():
            return
        outcomes = [_outcome(a) for a in answers]
        assert all(kind == "ok" for kind, _ in outcomes), f"concurrent add failed: {outcomes}"
        winners = [i for i, (_, won) in enumerate(outcomes) if won]
        model = self.models[side]
        if model.add(key, value + str(winners[0] if winners else 0).encode()).unwrap():
            assert len(winners) == 1, f"{len(winners)} concurrent add calls won, not exactly 1"
        else:
            assert winners == [], f"add won over a present key: {winners}"

    @rule(side=sides, key=valid_keys)
    def concurrent_incr(self, side: int, key: str) -> None:
        """Concurrent ``incr`` from several threads loses no update."""
        model = self.models[side]
        before = model.get(key).unwrap()
        total = THREADS * INCRS_PER_THREAD
        start = 0 if before is None else parse_counter(before)
        if start is None or not MIN_INCR <= start + total <= MAX_INCR:
            return  # the model says InvalidRequest somewhere; the incr rule covers that
        cache = self.caches[side]
        gate = threading.Barrier(THREADS)
        seen: list[list[tuple[str, Any]]] = [[] for _ in range(THREADS)]

        def racer(i: int) -> None:
            gate.wait()
            for _ in range(INCRS_PER_THREAD):
                seen[i].append(_outcome(cache.incr(key)))

        if self._unsure():
            return
        self._call(lambda: _run_threads(racer))
        if self._unsure():
            return
        numbers = sorted(value for results in seen for kind, value in results if kind == "ok")
        expected = list(range(start + 1, start + total + 1))
        assert numbers == expected, f"concurrent incr lost updates: saw {numbers}, want {expected}"
        model.incr(key, total)

    @invariant()
    def namespaces_do_not_leak(self) -> None:
        """A key of one namespace is never visible in the other."""
        if not self.caches:
            return
        for side in (0, 1):
            self._same(side, lambda c: c.get_many(VALID_KEYS[:3]), "namespace contents")


def _run_threads(racer: Callable[[int], None]) -> Result[None, ServiceError]:
    threads = [threading.Thread(target=racer, args=(i,), daemon=True) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "a cache call hung for 30 s"
    return Success(None)


def cache_contract(target: CacheTarget) -> type[CacheContract]:
    """The contract state machine bound to ``target``; its ``.TestCase`` runs it."""
    return type("BoundCacheContract", (CacheContract,), {"target": target})


def run_cache_contract(
    target: CacheTarget,
    *,
    max_examples: int = 30,
    steps: int = 25,
    settings: Settings | None = None,
) -> None:
    """Run the contract against ``target``; raise on the first violation.

    ``settings`` overrides ``max_examples``/``steps`` entirely when given; otherwise the
    loaded hypothesis profile supplies everything else (deadline, derandomize...).
    """
    chosen = settings or Settings(max_examples=max_examples, stateful_step_count=steps)
    run_state_machine_as_test(cache_contract(target), settings=chosen)
