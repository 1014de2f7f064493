"""A local OpenAI-compatible HTTP server for tests: real HTTP on loopback, real SSE.

It speaks ``POST /v1/chat/completions`` (plain and ``stream=true``, with the usage-only
closing chunk when ``stream_options.include_usage`` is set) and ``POST /v1/embeddings``.
Tests queue behaviours (replies, tool calls, error statuses, delays, stalled, dropped,
malformed or truncated streams, malformed bodies) and read back every request the
server received, so retries and backoff are asserted from what really went over the
wire. With nothing queued it answers deterministically (the last user message, and
hashed bag-of-words embeddings), which is what the benchmarks use. It also implements
the LLM contract kit's ``LLMScript`` protocol (``reply``, ``fail``,
``drop_stream_after``, ``received``), so the kit can run an adapter against it.

For tests only: it binds 127.0.0.1, has no authentication beyond an optional bearer
check and keeps every request in memory. ``python -m adapters.testing.openai_server``
runs it in the foreground and prints its base URL.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

import attrs
import orjson

from adapters.testing._openai_answers import (
    Behaviour,
    Delay,
    HttpError,
    RawBody,
    Reply,
    StreamFault,
    chat_body,
    closing_chunks,
    content_chunks,
    default_reply,
    embeddings_body,
    error_body,
    sse_events,
)
from adapters.testing.llm_kit import LLMScript
from domain.llm import FinishReason, ToolCall, Usage

__all__ = [
    "Behaviour",
    "Delay",
    "HttpError",
    "OpenAITestServer",
    "RawBody",
    "RecordedRequest",
    "Reply",
    "StreamFault",
]


@attrs.frozen
class RecordedRequest:
    """One request as received: ``body`` is the parsed JSON, ``headers`` lower-cased."""

    path: str
    body: Mapping[str, Any] = attrs.field(hash=False)
    headers: Mapping[str, str] = attrs.field(hash=False, repr=False)

    @property
    def streamed(self) -> bool:
        """Whether the client asked for an SSE stream."""
        return bool(self.body.get("stream"))


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    owner: OpenAITestServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore clients that hung up (timeouts do that on purpose); report the rest."""
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keeps connections alive, as real servers do and as the SDK expects.
    protocol_version = "HTTP/1.1"
    # Headers, body and each SSE event are separate small writes: without TCP_NODELAY,
    # Nagle's algorithm and delayed ACKs add ~40 ms to every answer.
    disable_nagle_algorithm = True
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: test output is not the place for an access log."""

    def do_POST(self) -> None:
        """Answer a chat or embeddings request with the next scripted behaviour."""
        owner = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            self._json(400, error_body(HttpError(400, "request body is not a JSON object")))
            return
        path = self.path.split("?", 1)[0]
        headers = {name.lower(): value for name, value in self.headers.items()}
        owner._record(RecordedRequest(path, body, headers))
        if owner.api_key is not None and self.headers.get("Authorization") != (
            f"Bearer {owner.api_key}"
        ):
            self._json(401, error_body(HttpError(401, "bad key", code="invalid_api_key")))
            return
        if not path.endswith(("/chat/completions", "/embeddings")):
            self._json(404, error_body(HttpError(404, f"no route {path}")))
            return
        behaviour: Behaviour | None = owner._next()
        if isinstance(behaviour, Delay):
            owner._wait(behaviour.seconds)
            behaviour = behaviour.then
        if isinstance(behaviour, HttpError):
            self._json(behaviour.status, error_body(behaviour), behaviour.headers)
        elif isinstance(behaviour, RawBody):
            self._send(behaviour.status, behaviour.content_type, behaviour.body)
        elif path.endswith("/embeddings"):
            self._embeddings(body, behaviour)
        else:
            self._chat(body, behaviour)

    # --- answers -------------------------------------------------------------------

    def _embeddings(self, body: Mapping[str, Any], behaviour: Behaviour | None) -> None:
        if behaviour is not None:
            message = f"{type(behaviour).__name__} was scripted but an embeddings call came"
            self._json(500, error_body(HttpError(500, message, type="server_error")))
            return
        texts = body.get("input")
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            self._json(400, error_body(HttpError(400, "input must be strings")))
            return
        dimensions = body.get("dimensions")
        size = dimensions if isinstance(dimensions, int) and dimensions > 0 else 8
        model = body.get("model")
        self._json(200, embeddings_body(texts, model if isinstance(model, str) else "", size))

    def _chat(self, body: Mapping[str, Any], behaviour: Reply | StreamFault | None) -> None:
        fault = behaviour if isinstance(behaviour, StreamFault) else None
        reply = behaviour if isinstance(behaviour, Reply) else None
        if fault is not None:
            reply = fault.reply
        reply = reply or default_reply(body)
        if not body.get("stream"):
            if fault is None:
                self._json(200, chat_body(reply, body))
            else:
                self._broken_body(fault, orjson.dumps(chat_body(reply, body)))
            return
        self._start_stream()
        if fault is None:
            for event in sse_events(reply, body):
                self._event(orjson.dumps(event))
            self._event(b"[DONE]")
            self._end_stream()
            return
        for event in content_chunks(reply, body)[: fault.after + 1]:  # role chunk + after
            self._event(orjson.dumps(event))
        if fault.kind == "stall":
            self.server.owner._wait(self.server.owner.stall_seconds)
            self._drop()
        elif fault.kind == "drop":
            self._drop()
        elif fault.kind == "malformed":
            self._event(b'{"id": "chatcmpl-local", "choices": [')
            self._end_stream()
        else:  # truncated: a clean end with no finish reason, as a cut proxy leaves it
            closing = closing_chunks(reply, body, include_usage=True)[1:]
            for event in closing:
                self._event(orjson.dumps(event))
            self._event(b"[DONE]")
            self._end_stream()

    def _broken_body(self, fault: StreamFault, whole: bytes) -> None:
        if fault.kind == "stall":
            self.server.owner._wait(self.server.owner.stall_seconds)
            self._drop()
        elif fault.kind == "drop":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(whole)))
            self.end_headers()
            self.wfile.write(whole[: len(whole) // 2])
            self._drop()
        else:
            self._send(200, "application/json", whole[: len(whole) // 2])

    # --- wire ----------------------------------------------------------------------

    def _send(
        self,
        status: int,
        content_type: str,
        payload: bytes,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _json(
        self, status: int, payload: object, headers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        self._send(status, "application/json", orjson.dumps(payload), headers)

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _event(self, data: bytes) -> None:
        frame = b"data: " + data + b"\n\n"
        # One write per event, as a server flushing each token does.
        self.wfile.write(b"%x\r\n%s\r\n" % (len(frame), frame))

    def _end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):  # the client may already have gone
            self.connection.shutdown(socket.SHUT_RDWR)


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
    _requests: list[RecordedRequest] = attrs.field(factory=list, init=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False)
    _stopping: threading.Event = attrs.field(factory=threading.Event, init=False, repr=False)
    _http: _HTTPServer | None = attrs.field(default=None, init=False, repr=False)
    _thread: threading.Thread | None = attrs.field(default=None, init=False, repr=False)

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> Self:
        """Bind a free loopback port and serve in a daemon thread."""
        if self._http is not None:
            return self
        self._stopping.clear()
        http = _HTTPServer(("127.0.0.1", 0), _Handler)
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
        """Forget queued behaviours and recorded requests."""
        with self._lock:
            self._queue.clear()
            self._requests.clear()

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


def main() -> None:
    """Serve until interrupted, printing the base URL on the first line of stdout."""
    with OpenAITestServer() as server:
        print(server.base_url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
