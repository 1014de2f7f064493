"""The life cycle every unit of work shares: nesting, dooming, savepoints, use after exit.

Both the in-memory fake and the SQLAlchemy adapter inherit it, so the rules of
``with uow:`` are written once: a nested block joins the outer one, only the outermost
block ends the transaction, an exception leaving an inner block dooms the outer commit,
an exception leaving a ``savepoint()`` undoes only what was staged inside it, and any
use after the block raises ``RuntimeError`` (a programming error).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Self, TypeVar

import attrs
from returns.result import Failure, Result, Success

from portside.adapters.entities import EntitySpec
from portside.domain._errors import InvalidRequest, ServiceError
from portside.ports._uow import Repository, UnitOfWork
from portside.ports.queue_rules import QueueOptions, check_body, check_headers, check_name

__all__ = ["StagedMessage", "UnitLifecycle", "identity_of"]

# The limits ``publish`` checks are the queue's defaults: the relay hands each message
# to a queue adapter, which applies the same rules again.
_QUEUE_RULES = QueueOptions()


@attrs.frozen
class StagedMessage:
    """A message ``publish`` staged; written to the outbox by the unit's commit."""

    topic: str
    body: bytes
    headers: dict[str, str]
    dedupe_key: str | None


E = TypeVar("E")


@attrs.define
class UnitLifecycle(UnitOfWork):
    """Base of portside's units of work; subclasses implement the storage hooks."""

    _service: str = attrs.field(default="uow", kw_only=True)
    _depth: int = attrs.field(default=0, init=False)
    _doomed: bool = attrs.field(default=False, init=False)
    _generation: int = attrs.field(default=0, init=False)
    # How many times the staged work was thrown away (rollback, failed commit, doom): a
    # savepoint taken before then has nothing left to undo.
    _resets: int = attrs.field(default=0, init=False)
    _savepoints: int = attrs.field(default=0, init=False)
    # Messages staged by ``publish`` since the last commit, in the order given.
    _messages: list[StagedMessage] = attrs.field(factory=list, init=False, repr=False)
    # Called after each commit that wrote outbox messages (the after-commit relay).
    _after_commit: list[Callable[[], None]] = attrs.field(factory=list, init=False, repr=False)

    def __enter__(self) -> Self:
        """Begin the unit of work, or join the block already open."""
        if self._depth == 0:
            self._generation += 1
            self._doomed = False
            self._begin()
        self._depth += 1
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Leave the block; the outermost exit rolls back whatever was not committed."""
        if self._depth == 0:
            raise RuntimeError("__exit__ without a matching __enter__")
        self._depth -= 1
        if self._depth > 0:
            if exc_type is not None and not self._doomed:
                # The inner block failed half-way: its writes cannot be trusted, so the
                # whole unit is rolled back now and the outer commit will refuse.
                self._doomed = True
                self._reset()
            return
        self._resets += 1
        self._messages.clear()
        self._end()

    def commit(self) -> Result[None, ServiceError]:
        """Make every staged change durable at once, or none of them.

        Inside a nested block this joins the outer unit and commits nothing yet.
        ``Failure(InvalidRequest)`` after an inner block failed; otherwise as
        ``_commit`` says. Raises ``RuntimeError`` outside ``with uow:``.
        """
        self.ensure_open()
        if self._doomed:
            return Failure(
                InvalidRequest(
                    service=self._service,
                    operation="commit",
                    message="an inner block failed; this unit of work was rolled back",
                )
            )
        if self._depth > 1:
            return Success(None)
        if self._savepoints:
            return Failure(
                InvalidRequest(
                    service=self._service,
                    operation="commit",
                    message="commit() inside a savepoint; leave the savepoint first",
                )
            )
        wrote_messages = bool(self._messages)
        result = self._commit()
        # Written with the entities, or rolled back with them: either way not staged now.
        self._messages.clear()
        if isinstance(result, Failure):
            self._resets += 1  # a failed commit rolled the unit back
        elif wrote_messages:
            for hook in self._after_commit:
                hook()
        return result

    def after_commit(self, hook: Callable[[], None]) -> None:
        """Call ``hook()`` after each successful commit of this unit that wrote messages.

        The composition root's after-commit relay uses it. The data is committed when
        the hook runs, so a hook reports its own problems instead of raising.
        """
        self._after_commit.append(hook)

    def publish(
        self,
        topic: str,
        body: bytes,
        *,
        headers: Mapping[str, str] | None = None,
        dedupe_key: str | None = None,
    ) -> Result[None, ServiceError]:
        """Stage a message for ``topic``, stored in the outbox by this unit's commit.

        It exists if and only if the commit succeeds; a relay then publishes it to a
        queue. ``Failure(InvalidRequest)`` naming the argument for a bad topic, body,
        headers or dedupe key (the queue's rules; nothing staged). Raises
        ``RuntimeError`` outside ``with uow:``.
        """
        self.ensure_open()
        service, operation = self._service, "publish"
        checked_topic = check_name("topic", topic, operation=operation, service=service)
        if isinstance(checked_topic, Failure):
            return checked_topic
        if dedupe_key is not None:
            key = check_name("dedupe key", dedupe_key, operation=operation, service=service)
            if isinstance(key, Failure):
                return key
        checked_headers = check_headers(headers, _QUEUE_RULES, operation=operation, service=service)
        if isinstance(checked_headers, Failure):
            return checked_headers
        size = checked_headers.unwrap().size
        checked_body = check_body(
            body, _QUEUE_RULES, operation=operation, service=service, reserved=size
        )
        if isinstance(checked_body, Failure):
            return checked_body
        self._messages.append(
            StagedMessage(
                checked_topic.unwrap(),
                checked_body.unwrap(),
                checked_headers.unwrap().values,
                dedupe_key,
            )
        )
        return Success(None)

    @property
    def staged_messages(self) -> list[StagedMessage]:
        """The messages the next commit writes to the outbox (for the storage hooks)."""
        return self._messages

    def rollback(self) -> None:
        """Discard everything staged since the last commit."""
        self.ensure_open()
        self._reset()

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A part of the unit that an exception undoes alone (then the exception goes on).

        Adds, changes and removals staged inside are undone when an exception leaves the
        block; what was staged before it, and entities loaded inside it (with their
        loaded values), stay. Savepoints nest. ``commit()`` inside one is
        ``Failure(InvalidRequest)``. Raises ``RuntimeError`` outside ``with uow:``.
        """
        self.ensure_open()
        mark = self._mark()
        messages = len(self._messages)
        resets, generation = self._resets, self._generation
        self._savepoints += 1
        try:
            yield
        except BaseException:
            if (self._resets, self._generation) == (resets, generation) and self._depth:
                self._restore(mark)
                del self._messages[messages:]
            raise
        finally:
            self._savepoints -= 1

    def _reset(self) -> None:
        self._resets += 1
        self._messages.clear()
        self._discard()

    def repository(self, entity_type: type[E]) -> Repository[E]:
        """The repository of ``entity_type`` in this block.

        Raises ``TypeError`` for a class that is not a registered entity and
        ``RuntimeError`` outside ``with uow:``.
        """
        self.ensure_open()
        return self._repository(entity_type)

    def ensure_open(self, generation: int | None = None) -> None:
        """Raise ``RuntimeError`` unless inside the block (``generation``, when given)."""
        if self._depth == 0 or (generation is not None and generation != self._generation):
            raise RuntimeError("unit of work used outside its `with` block")

    @property
    def generation(self) -> int:
        """Counts outermost blocks; repositories remember the one they belong to."""
        return self._generation

    @property
    def service(self) -> str:
        """The service name errors carry."""
        return self._service

    @abstractmethod
    def _begin(self) -> None:
        """Start a fresh transaction (outermost ``__enter__``)."""

    @abstractmethod
    def _commit(self) -> Result[None, ServiceError]:
        """Write every staged change atomically; on failure roll back and return why."""

    @abstractmethod
    def _discard(self) -> None:
        """Forget staged changes and loaded entities; end the database transaction."""

    @abstractmethod
    def _mark(self) -> Any:
        """What ``_restore`` needs to bring the staged work back to this moment."""

    @abstractmethod
    def _restore(self, mark: Any) -> None:
        """Undo what was staged since ``_mark`` returned ``mark``."""

    @abstractmethod
    def _end(self) -> None:
        """Forget what was not committed and release resources (the outermost exit)."""

    @abstractmethod
    def _repository(self, entity_type: type[E]) -> Repository[E]:
        """A repository bound to the current block."""


def identity_of(
    spec: EntitySpec[Any], entity: object, *, service: str, operation: str
) -> tuple[type, Any] | ServiceError:
    """``(entity type, key)`` of ``entity``, or ``InvalidRequest`` for a bad key.

    The key is ``None`` for an entity whose key the database (or a column default) will
    generate at commit. Raises ``TypeError`` when ``entity`` is not an instance of the
    spec's class (the type checker should already have said so).
    """
    if not isinstance(entity, spec.entity_type):
        raise TypeError(f"expected a {spec.entity_type.__name__}, got {type(entity).__name__}")
    key = getattr(entity, spec.key, None)
    if key is None and spec.generated_key:
        return (spec.entity_type, None)
    problem = f"the key {spec.key!r} is not set" if key is None else spec.key_problem(key)
    if problem is not None:
        return InvalidRequest(service=service, operation=operation, message=problem)
    return (spec.entity_type, key)
