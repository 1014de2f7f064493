"""The fake LLM's text mechanics: deltas, cuts, tool-call fragments and embeddings."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st
from returns.result import Success

from portside.adapters.memory import FakeLLM
from portside.adapters.memory._llm_text import (
    count_tokens,
    cut_at_stop,
    cut_to_tokens,
    embed_text,
    split_deltas,
    tool_call_deltas,
)
from portside.adapters.testing import collect_stream
from portside.domain import ChatDelta, ToolCall, Usage

texts = st.text(st.characters(codec="utf-8"), max_size=60)


def _cosine(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


@given(texts)
def test_deltas_concatenate_to_the_text(text: str) -> None:
    """The deltas of any text join back to it exactly, each one non-empty."""
    chunks = split_deltas(text)
    assert "".join(chunks) == text
    assert all(chunks)
    assert len([c for c in chunks if c.strip()]) == count_tokens(text)


@given(texts, st.integers(0, 12))
def test_cut_to_tokens_keeps_a_prefix_of_the_limit(text: str, limit: int) -> None:
    """A cut text is a prefix with exactly ``limit`` tokens; a fitting text is not cut."""
    cut = cut_to_tokens(text, limit)
    if count_tokens(text) <= limit:
        assert cut is None
    else:
        assert cut is not None
        assert text.startswith(cut)
        assert count_tokens(cut) == limit


@given(texts, st.lists(st.text(max_size=3), max_size=3))
def test_cut_at_stop_never_contains_a_stop(text: str, stop: list[str]) -> None:
    """The answer is a prefix of the text that contains no stop sequence."""
    cut = cut_at_stop(text, stop)
    assert text.startswith(cut)
    assert not any(s and s in cut for s in stop)


@given(st.lists(st.builds(ToolCall, st.text(min_size=1), st.text(min_size=1), texts), max_size=3))
def test_tool_call_fragments_join_back(calls: list[ToolCall]) -> None:
    """Fragments of each call, joined by index, give the calls back."""
    deltas = [ChatDelta(tool_calls=(fragment,)) for fragment in tool_call_deltas(calls)]
    deltas.append(ChatDelta(finish_reason="tool_calls", usage=Usage()))
    folded = collect_stream(Success(delta) for delta in deltas)
    assert folded.completion is not None
    assert folded.completion.tool_calls == tuple(calls)


@given(st.text(min_size=1, max_size=40), st.integers(1, 64))
def test_embeddings_are_unit_vectors_and_deterministic(text: str, dimensions: int) -> None:
    """Every text gets a finite unit vector of the requested length, the same each time."""
    vector = embed_text(text, "m", dimensions)
    assert len(vector) == dimensions
    assert math.isclose(math.sqrt(sum(x * x for x in vector)), 1.0, rel_tol=1e-9)
    assert embed_text(text, "m", dimensions) == vector


def test_texts_sharing_words_are_close() -> None:
    """Texts that share words are closer than texts that share none."""
    fake = FakeLLM(dimensions=256)
    a, b, c = (
        fake.embed(
            ["the cat sat on the mat", "a cat sat on a mat", "stock prices rose sharply today"]
        )
        .unwrap()
        .vectors
    )
    assert _cosine(a, b) > 0.45  # four shared words of six: 4 / (sqrt(8) * sqrt(8))
    assert _cosine(a, b) > _cosine(a, c) + 0.3
    assert _cosine(a, a) > 0.999


def test_embeddings_follow_model_dimensions_and_usage() -> None:
    """The requested model and dimensions are honoured; usage counts input words."""
    fake = FakeLLM(embedding_model="e1", dimensions=16)
    default = fake.embed(["one two", "three"]).unwrap()
    assert (default.model, default.dimensions, default.usage) == ("e1", 16, Usage(3, 0))
    other = fake.embed(["one two"], model="e2", dimensions=5).unwrap()
    assert (other.model, other.dimensions) == ("e2", 5)
    assert fake.embed(["one two"], model="e2", dimensions=5).unwrap().vectors == other.vectors
    assert fake.embed(["one two"], dimensions=16).unwrap().vectors[0] == default.vectors[0]
