"""A local OpenAI-compatible HTTP server for tests: real HTTP on loopback, real SSE.

It speaks ``POST /v1/chat/completions`` (plain and ``stream=true``, with the usage-only
closing chunk when ``stream_options.include_usage`` is set), ``POST /v1/embeddings`` and
``POST /v1/moderations``.
Tests queue behaviours (replies, tool calls, error statuses, delays, stalled, dropped,
malformed or truncated streams, malformed bodies) and read back every request the
server received, so retries and backoff are asserted from what really went over the
wire. With nothing queued it answers deterministically (the last user message, and
hashed bag-of-words embeddings), which is what the benchmarks use. It also implements
the LLM contract kit's ``LLMScript`` protocol (``reply``, ``fail``,
``drop_stream_after``, ``received``), so the kit can run an adapter against it.

For tests only: it binds 127.0.0.1, has no authentication beyond an optional bearer
check and keeps every request in memory. ``python -m portside.adapters.testing``
runs it in the foreground and prints its base URL.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Sequence
from typing import Self

import attrs

from portside.adapters.testing._llm_kit import LLMScript
from portside.adapters.testing._openai_answers import (
    Behaviour,
    Delay,
    EchoKey,
    HttpError,
    KeepAliveForever,
    RawBody,
    RedirectLoop,
    Reply,
    StreamFault,
    Trickle,
)
from portside.adapters.testing._openai_http import Handler, HTTPServer, RecordedRequest
from portside.domain._llm import FinishReason, ToolCall, Usage

__all__ = [
    "Behaviour",
    "Delay",
    "EchoKey",
    "HttpError",
    "KeepAliveForever",
    "OpenAITestServer",
    "RawBody",
    "RecordedRequest",
    "RedirectLoop",
    "Reply",
    "StreamFault",
    "Trickle",
]


@attrs.define
class OpenAITestServer(LLMScript):
    """An OpenAI-compatible server on ``127.0.0.1`` (a free port), in a thread. For tests.

    Use it as a context manager, or ``start()`` and ``stop()``. ``script()`` queues
    behaviours, one per request, in order; ``requests`` lists what arrived. When
    ``api_key`` is set, requests without ``Authorization: Bearer <api_key>`` get 401.
    """

    api_key: str | None = attrs.field(default=None, repr=False)
    stall_seconds: float = 30.0
    _queue: deque[Behaviour] = attrs.field(factory=deque, init=False)
    _flagged: dict[str, tuple[str, float]] = attrs.field(factory=dict, init=False, repr=False)
    _requests: list[RecordedRequest] = attrs.field(factory=list, init=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False)
    _stopping: threading.Event = attrs.field(factory=threading.Event, init=False, repr=False)
    _http: HTTPServer | None = attrs.field(default=None, init=False, repr=False)
    _thread: threading.Thread | None = attrs.field(default=None, init=False, repr=False)

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> Self:
        """Bind a free loopback port and serve in a daemon thread."""
        if self._http is not None:
            return self
        self._stopping.clear()
        http = HTTPServer(("127.0.0.1", 0), Handler)
        http.owner = self
        self._http = http
        self._thread = threading.Thread(
            target=http.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release stalled answers, stop serving and close the socket."""
        self._stopping.set()
        http, self._http = self._http, None
        if http is not None:
            http.shutdown()
            http.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port (the server must be started)."""
        if self._http is None:
            raise RuntimeError("the server is not running")
        return int(self._http.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1``, what an OpenAI client takes as ``base_url``."""
        return f"http://127.0.0.1:{self.port}/v1"

    # --- scripting -----------------------------------------------------------------

    def script(self, *behaviours: Behaviour) -> None:
        """Queue behaviours; each request takes the next one."""
        with self._lock:
            self._queue.extend(behaviours)

    def pending(self) -> int:
        """How many queued behaviours no request has taken yet."""
        with self._lock:
            return len(self._queue)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of every request received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        """Forget queued behaviours, recorded requests and moderation flags."""
        with self._lock:
            self._queue.clear()
            self._requests.clear()
            self._flagged.clear()

    # --- the LLM contract kit's LLMScript protocol -----------------------------------

    def reply(
        self,
        text: str = "",
        *,
        finish_reason: FinishReason | None = None,
        tool_calls: Sequence[ToolCall] = (),
        usage: Usage | None = None,
    ) -> None:
        """The next chat call answers this (``tool_calls``/``stop`` when not given)."""
        finish = finish_reason or ("tool_calls" if tool_calls else "stop")
        self.script(Reply(text, tuple(tool_calls), finish, usage))

    def fail(self, kind: str, *, retry_after: float | None = None) -> None:
        """The next call fails as ``kind`` (a key of the kit's ``FAILURE_KINDS``).

        Over HTTP: ``rate_limited`` is 429 with ``Retry-After``, ``quota_exceeded``
        429 ``insufficient_quota``, ``unavailable`` 503, ``unauthorized`` 401,
        ``content_filtered`` 400 ``content_filter``, and ``timed_out`` an answer held
        back until ``stop()`` or ``stall_seconds``, so the client's read timeout fires.
        Raises ``ValueError`` for an unknown kind.
        """
        if kind == "timed_out":
            self.script(Delay(self.stall_seconds))
            return
        if kind == "rate_limited":
            header = () if retry_after is None else (("Retry-After", f"{retry_after:g}"),)
            self.script(
                HttpError(429, "rate limit reached", "rate_limit_exceeded", "requests", header)
            )
            return
        errors = {
            "unavailable": HttpError(503, "overloaded", None, "server_error"),
            "unauthorized": HttpError(401, "invalid key", "invalid_api_key"),
            "quota_exceeded": HttpError(429, "quota", "insufficient_quota", "insufficient_quota"),
            "content_filtered": HttpError(400, "filtered", "content_filter"),
        }
        if kind not in errors:
            raise ValueError(f"unknown failure kind {kind!r}")
        self.script(errors[kind])

    def drop_stream_after(self, n: int, *, text: str = "the answer was cut short here") -> None:
        """The next chat call streams ``n`` deltas of ``text`` and ends with no finish reason.

        The SSE body ends cleanly (``[DONE]`` included): only the finish reason is
        missing. A non-streaming call gets a truncated JSON body instead.
        """
        if n < 0:
            raise ValueError("n must not be negative")
        self.script(StreamFault("truncated", after=n, reply=Reply(text)))

    def flag(self, word: str, category: str = "harassment", *, score: float = 0.9) -> None:
        """``/moderations`` flags any text holding ``word`` (any case) in ``category``.

        The same scripting as ``FakeLLM.flag``; unflagged categories score 0.
        """
        with self._lock:
            self._flagged[word.lower()] = (category, score)

    def received(self) -> int:
        """How many chat and embeddings requests arrived so far."""
        with self._lock:
            return len(self._requests)

    # --- used by the handler -------------------------------------------------------

    def _next(self) -> Behaviour | None:
        with self._lock:
            return self._queue.popleft() if self._queue else None

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _wait(self, seconds: float) -> None:
        # Waiting on the stop event lets stop() release a stalled answer at once.
        self._stopping.wait(seconds)

    def _stopping_now(self) -> bool:
        return self._stopping.is_set()

    def _flags(self) -> dict[str, tuple[str, float]]:
        with self._lock:
            return dict(self._flagged)


def main(argv: Sequence[str] | None = None) -> None:
    """Serve until interrupted, printing the base URL on the first line of stdout."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m portside.adapters.testing",
        description="A local OpenAI-compatible server for tests: it binds 127.0.0.1 on a"
        " free port, prints its base URL and answers deterministically until interrupted.",
    )
    parser.add_argument("--api-key", help="answer 401 to requests without this bearer key")
    args = parser.parse_args(argv)
    with OpenAITestServer(api_key=args.api_key) as server:
        print(server.base_url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
