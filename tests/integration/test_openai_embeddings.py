"""The OpenAI adapter's embeddings: floats, batching, order and shape checks."""

from __future__ import annotations

import math

import pytest
from returns.result import Failure

from portside.adapters.testing import OpenAITestServer, RawBody
from portside.domain import InvalidRequest
from tests.integration.conftest import MakeLLM

pytestmark = pytest.mark.timeout(20)


@pytest.mark.parametrize(("count", "batch"), [(1, 4), (4, 4), (5, 4), (9, 2), (10, 3), (7, 100)])
def test_batches_are_ceil_n_over_batch(
    make_llm: MakeLLM, openai_server: OpenAITestServer, count: int, batch: int
) -> None:
    """Texts take ceil(n / batch) HTTP requests and come back in input order."""
    texts = [f"text number {i}" for i in range(count)]
    embeddings = make_llm(embed_batch_size=batch).embed(texts, dimensions=6).unwrap()
    assert len(openai_server.requests) == math.ceil(count / batch)
    sent = [t for r in openai_server.requests for t in r.body["input"]]
    assert sent == texts
    assert len(embeddings.vectors) == count
    assert embeddings.dimensions == 6
    single = make_llm().embed([texts[-1]], dimensions=6).unwrap()
    assert embeddings.vectors[-1] == single.vectors[0], "order is kept across batches"


def test_embeddings_are_requested_as_floats(
    make_llm: MakeLLM, openai_server: OpenAITestServer
) -> None:
    """The request asks for floats, the chosen model and dimensions."""
    embeddings = make_llm().embed(["a cat", "a dog"], model="emb-2", dimensions=5).unwrap()
    body = openai_server.requests[0].body
    assert body["encoding_format"] == "float"
    assert body["model"] == "emb-2"
    assert body["dimensions"] == 5
    assert embeddings.model == "emb-2"
    assert all(isinstance(x, float) for v in embeddings.vectors for x in v)


def test_default_model_and_no_dimensions(
    make_llm: MakeLLM, openai_server: OpenAITestServer
) -> None:
    """Without model or dimensions the adapter's model is used and none is sent."""
    embeddings = make_llm().embed(["hello"]).unwrap()
    body = openai_server.requests[0].body
    assert body["model"] == "local-embed"
    assert "dimensions" not in body
    assert embeddings.dimensions > 0


def test_usage_sums_over_batches(make_llm: MakeLLM, openai_server: OpenAITestServer) -> None:
    """Input tokens of every batch are added up."""
    texts = ["one two", "three", "four five six"]
    embeddings = make_llm(embed_batch_size=1).embed(texts).unwrap()
    assert embeddings.usage.input_tokens == 6
    assert len(openai_server.requests) == 3


@pytest.mark.parametrize(
    ("texts", "kwargs"),
    [
        ([], {}),
        (["ok", ""], {}),
        (["x" * 101], {}),
        (["ok"], {"model": " "}),
        (["ok"], {"dimensions": 0}),
    ],
    ids=["no-texts", "empty-text", "too-long", "blank-model", "zero-dimensions"],
)
def test_bad_embeddings_input_sends_nothing(
    make_llm: MakeLLM, openai_server: OpenAITestServer, texts: list[str], kwargs: dict[str, object]
) -> None:
    """Bad input is InvalidRequest before any request is sent."""
    result = make_llm(max_embed_text_chars=100).embed(texts, **kwargs)  # type: ignore[arg-type]
    assert isinstance(result, Failure)
    assert isinstance(result.failure(), InvalidRequest)
    assert openai_server.requests == []


def test_batch_size_must_be_positive(make_llm: MakeLLM) -> None:
    """A batch size below one is a configuration error at construction."""
    with pytest.raises(ValueError, match="embed_batch_size"):
        make_llm(embed_batch_size=0)


def test_whole_numbers_in_vectors_are_floats(
    make_llm: MakeLLM, openai_server: OpenAITestServer
) -> None:
    """A server writing 0 instead of 0.0 still gives float vectors."""
    openai_server.script(
        RawBody(b'{"data": [{"index": 0, "embedding": [0, 1.5, -2]}], "model": "m"}')
    )
    vector = make_llm().embed(["x"]).unwrap().vectors[0]
    assert vector == (0.0, 1.5, -2.0)
    assert all(type(x) is float for x in vector)
