"""Deterministic text mechanics of the fake LLM: tokens, deltas, cuts and embeddings.

Pure functions, so each one is checked on its own by property tests.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Sequence
from typing import Final

from portside.domain._llm import ChatMessage, ToolCall, ToolCallDelta

__all__ = [
    "ARGUMENT_FRAGMENT",
    "count_tokens",
    "cut_at_stop",
    "cut_to_tokens",
    "embed_text",
    "input_tokens",
    "split_deltas",
    "tool_call_deltas",
]

#: Characters of tool-call arguments per streamed fragment.
ARGUMENT_FRAGMENT: Final = 8

# Each chunk is the whitespace before a word plus the word; trailing whitespace is a
# chunk of its own. The chunks concatenate back to the text exactly.
_CHUNK: Final = re.compile(r"\s*\S+|\s+\Z")
_TOKEN: Final = re.compile(r"\S+")
_WORD: Final = re.compile(r"\w+")


def count_tokens(text: str | None) -> int:
    """Whitespace-separated tokens in ``text``: the fake's deterministic usage unit."""
    return len(text.split()) if text else 0


def input_tokens(messages: Iterable[ChatMessage]) -> int:
    """Tokens of every message's content and tool-call arguments."""
    total = 0
    for message in messages:
        total += count_tokens(message.content)
        total += sum(count_tokens(call.arguments) for call in message.tool_calls)
    return total


def split_deltas(text: str) -> list[str]:
    """``text`` as stream deltas, one word with its leading whitespace each."""
    return _CHUNK.findall(text)


def cut_to_tokens(text: str, limit: int) -> str | None:
    """``text`` cut after its ``limit``-th token, or ``None`` when it already fits."""
    for count, match in enumerate(_TOKEN.finditer(text), start=1):
        if count > limit:
            return text[: match.start()].rstrip()
    return None


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """``text`` up to the first occurrence of any non-empty stop sequence."""
    positions = [found for s in stop if s and (found := text.find(s)) >= 0]
    return text[: min(positions)] if positions else text


def tool_call_deltas(calls: Sequence[ToolCall]) -> list[ToolCallDelta]:
    """Each call as a head (id and name) followed by argument fragments, by index."""
    deltas: list[ToolCallDelta] = []
    for index, call in enumerate(calls):
        deltas.append(ToolCallDelta(index, call.id, call.name, ""))
        args = call.arguments
        deltas.extend(
            ToolCallDelta(index, arguments=args[start : start + ARGUMENT_FRAGMENT])
            for start in range(0, len(args), ARGUMENT_FRAGMENT)
        )
    return deltas


def _feature(model: str, feature: str, dimensions: int) -> tuple[int, float]:
    # blake2b, not hash(): Python's str hash is salted per process, and the vectors
    # must be the same in every run and on every machine.
    digest = hashlib.blake2b(
        feature.encode("utf-8", "surrogatepass"), digest_size=8, key=model.encode()[:64]
    ).digest()
    number = int.from_bytes(digest, "big")
    return number % dimensions, (1.0 if number >> 63 else -1.0)


def embed_text(text: str, model: str, dimensions: int) -> tuple[float, ...]:
    """A unit vector for ``text``: hashed bag of its lower-cased words.

    Texts sharing words share coordinates, so their cosine similarity is high; the
    same text always gets the same vector for the same model and dimensions. A text
    with no word characters hashes as one feature so it still gets a unit vector.
    """
    vector = [0.0] * dimensions
    words = _WORD.findall(text.lower()) or [text]
    for word in words:
        index, sign = _feature(model, word, dimensions)
        vector[index] += sign
    norm = math.sqrt(sum(x * x for x in vector))
    if norm == 0.0:
        # Words cancelled out exactly (possible with few dimensions): fall back to the
        # whole text, whose single feature cannot cancel.
        index, sign = _feature(model, text, dimensions)
        vector[index], norm = sign, 1.0
    return tuple(x / norm for x in vector)
