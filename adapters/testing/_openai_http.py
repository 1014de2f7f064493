"""The HTTP side of the local OpenAI-compatible test server: routes, bodies and SSE frames.

``OpenAITestServer`` (in ``openai_server``) owns the scripting and the lifecycle; this
module only reads requests and writes answers, asking its owner for the next behaviour.
"""

from __future__ import annotations

import contextlib
import socket
import sys
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

import attrs
import orjson

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
    chat_body,
    closing_chunks,
    content_chunks,
    default_reply,
    embeddings_body,
    error_body,
    sse_events,
)

__all__ = ["HTTPServer", "Handler", "Owner", "RecordedRequest"]


# The one model the server lists; it answers any model name it is asked for.
_MODEL: dict[str, Any] = {"id": "test-model", "object": "model", "owned_by": "portside"}


class Owner(Protocol):
    """What the handler asks of the server that owns it (``OpenAITestServer``)."""

    api_key: str | None
    stall_seconds: float

    def _record(self, request: RecordedRequest) -> None: ...

    def _next(self) -> Behaviour | None: ...

    def _wait(self, seconds: float) -> None: ...

    def _stopping_now(self) -> bool: ...

    def _flags(self) -> dict[str, tuple[str, float]]: ...


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


class HTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that knows its owner and lets hung-up clients go quietly."""

    daemon_threads = True
    block_on_close = False
    owner: Owner

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore clients that hung up (timeouts do that on purpose); report the rest."""
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    """Answers one connection's requests with the owner's scripted behaviours."""

    # HTTP/1.1 keeps connections alive, as real servers do and as the SDK expects.
    protocol_version = "HTTP/1.1"
    # Headers, body and each SSE event are separate small writes: without TCP_NODELAY,
    # Nagle's algorithm and delayed ACKs add ~40 ms to every answer.
    disable_nagle_algorithm = True
    server: HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: test output is not the place for an access log."""

    def do_GET(self) -> None:
        """``GET /v1/models``: the model list, behind the same key check (health probes).

        A GET is not recorded and takes no scripted behaviour: it generates nothing.
        """
        owner = self.server.owner
        path = self.path.split("?", 1)[0]
        if owner.api_key is not None and self.headers.get("Authorization") != (
            f"Bearer {owner.api_key}"
        ):
            self._json(401, error_body(HttpError(401, "bad key", code="invalid_api_key")))
        elif path.endswith("/models"):
            self._json(200, {"object": "list", "data": [_MODEL]})
        else:
            self._json(404, error_body(HttpError(404, f"no route {path}")))

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
        path, _, query = self.path.partition("?")
        headers = {name.lower(): value for name, value in self.headers.items()}
        owner._record(RecordedRequest(path, body, headers))
        if "loop=" in query:  # a hop of a RedirectLoop: it takes nothing from the queue
            self._redirect(path, 307)
            return
        if owner.api_key is not None and self.headers.get("Authorization") != (
            f"Bearer {owner.api_key}"
        ):
            self._json(401, error_body(HttpError(401, "bad key", code="invalid_api_key")))
            return
        if not path.endswith(("/chat/completions", "/embeddings", "/moderations")):
            self._json(404, error_body(HttpError(404, f"no route {path}")))
            return
        behaviour: Behaviour | None = owner._next()
        if isinstance(behaviour, Delay):
            owner._wait(behaviour.seconds)
            behaviour = behaviour.then
        if isinstance(behaviour, HttpError):
            self._json(behaviour.status, error_body(behaviour), behaviour.headers)
        elif isinstance(behaviour, RawBody):
            self._send(behaviour.status, behaviour.content_type, behaviour.body, behaviour.headers)
        elif isinstance(behaviour, RedirectLoop):
            self._redirect(path, behaviour.status)
        elif isinstance(behaviour, EchoKey):
            said = f"Incorrect API key provided: {self.headers.get('Authorization')}"
            self._json(behaviour.status, error_body(HttpError(behaviour.status, said)))
        elif isinstance(behaviour, KeepAliveForever):
            self._keep_alive(bool(body.get("stream")), behaviour.interval)
        elif isinstance(behaviour, Trickle):
            self._trickle(body, behaviour)
        elif path.endswith("/embeddings"):
            self._embeddings(body, behaviour)
        elif path.endswith("/moderations"):
            self._moderations(body)
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

    def _moderations(self, body: Mapping[str, Any]) -> None:
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else texts
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            self._json(400, error_body(HttpError(400, "input must be strings")))
            return
        flags = self.server.owner._flags()
        results = []
        for text in texts:
            hits = {c: s for w, (c, s) in flags.items() if w in text.lower()}
            results.append(
                {
                    "flagged": bool(hits),
                    "categories": dict.fromkeys(hits, True) | {"violence": "violence" in hits},
                    "category_scores": hits | {"violence": hits.get("violence", 0.0)},
                }
            )
        model = body.get("model")
        self._json(200, {"id": "modr-local", "model": model or "", "results": results})

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
            self._done()
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
            self._done()

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

    def _redirect(self, path: str, status: int) -> None:
        self.send_response(status)
        self.send_header("Location", f"{path}?loop=1")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _keep_alive(self, streamed: bool, interval: float) -> None:
        owner = self.server.owner
        if streamed:
            self._start_stream()
        else:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
        beat = b": keep-alive\n\n" if streamed else b" "
        try:
            while not owner._stopping_now():
                self.wfile.write(b"%x\r\n%s\r\n" % (len(beat), beat))
                self.wfile.flush()
                owner._wait(interval)
        except OSError:
            pass  # the client gave up, which is the point
        self._drop()

    def _trickle(self, body: Mapping[str, Any], trickle: Trickle) -> None:
        owner = self.server.owner
        reply = trickle.reply or default_reply(body)
        streamed = bool(body.get("stream"))
        if streamed:
            payload = b"".join(
                b"data: " + orjson.dumps(event) + b"\n\n" for event in sse_events(reply, body)
            )
            payload += b"data: [DONE]\n\n"
            self._start_stream()
        else:
            payload = orjson.dumps(chat_body(reply, body))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
        try:
            for index in range(len(payload)):
                if owner._stopping_now():
                    break
                self.wfile.write(b"1\r\n%s\r\n" % payload[index : index + 1])
                self.wfile.flush()
                owner._wait(trickle.interval)
            else:
                self._end_stream()
                return
        except OSError:
            pass
        self._drop()

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

    def _done(self) -> None:
        # [DONE] and the end of the chunked body in one write: a client that stops
        # reading at [DONE] then finds the body complete and keeps the connection.
        frame = b"data: [DONE]\n\n"
        self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(frame), frame))

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):  # the client may already have gone
            self.connection.shutdown(socket.SHUT_RDWR)
