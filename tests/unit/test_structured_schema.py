"""JSON schemas generated from attrs classes, and the checker that holds replies to them."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from portside.adapters.structured import SchemaError, json_schema
from portside.adapters.structured._json_schema import first_problem


class Level(enum.Enum):
    LOW = 1
    HIGH = 2


@attrs.frozen
class Scalars:
    s: str
    i: int
    f: float
    b: bool
    n: None
    lit: Literal["a", "b"]
    level: Level
    opt: int | None = None


def test_scalars_map_to_json_types() -> None:
    """Each scalar, Literal, Enum and Optional field gets its JSON schema."""
    assert json_schema(Scalars) == {
        "type": "object",
        "properties": {
            "s": {"type": "string"},
            "i": {"type": "integer"},
            "f": {"type": "number"},
            "b": {"type": "boolean"},
            "n": {"type": "null"},
            "lit": {"enum": ["a", "b"], "type": "string"},
            "level": {"enum": [1, 2], "type": "integer"},
            "opt": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
        },
        "required": ["s", "i", "f", "b", "n", "lit", "level", "opt"],
        "additionalProperties": False,
    }


def test_lenient_schema_requires_only_fields_without_default() -> None:
    """With strict=False a field with a default is optional."""
    assert json_schema(Scalars, strict=False)["required"] == [
        "s",
        "i",
        "f",
        "b",
        "n",
        "lit",
        "level",
    ]


@attrs.frozen
class Point:
    x: float = attrs.field(metadata={"description": "metres east"})
    y: float = 0.0


@attrs.frozen
class Shape:
    name: str
    points: list[Point]
    pair: tuple[int, str]
    many: tuple[Point, ...]
    seq: Sequence[int]
    labels: Mapping[str, int]
    either: int | str
    centre: Point | None = None
    hidden: int = attrs.field(default=0, init=False)


def test_containers_and_nested_classes() -> None:
    """Lists, tuples, mappings and unions nest; attrs classes go to $defs once."""
    schema = json_schema(Shape)
    point = {"$ref": "#/$defs/Point"}
    props = schema["properties"]
    assert props["points"] == {"type": "array", "items": point}
    assert props["pair"] == {
        "type": "array",
        "prefixItems": [{"type": "integer"}, {"type": "string"}],
        "minItems": 2,
        "maxItems": 2,
    }
    assert props["many"] == {"type": "array", "items": point}
    assert props["seq"] == {"type": "array", "items": {"type": "integer"}}
    assert props["labels"] == {"type": "object", "additionalProperties": {"type": "integer"}}
    assert props["either"] == {"anyOf": [{"type": "integer"}, {"type": "string"}]}
    assert props["centre"] == {"anyOf": [point, {"type": "null"}]}
    assert "hidden" not in props
    assert schema["$defs"]["Point"]["properties"]["x"] == {
        "type": "number",
        "description": "metres east",
    }


@attrs.frozen
class Tree:
    label: str
    children: list[Tree]
    parent: Node | None = None


@attrs.frozen
class Node:
    tree: Tree


def test_recursive_classes_refer_back() -> None:
    """A class that contains itself refers to the root; mutual recursion uses $defs."""
    schema = json_schema(Tree)
    assert schema["properties"]["children"] == {"type": "array", "items": {"$ref": "#"}}
    assert schema["$defs"]["Node"]["properties"]["tree"] == {"$ref": "#"}
    leaf = {"label": "b", "children": [], "parent": None}
    value = {"label": "a", "children": [leaf], "parent": None}
    assert first_problem(schema, {**value, "parent": {"tree": value}}) is None
    broken = {**value, "children": [{"label": 3, "children": [], "parent": None}]}
    assert first_problem(schema, broken) == "$.children[0].label: expected string, got integer"


def test_same_named_classes_get_distinct_definitions() -> None:
    """Two nested classes with one name are both kept, under different names."""

    def make() -> type:
        @attrs.frozen
        class Part:
            a: int

        return Part

    first, second = make(), make()

    # make_class: local annotations would be strings this module cannot resolve.
    both = attrs.make_class(
        "Both", {"one": attrs.field(type=first), "two": attrs.field(type=second)}
    )

    schema = json_schema(both)
    assert sorted(schema["$defs"]) == ["Part", "Part2"]


@attrs.frozen
class Bad:
    when: complex


@attrs.frozen
class BadKeys:
    m: dict[int, str]


@attrs.frozen
class BadEnum:
    e: Literal[b"x"]


@pytest.mark.parametrize(
    ("cls", "words"),
    [
        (Bad, "Bad.when: no JSON schema for type"),
        (BadKeys, "BadKeys.m: JSON object keys are strings"),
        (BadEnum, "enum values must be JSON scalars"),
        (dict, "is not an attrs class"),
    ],
)
def test_unsupported_types_are_named(cls: type, words: str) -> None:
    """A type with no JSON schema raises SchemaError naming the field."""
    with pytest.raises(SchemaError, match=words):
        json_schema(cls)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({"s": "x", "i": True}, "$.i: expected integer, got boolean"),
        ({"s": "x", "i": 1.5}, "$.i: expected integer, got number"),
        ({"s": "x", "i": 1, "f": "1"}, "$.f: expected number, got string"),
        ({"s": "x", "i": 1, "f": 1, "b": 1}, "$.b: expected boolean, got integer"),
        ({"s": "x", "i": 1, "f": 1, "b": True, "n": None, "lit": "c"}, "$.lit: must be one of"),
        ([], "$: expected object, got array"),
    ],
)
def test_checker_names_the_first_problem(value: Any, problem: str) -> None:
    """The checker reports the first wrong field, in field order, with its path."""
    found = first_problem(json_schema(Scalars), value)
    assert found is not None
    assert found.startswith(problem)


def test_checker_accepts_integral_floats_and_checks_tuple_length() -> None:
    """3.0 is an integer in JSON; a fixed tuple needs exactly its items."""
    schema = json_schema(Shape)
    good: dict[str, Any] = {
        "name": "n",
        "points": [{"x": 1, "y": 2.5}],
        "pair": [3.0, "s"],
        "many": [],
        "seq": [],
        "labels": {"a": 1},
        "either": "e",
        "centre": None,
    }
    assert first_problem(schema, good) is None
    assert first_problem(schema, {**good, "pair": [1]}) == "$.pair: expected 2 to 2 items, got 1"
    assert first_problem(schema, {**good, "labels": {"a": "b"}}) == (
        "$.labels.a: expected integer, got string"
    )


@given(st.integers() | st.text() | st.booleans() | st.none() | st.floats(allow_nan=False))
def test_checker_never_raises_on_any_json(value: object) -> None:
    """Any JSON value is judged with a message or None, never an exception."""
    result = first_problem(json_schema(Shape), value)
    assert result is None or result.startswith("$")
