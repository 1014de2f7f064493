"""The one serialisation module, shared by fakes and real adapters. No pickle.

Every encoded value starts with a 4-byte envelope header: ``b"ps"``, the format
version, and a kind byte:

- ``b`` raw bytes, passed through;
- ``s`` a ``str``, as UTF-8;
- ``j`` a JSON value (through orjson);
- ``a`` an attrs instance, unstructured by cattrs and then JSON.

Decoding bytes with an unknown header, a different version or a corrupt body is a
``SerializationError`` value (a cache treats it as a miss), never an exception.
Encoding a value JSON cannot represent exactly (NaN, infinity, a set, an arbitrary
object, a cycle, an integer beyond 64 bits) is a ``SerializationError`` naming it.
"""

from __future__ import annotations

import math
import threading
from typing import TYPE_CHECKING, Any, Final, TypeAlias, TypeVar, cast

import attrs
import orjson
from returns.result import Failure, Result, Success

from portside.domain._errors import SerializationError

if TYPE_CHECKING:
    import cattrs

__all__ = [
    "FORMAT_VERSION",
    "JSON",
    "Codec",
    "decode",
    "decode_value",
    "default_codec",
    "encode",
]

#: A plain JSON value, as the codec stores it.
JSON: TypeAlias = "bool | int | float | str | list[JSON] | dict[str, JSON] | None"
T = TypeVar("T")

#: The version byte of the stored envelope; another version reads as a miss.
FORMAT_VERSION: Final = 1
_PREFIX: Final = b"ps1"
_BYTES: Final = b"ps1b"
_STR: Final = b"ps1s"
_JSON: Final = b"ps1j"
_ATTRS: Final = b"ps1a"
_HEADER: Final = 4

# What orjson and cattrs raise for values they cannot handle; anything else is a
# programming error in portside and must surface. (cattrs' own validation errors are
# added by each Codec, which is where cattrs is first imported.)
_ENCODE_ERRORS: Final = (TypeError, ValueError, RecursionError, OverflowError)
_DECODE_ERRORS: Final = (
    ValueError,
    TypeError,
    KeyError,
    AttributeError,
    IndexError,
    RecursionError,
)


def _first_non_finite(value: Any, path: str = "$") -> str | None:
    """The JSON path of the first NaN or infinity inside ``value``, if any."""
    if isinstance(value, float):
        return None if math.isfinite(value) else path
    if isinstance(value, dict):
        for key, item in value.items():
            found = _first_non_finite(item, f"{path}.{key}")
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = _first_non_finite(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def _finite(value: float) -> float:
    """Cattrs unstructure hook: NaN and infinity would be written as null by orjson."""
    if math.isfinite(value):
        return value
    raise ValueError(f"non-finite float {value!r} cannot be encoded")


def _make_converter() -> cattrs.Converter:
    # Imported here, not at the top: an adapter that only encodes plain values (the
    # queue's headers) is imported without cattrs; the first Codec loads it.
    from cattrs.preconf.orjson import make_converter

    converter = make_converter()
    converter.register_unstructure_hook(float, _finite)
    return converter


def _failure(operation: str, message: str, cause: BaseException | None = None) -> Failure[Any]:
    return Failure(
        SerializationError(service="codec", operation=operation, message=message).caused_by(cause)
    )


@attrs.frozen
class Codec:
    """Encode values to enveloped bytes and back.

    The converter is a cattrs converter preconfigured for orjson; pass your own to
    register hooks for your types (both the fakes and the real adapters then use it).
    """

    converter: cattrs.Converter = attrs.field(factory=_make_converter)
    _decode_errors: tuple[type[BaseException], ...] = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        import cattrs.errors

        object.__setattr__(
            self,
            "_decode_errors",
            (
                *_DECODE_ERRORS,
                cattrs.errors.BaseValidationError,
                cattrs.errors.StructureHandlerNotFoundError,
            ),
        )

    def encode(self, value: object) -> Result[bytes, SerializationError]:
        """Enveloped bytes for ``value`` (bytes, str, a JSON value or an attrs instance)."""
        if isinstance(value, bytes):
            return Success(_BYTES + value)
        if isinstance(value, str):
            return Success(_STR + value.encode("utf-8", "surrogatepass"))
        name = type(value).__name__
        if attrs.has(type(value)):
            # Float fields go through _finite, so no walk is needed afterwards.
            try:
                return Success(_ATTRS + orjson.dumps(self.converter.unstructure(value)))
            except _ENCODE_ERRORS as exc:
                return _failure("encode", f"{name} cannot be encoded: {exc}", exc)
        try:
            payload = orjson.dumps(value)
        except _ENCODE_ERRORS as exc:
            return _failure("encode", f"{name} is not JSON-serialisable: {exc}", exc)
        # orjson writes NaN and infinity as null, which would not round-trip; only pay
        # for the walk when a null appears in the output at all.
        if b"null" in payload:
            where = _first_non_finite(value)
            if where is not None:
                return _failure("encode", f"non-finite float at {where} cannot be encoded")
        return Success(_JSON + payload)

    def decode(
        self, data: bytes | bytearray | memoryview, into: type[T]
    ) -> Result[T, SerializationError]:
        """The value of type ``into`` that ``data`` encodes."""
        if type(data) is not bytes:
            data = bytes(data)
        header = data[:_HEADER]
        if header in (_ATTRS, _JSON):
            try:
                return Success(self.converter.structure(orjson.loads(data[_HEADER:]), into))
            except self._decode_errors as exc:
                return _failure("decode", f"stored value does not fit {_name(into)}", exc)
        if header == _BYTES and into is bytes:
            return Success(cast(T, data[_HEADER:]))
        if header == _STR and into is str:
            try:
                return Success(cast(T, data[_HEADER:].decode("utf-8", "surrogatepass")))
            except UnicodeDecodeError as exc:
                return _failure("decode", "stored text is not UTF-8", exc)
        return _failure("decode", _unknown(header, _name(into)))

    def decode_value(
        self, data: bytes | bytearray | memoryview
    ) -> Result[object, SerializationError]:
        """Whatever ``data`` encodes: bytes, str, or plain JSON (attrs come back as dicts)."""
        data = bytes(data)
        header = data[:_HEADER]
        if header == _BYTES:
            return Success(data[_HEADER:])
        if header == _STR:
            try:
                return Success(data[_HEADER:].decode("utf-8", "surrogatepass"))
            except UnicodeDecodeError as exc:
                return _failure("decode", "stored text is not UTF-8", exc)
        if header in (_JSON, _ATTRS):
            try:
                return Success(orjson.loads(data[_HEADER:]))
            except orjson.JSONDecodeError as exc:
                return _failure("decode", "stored JSON is corrupt", exc)
        return _failure("decode", _unknown(header, "a value"))


def _name(into: object) -> str:
    return getattr(into, "__name__", repr(into))


def _unknown(header: bytes, wanted: str) -> str:
    if header[:3] == _PREFIX:
        return f"envelope kind {header[3:4]!r} does not hold {wanted}"
    if header[:2] == _PREFIX[:2]:
        return f"unsupported envelope version {header[2:3]!r}"
    return "not a portside envelope"


_default: Codec | None = None
_default_lock = threading.Lock()


def _default_codec() -> Codec:
    global _default  # the one process-wide codec, built on first use
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Codec()
    return _default


def encode(value: object) -> Result[bytes, SerializationError]:
    """Enveloped bytes for ``value``, by ``default_codec`` (see ``Codec.encode``)."""
    return _default_codec().encode(value)


def decode(data: bytes | bytearray | memoryview, into: type[T]) -> Result[T, SerializationError]:
    """The value of type ``into`` that ``data`` encodes, by ``default_codec``."""
    return _default_codec().decode(data, into)


def decode_value(data: bytes | bytearray | memoryview) -> Result[object, SerializationError]:
    """Whatever ``data`` encodes, by ``default_codec`` (see ``Codec.decode_value``)."""
    return _default_codec().decode_value(data)


#: The codec every adapter uses unless given another (built when first asked for).
default_codec: Codec  # declared only: __getattr__ below builds it


def __getattr__(name: str) -> Codec:
    # ``default_codec`` is built when first asked for, so importing this module does
    # not import cattrs (PEP 562).
    if name == "default_codec":
        return _default_codec()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
