"""Structured output for any ``LLMPort``: a reply that is an attrs instance, checked tool calls."""

from portside.adapters.structured._output import (
    DEFAULT_MAX_ATTEMPTS,
    SchemaError,
    Structured,
    acomplete_structured,
    complete_structured,
    json_schema,
)
from portside.adapters.structured._tools import parse_tool_call, parse_tool_calls

__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "SchemaError",
    "Structured",
    "acomplete_structured",
    "complete_structured",
    "json_schema",
    "parse_tool_call",
    "parse_tool_calls",
]
