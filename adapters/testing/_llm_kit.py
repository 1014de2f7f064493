"""The LLM contract kit: a hypothesis state machine any scriptable ``LLMPort`` must pass.

A real adapter cannot be told what to answer, but whatever backs it can: the kit talks
to the backend through the small ``LLMScript`` protocol. ``FakeLLM`` is its own script;
the OpenAI adapter's tests implement the protocol over the local OpenAI-compatible test
server. A factory returns ``(llm_under_test, script)``; the kit scripts an answer, calls
the port, and checks, against a fresh ``FakeLLM`` given the same script (the model):

- for the same scripted reply, ``complete`` gives the scripted text, tool calls and
  finish reason, and the streamed deltas concatenate to that text, their tool-call
  fragments join to those calls, and exactly one final delta (the last) carries the
  same finish reason, usage and model; scripted usage comes back unchanged;
- each scripted failure kind surfaces as the same error class through ``complete``,
  ``stream`` (one ``Failure``, nothing else) and ``embed``, with ``retry_after`` kept;
- a stream the backend drops yields a prefix of the text and ends with one
  ``Failure(ProtocolError)``, never a silent short answer;
- embeddings have the requested count and dimensions, finite floats;
- invalid requests are ``Failure(InvalidRequest)``, nothing reaches the backend, and
  the script is left untouched for the next call;
- every other call reaches the backend exactly once (no hidden retries: build the
  adapter under test with its own retries off).

Use it as ``run_llm_contract(factory)`` in a test, or subclass ``llm_contract(factory)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, Protocol

import attrs
from hypothesis import settings as Settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)
from returns.result import Failure, Result, Success

from portside.adapters.memory._llm import FAILURE_KINDS, FailureKind, FakeLLM
from portside.adapters.testing._llm_strategies import (
    INVALID_CHAT,
    INVALID_EMBED,
    ScriptedReply,
    chat_requests,
    embed_texts,
    replies,
    stream_texts,
)
from portside.domain._errors import InvalidRequest, ProtocolError, RateLimited, ServiceError
from portside.domain._llm import (
    ChatDelta,
    ChatMessage,
    ChatRequest,
    Completion,
    FinishReason,
    ToolCall,
    Usage,
)
from portside.ports._llm import LLMPort
from portside.ports.llm_rules import MAX_EMBED_TEXT_CHARS

__all__ = [
    "FAILURE_KINDS",
    "Collected",
    "FailureKind",
    "LLMContract",
    "LLMFactory",
    "LLMKitOptions",
    "LLMScript",
    "collect_stream",
    "fake_llm_subject",
    "llm_contract",
    "run_llm_contract",
]


class LLMScript(Protocol):
    """Scripts the next answer of whatever backs an adapter; one entry per call.

    Entries are consumed in order, one per call that reaches the backend (a call the
    adapter refuses as invalid consumes nothing).
    """

    def reply(
        self,
        text: str = "",
        *,
        finish_reason: FinishReason | None = None,
        tool_calls: Sequence[ToolCall] = (),
        usage: Usage | None = None,
    ) -> None:
        """The next chat call answers this.

        ``finish_reason=None`` means ``tool_calls`` with tool calls, else ``stop``;
        ``usage=None`` lets the backend count tokens itself.
        """
        ...

    def fail(self, kind: FailureKind, *, retry_after: float | None = None) -> None:
        """The next call (chat or embeddings) fails this way (see ``FAILURE_KINDS``).

        ``rate_limited`` carries ``retry_after`` seconds (a ``Retry-After`` header over
        HTTP); ``timed_out`` means the backend does not answer within the adapter's
        timeout.
        """
        ...

    def drop_stream_after(self, n: int, *, text: str = "the answer was cut short here") -> None:
        """The next chat call streams at most ``n`` deltas of ``text``, then stops.

        It ends without a finish reason (over HTTP: a clean end of the SSE body with no
        final chunk). The adapter must turn that into ``Failure(ProtocolError)``.
        """
        ...

    def received(self) -> int:
        """How many calls reached the backend so far (chat and embeddings)."""
        ...


#: Builds a fresh subject for one hypothesis example: the port and its backend's script.
LLMFactory = Callable[[], tuple[LLMPort, LLMScript]]


@attrs.frozen
class LLMKitOptions:
    """What the adapter under test is configured with."""

    max_text_chars: int = MAX_EMBED_TEXT_CHARS
    failure_kinds: tuple[FailureKind, ...] = tuple(FAILURE_KINDS)


def fake_llm_subject() -> tuple[LLMPort, LLMScript]:
    """A fresh ``FakeLLM`` that is its own script."""
    fake = FakeLLM()
    return fake, fake


@attrs.frozen
class Collected:
    """A stream folded into what it stands for, or the problems that make it invalid."""

    completion: Completion | None
    error: ServiceError | None
    problems: tuple[str, ...]
    deltas: int


def collect_stream(events: Iterable[Result[ChatDelta, ServiceError]]) -> Collected:
    """Fold a stream, checking the port's stream rules on the way.

    Rules: only the last event may be a ``Failure``; without one, exactly one delta
    carries a finish reason and it is the last; usage only on that delta. Tool-call
    fragments join by index: the first id and name seen, arguments concatenated.
    """
    problems: list[str] = []
    text: list[str] = []
    calls: dict[int, list[str | None]] = {}
    final: ChatDelta | None = None
    error: ServiceError | None = None
    count = 0
    for event in events:
        count += 1
        if error is not None:
            problems.append("an event followed a Failure")
            break
        match event:
            case Failure(failed):
                error = failed
                continue
            case Success(delta):
                pass
        if final is not None:
            problems.append("a delta followed the one carrying the finish reason")
        if delta.usage is not None and delta.finish_reason is None:
            problems.append("usage on a delta without a finish reason")
        text.append(delta.text)
        for fragment in delta.tool_calls:
            slot = calls.setdefault(fragment.index, [None, None, ""])
            slot[0] = slot[0] if slot[0] is not None else fragment.id
            slot[1] = slot[1] if slot[1] is not None else fragment.name
            slot[2] = f"{slot[2]}{fragment.arguments}"
        if delta.finish_reason is not None:
            final = delta
    if error is not None:
        return Collected(None, error, tuple(problems), count)
    if final is None:
        problems.append("the stream ended without a finish reason")
        return Collected(None, None, tuple(problems), count)
    if final.usage is None:
        problems.append("the final delta carries no usage")
    tool_calls = tuple(
        ToolCall(slot[0] or "", slot[1] or "", slot[2] or "") for _, slot in sorted(calls.items())
    )
    completion = Completion(
        "".join(text),
        final.finish_reason or "stop",
        tool_calls,
        final.usage or Usage(),
        final.model,
    )
    return Collected(completion, None, tuple(problems), count)


def _ok(result: Result[Any, ServiceError], what: str) -> Any:
    match result:
        case Success(value):
            return value
        case Failure(error):
            raise AssertionError(f"{what} failed unexpectedly: {error!r}")
    raise AssertionError(f"{what} returned {result!r}, not a Result")  # pragma: no cover


def _error_of(result: object, what: str) -> ServiceError:
    match result:
        case Failure(ServiceError() as error):
            return error
    raise AssertionError(f"{what} should have failed, got {result!r}")


class LLMContract(RuleBasedStateMachine):
    """The LLM port's contract; ``llm_contract(factory)`` binds it to an adapter."""

    factory: ClassVar[LLMFactory] = staticmethod(fake_llm_subject)
    options: ClassVar[LLMKitOptions] = LLMKitOptions()

    def __init__(self) -> None:
        super().__init__()
        self.llm, self.script = type(self).factory()
        self.sent = self.script.received()

    def teardown(self) -> None:
        """Close the port under test."""
        self.llm.close()

    def _script_both(self, model: FakeLLM, reply: ScriptedReply) -> None:
        for script in (self.script, model):
            script.reply(
                reply.text,
                finish_reason=reply.finish_reason,
                tool_calls=reply.tool_calls,
                usage=reply.usage,
            )

    @rule(reply=replies(), request=chat_requests(), stream_first=st.booleans())
    def same_answer_complete_and_streamed(
        self, reply: ScriptedReply, request: ChatRequest, stream_first: bool
    ) -> None:
        """Complete and stream give the scripted answer, and agree with each other."""
        model = FakeLLM()
        self._script_both(model, reply)
        self._script_both(model, reply)
        expected: Completion = model.complete(request).unwrap()
        if stream_first:
            collected = collect_stream(self.llm.stream(request))
            completion: Completion = _ok(self.llm.complete(request), "complete")
        else:
            completion = _ok(self.llm.complete(request), "complete")
            collected = collect_stream(self.llm.stream(request))
        self.sent += 2
        assert (completion.text, completion.tool_calls) == (expected.text, expected.tool_calls)
        assert completion.finish_reason == expected.finish_reason
        if reply.usage is not None:
            assert completion.usage == reply.usage, "scripted usage must come back unchanged"
        assert not collected.problems, f"stream broke the port's rules: {collected.problems}"
        assert collected.error is None, f"stream failed unexpectedly: {collected.error!r}"
        streamed = collected.completion
        assert streamed is not None
        assert streamed.text == completion.text, "deltas must concatenate to the completed text"
        assert streamed.tool_calls == completion.tool_calls
        assert streamed.finish_reason == completion.finish_reason
        assert streamed.usage == completion.usage, "the final delta must carry the same usage"
        assert streamed.model == completion.model

    @rule(
        data=st.data(),
        retry_after=st.none() | st.integers(1, 60),
        via=st.sampled_from(["complete", "stream", "embed"]),
    )
    def scripted_failure_surfaces_as_its_class(
        self, data: st.DataObject, retry_after: int | None, via: str
    ) -> None:
        """Each scripted failure is the same error class through every call."""
        kind = data.draw(st.sampled_from(self.options.failure_kinds), label="kind")
        expected = FAILURE_KINDS[kind]
        self.script.fail(kind, retry_after=retry_after)
        request = ChatRequest((ChatMessage.user("hello"),))
        if via == "complete":
            error = _error_of(self.llm.complete(request), "complete")
        elif via == "embed":
            error = _error_of(self.llm.embed(["hello"]), "embed")
        else:
            events = list(self.llm.stream(request))
            assert len(events) == 1, f"a failed stream yields one Failure, got {events!r}"
            error = _error_of(events[0], "stream")
        self.sent += 1
        assert isinstance(error, expected), f"{kind} surfaced as {type(error).__name__}"
        if isinstance(error, RateLimited):
            assert error.retry_after == retry_after, "retry_after must be surfaced as scripted"

    @rule(n=st.integers(0, 4), text=stream_texts())
    def dropped_stream_ends_with_protocol_error(self, n: int, text: str) -> None:
        """A stream cut before its finish reason ends in one ProtocolError, not silence."""
        self.script.drop_stream_after(n, text=text)
        collected = collect_stream(self.llm.stream(ChatRequest((ChatMessage.user("go"),))))
        self.sent += 1
        assert isinstance(collected.error, ProtocolError), (
            f"a dropped stream must end with Failure(ProtocolError), got {collected!r}"
        )
        assert not collected.problems, collected.problems

    @rule(
        texts=embed_texts(),
        dimensions=st.none() | st.integers(1, 48),
        model=st.none() | st.just("kit-embedding"),
    )
    def embeddings_have_the_requested_shape(
        self, texts: list[str], dimensions: int | None, model: str | None
    ) -> None:
        """One vector per text, all of the requested (or one common) length, finite."""
        embeddings = _ok(self.llm.embed(texts, model=model, dimensions=dimensions), "embed")
        self.sent += 1
        lengths = {len(vector) for vector in embeddings.vectors}
        assert len(embeddings.vectors) == len(texts)
        assert lengths == {dimensions} if dimensions else (len(lengths) == 1 and 0 not in lengths)
        assert all(math.isfinite(x) for vector in embeddings.vectors for x in vector)

    @rule(case=st.sampled_from(INVALID_CHAT), via=st.sampled_from(["complete", "stream"]))
    def invalid_chat_is_refused_before_sending(
        self, case: tuple[str, ChatRequest], via: str
    ) -> None:
        """Bad chat input is InvalidRequest, sends nothing and leaves the script alone."""
        name, request = case
        self.script.reply("still here")
        if via == "complete":
            error = _error_of(self.llm.complete(request), f"complete with {name}")
        else:
            events = list(self.llm.stream(request))
            assert len(events) == 1, f"an invalid stream yields one Failure, got {events!r}"
            error = _error_of(events[0], f"stream with {name}")
        assert isinstance(error, InvalidRequest), f"{name} gave {type(error).__name__}"
        assert self.script.received() == self.sent, f"{name} reached the backend"
        self._answer_is("still here")

    @rule(data=st.data())
    def invalid_embeddings_are_refused_before_sending(self, data: st.DataObject) -> None:
        """Bad embeddings input is InvalidRequest and sends nothing."""
        cases = INVALID_EMBED(self.options.max_text_chars)
        name, (texts, model, dimensions) = data.draw(st.sampled_from(cases), label="case")
        self.script.reply("still here")
        result = self.llm.embed(texts, model=model, dimensions=dimensions)
        error = _error_of(result, f"embed with {name}")
        assert isinstance(error, InvalidRequest), f"{name} gave {type(error).__name__}"
        assert self.script.received() == self.sent, f"{name} reached the backend"
        self._answer_is("still here")

    def _answer_is(self, text: str) -> None:
        completion = _ok(self.llm.complete(ChatRequest((ChatMessage.user("again"),))), "complete")
        self.sent += 1
        assert completion.text == text, "a refused call must not consume the script"

    @invariant()
    def each_call_reaches_the_backend_once(self) -> None:
        """No call is sent twice (hidden retries) or dropped."""
        assert self.script.received() == self.sent, (
            f"the backend saw {self.script.received()} calls, the kit made {self.sent}"
        )


def llm_contract(factory: LLMFactory, options: LLMKitOptions | None = None) -> type[LLMContract]:
    """The contract state machine bound to ``factory``; its ``.TestCase`` runs it."""
    namespace = {"factory": staticmethod(factory), "options": options or LLMKitOptions()}
    return type("BoundLLMContract", (LLMContract,), namespace)


def run_llm_contract(
    factory: LLMFactory,
    options: LLMKitOptions | None = None,
    *,
    max_examples: int = 25,
    steps: int = 8,
    settings: Settings | None = None,
) -> None:
    """Run the contract against ``factory``'s subjects; raise on the first violation.

    ``settings`` overrides ``max_examples``/``steps`` entirely when given; otherwise the
    loaded hypothesis profile supplies everything else (deadline, derandomize...).
    """
    chosen = settings or Settings(max_examples=max_examples, stateful_step_count=steps)
    run_state_machine_as_test(llm_contract(factory, options), settings=chosen)
