"""Row ``codec``: codec encode+decode of an attrs value vs hand-written orjson + attrs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import attrs
import orjson

from benchmarks._harness import Case
from portside.adapters.codec import Codec
from portside.domain import Completion, ToolCall, Usage

NAMES = ("codec",)


@contextmanager
def cases(quick: bool) -> Iterator[list[Case]]:
    codec = Codec()
    value = Completion(
        text="The capital of France is Paris." * 4,
        finish_reason="tool_calls",
        tool_calls=(ToolCall("call_1", "lookup", '{"city": "Paris"}'),),
        usage=Usage(120, 48, 64),
        model="gpt-4o-mini",
    )

    def ours() -> object:
        return codec.decode(codec.encode(value).unwrap(), Completion).unwrap()

    def baseline() -> object:
        # The hand-written way: asdict, dumps, loads, rebuild the nested values.
        raw = orjson.loads(orjson.dumps(attrs.asdict(value)))
        return Completion(
            text=raw["text"],
            finish_reason=raw["finish_reason"],
            tool_calls=tuple(ToolCall(**c) for c in raw["tool_calls"]),
            usage=Usage(**raw["usage"]),
            model=raw["model"],
            cache=None,
        )

    yield [Case("codec", ours, baseline, goal=0.7, unit="round trips/s")]
