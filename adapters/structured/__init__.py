"""Structured output for any ``LLMPort``: a reply that is an instance of an attrs class."""

from portside.adapters.structured._output import (
    DEFAULT_MAX_ATTEMPTS,
    SchemaError,
    Structured,
    complete_structured,
    json_schema,
)

__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "SchemaError",
    "Structured",
    "complete_structured",
    "json_schema",
]
