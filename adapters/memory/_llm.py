"""The fake LLM: a scriptable, deterministic LLMPort. For tests and the embedded default.

NOT A LANGUAGE MODEL. ``FakeLLM`` answers from a script (a queue of replies and
failures), from a function of the request, or by echoing the last user message. It is
the reference model the LLM contract kit holds real adapters to, so it behaves like
one: it validates requests with the same rules, records every request it accepts as its
typed value, counts usage deterministically (whitespace tokens), streams replies as
word deltas ending in one delta with the finish reason and usage, streams tool calls as
``ToolCallDelta`` fragments, and returns embeddings in which texts sharing words are
close (a hashed bag of words, L2-normalised).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Final, Literal, TypeAlias

import attrs
from returns.result import Failure, Result, Success

from portside.adapters.memory._llm_text import (
    count_tokens,
    cut_at_stop,
    cut_to_tokens,
    embed_text,
    input_tokens,
    split_deltas,
    tool_call_deltas,
)
from portside.domain._errors import (
    ContentFiltered,
    ProtocolError,
    QuotaExceeded,
    RateLimited,
    ServiceError,
    TimedOut,
    Unauthorized,
    Unavailable,
)
from portside.domain._llm import (
    ChatDelta,
    ChatRequest,
    Completion,
    Embeddings,
    FinishReason,
    LLMIdentity,
    Moderation,
    Moderations,
    ToolCall,
    Usage,
)
from portside.ports._llm import LLMPort, Moderates
from portside.ports.llm_rules import (
    MAX_EMBED_DIMENSIONS,
    MAX_EMBED_TEXT_CHARS,
    validate_chat,
    validate_embed,
    validate_moderate,
)

__all__ = ["FAILURE_KINDS", "EmbedCall", "FailureKind", "FakeLLM", "Reply", "Responder"]

#: A failure the fake LLM can be scripted to return (see ``FAILURE_KINDS``).
FailureKind: TypeAlias = Literal[
    "rate_limited", "timed_out", "unavailable", "unauthorized", "quota_exceeded", "content_filtered"
]

#: The error class each scripted failure kind surfaces as, through every call.
FAILURE_KINDS: Final[dict[FailureKind, type[ServiceError]]] = {
    "rate_limited": RateLimited,
    "timed_out": TimedOut,
    "unavailable": Unavailable,
    "unauthorized": Unauthorized,
    "quota_exceeded": QuotaExceeded,
    "content_filtered": ContentFiltered,
}

_SERVICE: Final = "fake"


@attrs.frozen
class Reply:
    """A scripted answer. ``usage=None`` means counted from the request and the reply.

    ``finish_reason=None`` means ``tool_calls`` when there are tool calls, else
    ``stop`` (and ``length`` when the request's ``max_tokens`` cuts the text).
    """

    text: str = ""
    finish_reason: FinishReason | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage | None = None


@attrs.frozen
class _Drop:
    """A stream that sends ``after`` deltas of ``text`` and then ends without finishing."""

    after: int
    text: str


@attrs.frozen
class EmbedCall:
    """One embeddings call the fake accepted, as it was asked."""

    texts: tuple[str, ...]
    model: str | None
    dimensions: int | None


#: Computes an answer from the request: a text, a full reply, or an error to return.
Responder: TypeAlias = Callable[[ChatRequest], "str | Reply | ServiceError"]
_Entry: TypeAlias = "Reply | ServiceError | _Drop"


def _error(kind: FailureKind | ServiceError, retry_after: float | None, op: str) -> ServiceError:
    if isinstance(kind, ServiceError):
        return kind
    message = f"scripted failure: {kind}"
    if kind == "rate_limited":
        return RateLimited(service=_SERVICE, operation=op, message=message, retry_after=retry_after)
    try:
        cls = FAILURE_KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown failure kind {kind!r}") from None
    return cls(service=_SERVICE, operation=op, message=message)


def _check_dimensions(_: object, __: object, value: object) -> None:
    # A programming error at build, as a bad setting of a real adapter: 10**7
    # dimensions would allocate gigabytes on the first embed.
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or not 0 < value <= MAX_EMBED_DIMENSIONS
    ):
        raise ValueError(f"dimensions must be an int between 1 and {MAX_EMBED_DIMENSIONS}")


@attrs.define
class FakeLLM(LLMPort, Moderates):
    """A scriptable in-memory LLM. For tests and the embedded default only.

    Answers, in order of precedence: the next scripted entry (``reply``, ``fail``,
    ``drop_stream_after``), then ``responder(request)``, then an echo of the last user
    message. ``complete`` and ``stream`` take one entry each; ``embed`` takes the next
    entry only when it is a failure, so a scripted failure hits whatever call comes
    next. Requests that fail validation return ``Failure(InvalidRequest)``, consume
    nothing and are not recorded. Thread-safe: one lock guards the script and records.
    Building it with ``dimensions`` outside 1..``MAX_EMBED_DIMENSIONS`` raises
    ``ValueError`` (a programming error, as a bad setting of a real adapter).
    """

    model: str = "fake-chat"
    embedding_model: str = "fake-embedding"
    dimensions: int = attrs.field(default=64, validator=_check_dimensions)
    responder: Responder | None = None
    max_text_chars: int = MAX_EMBED_TEXT_CHARS
    _script: deque[_Entry] = attrs.field(factory=deque, init=False, repr=False)
    _requests: list[ChatRequest] = attrs.field(factory=list, init=False, repr=False)
    _embed_calls: list[EmbedCall] = attrs.field(factory=list, init=False, repr=False)
    _flags: dict[str, tuple[str, float]] = attrs.field(factory=dict, init=False, repr=False)
    _closed: bool = attrs.field(default=False, init=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False)

    # -- scripting -------------------------------------------------------------------

    def reply(
        self,
        text: str = "",
        *,
        finish_reason: FinishReason | None = None,
        tool_calls: Sequence[ToolCall] = (),
        usage: Usage | None = None,
    ) -> None:
        """Queue the answer to the next chat call (``complete`` or ``stream``)."""
        entry = Reply(text, finish_reason, tuple(tool_calls), usage)
        with self._lock:
            self._script.append(entry)

    def fail(self, kind: FailureKind | ServiceError, *, retry_after: float | None = None) -> None:
        """Queue a failure for the next call: a kind from ``FAILURE_KINDS`` or an error.

        ``retry_after`` goes into ``RateLimited.retry_after``. Raises ``ValueError``
        for an unknown kind.
        """
        entry = _error(kind, retry_after, "scripted")
        with self._lock:
            self._script.append(entry)

    def drop_stream_after(self, n: int, *, text: str = "the answer was cut short here") -> None:
        """Queue a stream that yields ``n`` deltas of ``text`` then ends without finishing.

        Streamed, it ends with ``Failure(ProtocolError)``; a ``complete`` call that takes
        it gets that ``ProtocolError`` at once (the body was truncated).
        """
        if n < 0:
            raise ValueError("n must not be negative")
        with self._lock:
            self._script.append(_Drop(n, text))

    def flag(self, word: str, category: str = "harassment", *, score: float = 0.9) -> None:
        """``moderate`` flags any text holding ``word`` (any case) in ``category``."""
        with self._lock:
            self._flags[word.lower()] = (category, score)

    def received(self) -> int:
        """How many calls (chat and embeddings) got past validation so far."""
        with self._lock:
            return len(self._requests) + len(self._embed_calls)

    @property
    def requests(self) -> tuple[ChatRequest, ...]:
        """Every chat request accepted so far, in order."""
        with self._lock:
            return tuple(self._requests)

    @property
    def embed_calls(self) -> tuple[EmbedCall, ...]:
        """Every embeddings call accepted so far, in order."""
        with self._lock:
            return tuple(self._embed_calls)

    @property
    def pending(self) -> int:
        """Scripted entries not consumed yet."""
        with self._lock:
            return len(self._script)

    # -- the port --------------------------------------------------------------------

    @property
    def identity(self) -> LLMIdentity:
        """``LLMIdentity("fake", "memory://", model)``."""
        return LLMIdentity("fake", "memory://", self.model)

    def complete(self, request: ChatRequest) -> Result[Completion, ServiceError]:
        """The answer to ``request`` as one ``Completion``.

        Errors: ``InvalidRequest`` (nothing recorded), ``Unavailable`` after ``close``,
        any scripted failure, ``ProtocolError`` for a scripted dropped stream.
        """
        taken = self._take(request, "complete")
        if isinstance(taken, ServiceError):
            return Failure(taken)
        if isinstance(taken, _Drop):
            return Failure(
                ProtocolError(
                    service=_SERVICE, operation="complete", message="the answer was truncated"
                )
            )
        return Success(taken)

    def stream(self, request: ChatRequest) -> Iterator[Result[ChatDelta, ServiceError]]:
        """The answer as word deltas, then tool-call fragments, then one final delta.

        The final delta has no text and carries ``finish_reason`` and ``usage``. A
        failure is one ``Failure`` and nothing else; a scripted drop yields its deltas
        and then ``Failure(ProtocolError)``. The request is validated, recorded and its
        script entry taken when ``stream`` is called, not when iteration starts.
        """
        taken = self._take(request, "stream")
        if isinstance(taken, ServiceError):
            return iter((Failure(taken),))
        model = request.model or self.model
        if isinstance(taken, _Drop):
            chunks = split_deltas(taken.text)[: taken.after]
            events: list[Result[ChatDelta, ServiceError]] = [
                Success(ChatDelta(chunk, model=model)) for chunk in chunks
            ]
            message = f"the stream ended after {len(chunks)} deltas without a finish reason"
            events.append(
                Failure(ProtocolError(service=_SERVICE, operation="stream", message=message))
            )
            return iter(events)
        return iter(_deltas(taken))

    def embed(
        self,
        texts: Sequence[str],
        *,
        model: str | None = None,
        dimensions: int | None = None,
    ) -> Result[Embeddings, ServiceError]:
        """One unit vector per text (hashed bag of words), ``dimensions`` long.

        Errors: ``InvalidRequest`` (nothing recorded), ``Unavailable`` after ``close``,
        a scripted failure at the head of the script.
        """
        problem = validate_embed(
            texts, model, dimensions, service=_SERVICE, max_text_chars=self.max_text_chars
        )
        if problem is not None:
            return Failure(problem)
        with self._lock:
            if self._closed:
                return Failure(_closed_error("embed"))
            self._embed_calls.append(EmbedCall(tuple(texts), model, dimensions))
            failure = self._script[0] if self._script else None
            if isinstance(failure, ServiceError):
                self._script.popleft()
                return Failure(_as_operation(failure, "embed"))
        name = model or self.embedding_model
        size = dimensions or self.dimensions
        vectors = tuple(embed_text(text, name, size) for text in texts)
        usage = Usage(input_tokens=sum(count_tokens(text) for text in texts))
        return Success(Embeddings(vectors, name, usage))

    def moderate(
        self, texts: Sequence[str], *, model: str | None = None
    ) -> Result[Moderations, ServiceError]:
        """A verdict per text: flagged in a category when it holds a word given to ``flag``.

        Errors as ``embed``: ``InvalidRequest`` (nothing recorded), ``Unavailable``
        after ``close``, a scripted failure at the head of the script. Moderation
        calls are not counted by ``received`` (they are not chat or embeddings calls).
        """
        problem = validate_moderate(
            texts, model, service=_SERVICE, max_text_chars=self.max_text_chars
        )
        if problem is not None:
            return Failure(problem)
        with self._lock:
            if self._closed:
                return Failure(_closed_error("moderate"))
            failure = self._script[0] if self._script else None
            if isinstance(failure, ServiceError):
                self._script.popleft()
                return Failure(_as_operation(failure, "moderate"))
            flags = dict(self._flags)
        return Success(
            Moderations(tuple(_verdict(t, flags) for t in texts), model or "fake-moderation")
        )

    def close(self) -> None:
        """Refuse further calls with ``Unavailable``; the script and records stay readable."""
        with self._lock:
            self._closed = True

    # -- internals -------------------------------------------------------------------

    def _take(self, request: ChatRequest, operation: str) -> Completion | ServiceError | _Drop:
        problem = validate_chat(request, service=_SERVICE, operation=operation)
        if problem is not None:
            return problem
        with self._lock:
            if self._closed:
                return _closed_error(operation)
            self._requests.append(request)
            entry = self._script.popleft() if self._script else None
        if entry is None:
            entry = self._respond(request)
        if isinstance(entry, ServiceError):
            return _as_operation(entry, operation)
        if isinstance(entry, _Drop):
            return entry
        return _completion(request, entry, request.model or self.model)

    def _respond(self, request: ChatRequest) -> Reply | ServiceError:
        if self.responder is None:
            users = [m.content for m in request.messages if m.role == "user" and m.content]
            return Reply(users[-1] if users else "")
        answer = self.responder(request)
        return Reply(answer) if isinstance(answer, str) else answer


def _closed_error(operation: str) -> Unavailable:
    return Unavailable(service=_SERVICE, operation=operation, message="the fake LLM is closed")


def _as_operation(error: ServiceError, operation: str) -> ServiceError:
    """A scripted kind names the call that met it; an error the caller built is kept."""
    if error.operation != "scripted":
        return error
    return attrs.evolve(error, operation=operation)


def _completion(request: ChatRequest, reply: Reply, model: str) -> Completion:
    """What a provider would answer: stop sequences and ``max_tokens`` cut the text."""
    text = cut_at_stop(reply.text, request.stop)
    finish = reply.finish_reason
    if finish is None:
        finish = "tool_calls" if reply.tool_calls else "stop"
    if request.max_tokens is not None and finish == "stop":
        cut = cut_to_tokens(text, request.max_tokens)
        if cut is not None:
            text, finish = cut, "length"
    usage = reply.usage
    if usage is None:
        output = count_tokens(text) + sum(count_tokens(c.arguments) for c in reply.tool_calls)
        usage = Usage(input_tokens(request.messages), output)
    return Completion(text, finish, reply.tool_calls, usage, model)


def _deltas(completion: Completion) -> list[Result[ChatDelta, ServiceError]]:
    model = completion.model
    events: list[Result[ChatDelta, ServiceError]] = [
        Success(ChatDelta(chunk, model=model)) for chunk in split_deltas(completion.text)
    ]
    events.extend(
        Success(ChatDelta(tool_calls=(fragment,), model=model))
        for fragment in tool_call_deltas(completion.tool_calls)
    )
    final = ChatDelta(finish_reason=completion.finish_reason, usage=completion.usage, model=model)
    events.append(Success(final))
    return events


def _verdict(text: str, flags: dict[str, tuple[str, float]]) -> Moderation:
    lowered = text.lower()
    hits = {category: score for word, (category, score) in flags.items() if word in lowered}
    categories = dict.fromkeys(hits, True)
    return Moderation(bool(hits), categories, hits)
