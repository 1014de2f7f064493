"""JSON schemas for attrs classes, and a checker for the subset of JSON Schema they use.

The generator covers what structured output needs: ``str``, ``int``, ``float``,
``bool``, ``None``, ``Literal``, ``Enum`` (by value), ``list``/``Sequence``/``tuple``,
``dict[str, X]``, ``X | None`` and other unions, and nested (even recursive) attrs
classes, which go to ``$defs``. Strict schemas (OpenAI's structured-output mode) list
every field as required and forbid extra properties.

The checker exists because cattrs is lenient on purpose (it turns ``"3"`` into ``3``
and ``"abc"`` into ``["a", "b", "c"]``): a model's reply must be checked against the
schema it was given before cattrs builds the class, and the first problem, with its
JSON path, is what the model is told when it is asked again.
"""

from __future__ import annotations

import collections.abc as cabc
import enum
import re
import types
import typing
from typing import Any, Final

import attrs

__all__ = ["SchemaError", "first_problem", "json_schema"]

_SCALARS: Final[dict[type, str]] = {
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    type(None): "null",
}
_SEQUENCES: Final = (list, tuple, cabc.Sequence, cabc.MutableSequence)
_MAPPINGS: Final = (dict, cabc.Mapping, cabc.MutableMapping)


class SchemaError(TypeError):
    """A type the schema generator cannot describe; the message names it and where."""


class _Builder:
    def __init__(self, root: type, *, strict: bool) -> None:
        self.root = root
        self.strict = strict
        self.defs: dict[str, dict[str, Any]] = {}
        self.names: dict[type, str] = {}

    def object_schema(self, cls: type) -> dict[str, Any]:
        try:
            hints = typing.get_type_hints(cls)
        except (NameError, TypeError) as exc:
            raise SchemaError(f"cannot resolve the annotations of {cls.__name__}: {exc}") from exc
        properties: dict[str, Any] = {}
        required: list[str] = []
        for field in attrs.fields(cls):
            if not field.init:
                continue
            where = f"{cls.__name__}.{field.name}"
            schema = self.schema_of(hints.get(field.name, field.type), where)
            description = field.metadata.get("description")
            if isinstance(description, str):
                schema = {**schema, "description": description}
            properties[field.name] = schema
            if self.strict or field.default is attrs.NOTHING:
                required.append(field.name)
        return {
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": False,
        }

    def reference(self, cls: type) -> dict[str, Any]:
        if cls is self.root:
            return {"$ref": "#"}
        if cls not in self.names:
            name = re.sub(r"[^A-Za-z0-9_-]", "_", cls.__name__)
            taken = set(self.names.values())
            unique, count = name, 1
            while unique in taken:
                count += 1
                unique = f"{name}{count}"
            self.names[cls] = unique
            self.defs[unique] = {}  # placeholder first: a recursive field refers back here
            self.defs[unique] = self.object_schema(cls)
        return {"$ref": f"#/$defs/{self.names[cls]}"}

    def schema_of(self, tp: Any, where: str) -> dict[str, Any]:
        if tp is None or tp is type(None):
            return {"type": "null"}
        if isinstance(tp, type) and tp in _SCALARS:
            return {"type": _SCALARS[tp]}
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return _enum_schema([member.value for member in tp], where)
        if isinstance(tp, type) and attrs.has(tp):
            return self.reference(tp)
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin is typing.Literal:
            return _enum_schema(list(args), where)
        if origin in (typing.Union, types.UnionType):
            # null last, so a failing Optional reports the problem of the real shape.
            ordered = sorted(args, key=lambda arg: arg is type(None))
            return {"anyOf": [self.schema_of(arg, where) for arg in ordered]}
        if origin is tuple and args and args[-1] is not Ellipsis:
            items = [self.schema_of(arg, where) for arg in args]
            return {
                "type": "array",
                "prefixItems": items,
                "minItems": len(items),
                "maxItems": len(items),
            }
        if origin in _SEQUENCES and args:
            return {"type": "array", "items": self.schema_of(args[0], where)}
        if origin in _MAPPINGS and len(args) == 2:
            if args[0] is not str:
                raise SchemaError(f"{where}: JSON object keys are strings, not {args[0]!r}")
            return {"type": "object", "additionalProperties": self.schema_of(args[1], where)}
        raise SchemaError(f"{where}: no JSON schema for type {tp!r}")


def _enum_schema(values: list[Any], where: str) -> dict[str, Any]:
    kinds = {type(value) for value in values}
    if not values or not kinds <= {str, int, bool, float, type(None)}:
        raise SchemaError(f"{where}: enum values must be JSON scalars")
    schema: dict[str, Any] = {"enum": values}
    if len(kinds) == 1:
        schema["type"] = _SCALARS[kinds.pop()]
    return schema


def json_schema(cls: type, *, strict: bool = True) -> dict[str, Any]:
    """The JSON schema of attrs class ``cls``; raises ``SchemaError`` for what it cannot.

    ``strict`` lists every field as required (OpenAI's strict mode asks for that);
    otherwise only fields without a default are required.
    """
    # Typed callers pass a type; untyped ones may pass anything.
    if not attrs.has(cls):
        raise SchemaError(f"{cls!r} is not an attrs class")
    builder = _Builder(cls, strict=strict)
    schema = builder.object_schema(cls)
    if builder.defs:
        schema["$defs"] = builder.defs
    return schema


# -- checking a value against a generated schema ----------------------------------------


def _json_type(value: object) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return _SCALARS.get(type(value), type(value).__name__)


def _is(kind: object, value: object) -> bool:
    if isinstance(kind, list):  # a hand-written schema may list several types
        return any(_is(option, value) for option in kind)
    if kind == "integer":
        return (type(value) is int) or (type(value) is float and value.is_integer())
    if kind == "number":
        return type(value) in (int, float)
    return _json_type(value) == kind


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    if ref == "#":
        return root
    # Generated schemas use $defs; a hand-written one (a tool's parameters) may use
    # definitions or point elsewhere, which is then not checked rather than a crash.
    defs = root.get("$defs") or root.get("definitions") or {}
    resolved = defs.get(str(ref).rsplit("/", 1)[-1]) if isinstance(defs, dict) else None
    return resolved if isinstance(resolved, dict) else {}


def first_problem(
    schema: dict[str, Any], value: object, root: dict[str, Any] | None = None, path: str = "$"
) -> str | None:
    """The first way ``value`` breaks ``schema`` (a generated one), as ``path: problem``.

    ``None`` when it fits. Messages name paths, property names and JSON types, never
    the values themselves.
    """
    root = schema if root is None else root
    schema = _resolve(schema, root)
    if "anyOf" in schema:
        problems = [first_problem(option, value, root, path) for option in schema["anyOf"]]
        return None if None in problems else problems[0]
    if "enum" in schema:
        allowed = schema["enum"]
        if not any(type(value) is type(item) and value == item for item in allowed):
            return f"{path}: must be one of {allowed!r}"[:300]
        return None
    kind = schema.get("type")
    if kind is not None and not _is(kind, value):
        return f"{path}: expected {kind}, got {_json_type(value)}"
    if kind == "array":
        assert isinstance(value, list)
        return _array_problem(schema, value, root, path)
    if kind == "object":
        assert isinstance(value, dict)
        return _object_problem(schema, value, root, path)
    return None


def _array_problem(
    schema: dict[str, Any], value: list[Any], root: dict[str, Any], path: str
) -> str | None:
    low, high = schema.get("minItems", 0), schema.get("maxItems")
    if len(value) < low or (high is not None and len(value) > high):
        return f"{path}: expected {low} to {high} items, got {len(value)}"
    prefix = schema.get("prefixItems")
    for index, item in enumerate(value):
        item_schema = prefix[index] if prefix is not None else schema.get("items", {})
        problem = first_problem(item_schema, item, root, f"{path}[{index}]")
        if problem is not None:
            return problem
    return None


def _object_problem(
    schema: dict[str, Any], value: dict[str, Any], root: dict[str, Any], path: str
) -> str | None:
    properties: dict[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", ()))
    # Field order, so the model hears about the first field it got wrong.
    for name, item_schema in properties.items():
        if name in value:
            problem = first_problem(item_schema, value[name], root, f"{path}.{name}")
            if problem is not None:
                return problem
        elif name in required:
            return f"{path}: missing property {name!r}"
    extra = schema.get("additionalProperties", True)
    for name, item in value.items():
        if name in properties:
            continue
        if extra is False:
            problem = f"{path}: unexpected property {name[:40]!r}"
        elif isinstance(extra, dict):
            problem = first_problem(extra, item, root, f"{path}.{name[:40]}")
        else:
            problem = None
        if problem is not None:
            return problem
    return None
