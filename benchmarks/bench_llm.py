"""Rows ``llm_complete``, ``llm_stream``, ``llm_embed``: OpenAILLM vs the raw openai client.

Row ``llm_fallback``: a ``FallbackLLM`` whose first member answers, against calling
that member directly (the chain's own cost per call).

Both sides call the same local OpenAI-compatible server, which runs in a child process
so its CPU time does not share the benchmark's interpreter lock. The raw client is
configured like the adapter's (no SDK retries, same timeout) and does the same work:
for embeddings it batches the 10 000 texts itself at the same batch size.
"""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx2
import openai

from benchmarks._harness import Case, SkipBenchmark
from portside.adapters.llm_gateway import FallbackLLM
from portside.adapters.openai import OpenAILLM
from portside.adapters.resilience import RetryPolicy
from portside.domain import ChatMessage, ChatRequest

NAMES = ("llm_complete", "llm_stream", "llm_embed", "llm_fallback")

KEY = "sk-bench"
WORDS = 50  # the server echoes the user message: one delta per word
EMBED_TEXTS = 10_000
EMBED_BATCH = 2048
EMBED_DIMENSIONS = 64


@contextmanager
def _server() -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "portside.adapters.testing._openai_server"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        if not url.startswith("http://"):
            raise SkipBenchmark("llm: the local OpenAI-compatible server did not start")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextmanager
def cases(quick: bool) -> Iterator[list[Case]]:
    with _server() as url:
        requests_seen = 0

        def count(request: httpx2.Request) -> None:
            nonlocal requests_seen
            requests_seen += 1

        llm = OpenAILLM(
            api_key=KEY,
            base_url=url,
            model="bench-chat",
            embedding_model="bench-embed",
            timeout=30.0,
            retry=RetryPolicy(attempts=1),
            embed_batch_size=EMBED_BATCH,
            http_client=httpx2.Client(event_hooks={"request": [count]}),
        )
        raw = openai.OpenAI(api_key=KEY, base_url=url, max_retries=0, timeout=30.0)
        words = " ".join(f"word{i}" for i in range(WORDS))
        request = ChatRequest((ChatMessage.user(words),))
        messages: list[Any] = [{"role": "user", "content": words}]
        texts = [f"short text number {i}" for i in range(EMBED_TEXTS)]

        def ours_complete() -> object:
            return llm.complete(request).unwrap()

        def raw_complete() -> object:
            answer = raw.chat.completions.create(model="bench-chat", messages=messages)
            return answer.choices[0].message.content

        def ours_stream() -> object:
            deltas = 0
            for event in llm.stream(request):
                event.unwrap()
                deltas += 1
            return deltas

        def raw_stream() -> object:
            deltas = 0
            chunks = raw.chat.completions.create(
                model="bench-chat",
                messages=messages,
                stream=True,
                stream_options={"include_usage": True},
            )
            for chunk in chunks:
                if chunk.choices and chunk.choices[0].delta.content:
                    deltas += 1
            return deltas

        def ours_embed() -> object:
            return llm.embed(texts, dimensions=EMBED_DIMENSIONS).unwrap()

        def raw_embed() -> object:
            vectors: list[list[float]] = []
            for start in range(0, len(texts), EMBED_BATCH):
                answer = raw.embeddings.create(
                    input=texts[start : start + EMBED_BATCH],
                    model="bench-embed",
                    encoding_format="float",
                    dimensions=EMBED_DIMENSIONS,
                )
                vectors.extend(item.embedding for item in answer.data)
            return vectors

        chain = FallbackLLM([llm, raw_backup := OpenAILLM(api_key=KEY, base_url=url)])

        def ours_fallback() -> object:
            return chain.complete(request).unwrap()

        # The embed row's claim: ceil(n / batch) HTTP requests, checked before timing.
        requests_seen = 0
        ours_embed()
        expected = math.ceil(EMBED_TEXTS / EMBED_BATCH)
        if requests_seen != expected:
            raise AssertionError(f"llm_embed sent {requests_seen} requests, not {expected}")
        note = f"{expected} HTTP requests per {EMBED_TEXTS} texts (batch {EMBED_BATCH})"
        try:
            yield [
                Case("llm_complete", ours_complete, raw_complete, goal=0.95, unit="requests/s"),
                Case(
                    "llm_stream",
                    ours_stream,
                    raw_stream,
                    goal=0.95,
                    unit="deltas/s",
                    ops=WORDS,
                ),
                Case(
                    "llm_embed",
                    ours_embed,
                    raw_embed,
                    goal=0.95,
                    unit="texts/s",
                    ops=EMBED_TEXTS,
                    note=note,
                ),
                Case("llm_fallback", ours_fallback, ours_complete, goal=0.95, unit="requests/s"),
            ]
        finally:
            llm.close()
            raw.close()
            raw_backup.close()
