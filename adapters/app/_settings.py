"""Configuration from environment variables, validated once, secrets redacted.

The conventional variables come first (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``,
``REDIS_URL``, ``DATABASE_URL``); everything portside-specific is under ``PORTSIDE_``.
Loading is done by typed-settings over attrs classes; an invalid value is a
``SettingsError`` that names the variable and what was wrong, never a traceback.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

import attrs
import typed_settings as ts
from typed_settings.exceptions import InvalidSettingsError, InvalidValueError

from portside.adapters._redact import MASK as _SECRET
from portside.adapters._redact import redact_url as _redact_url

__all__ = [
    "Backend",
    "Connections",
    "Settings",
    "SettingsError",
    "Tuning",
    "describe",
    "load_settings",
    "redact_url",
]

#: Which adapters to build: ``auto`` (real where configured), ``real`` (required) or ``memory``.
Backend = Literal["auto", "real", "memory"]
_PREFIX = "PORTSIDE_"


def redact_url(url: str | None) -> str | None:
    """``url`` with its password and credential query arguments replaced by ``***``."""
    return _redact_url(url) if url else url


def _redacted_repr(url: str | None) -> str:
    return repr(redact_url(url))


def _url(schemes: tuple[str, ...]) -> Any:
    def check(instance: object, attribute: attrs.Attribute[Any], value: str | None) -> None:
        if value is None:
            return
        parts = urlsplit(value)
        scheme = parts.scheme.split("+", 1)[0]
        if scheme not in schemes:
            allowed = ", ".join(s + "://" for s in schemes)
            raise ValueError(f"'{attribute.name}' must be a URL starting with one of {allowed}")
        if scheme in ("http", "https", "redis", "rediss") and not parts.hostname:
            raise ValueError(f"'{attribute.name}' must be a URL with a host")

    return check


@ts.settings(frozen=True)
class Connections:
    """Where the services are; read from the conventional, unprefixed variables."""

    openai_api_key: ts.SecretStr | None = attrs.field(default=None, repr=lambda v: _SECRET)
    openai_base_url: str | None = attrs.field(default=None, validator=_url(("http", "https")))
    redis_url: str | None = attrs.field(
        default=None, validator=_url(("redis", "rediss", "unix")), repr=_redacted_repr
    )
    database_url: str | None = attrs.field(
        default=None,
        validator=_url(("sqlite", "postgresql", "postgres", "mysql", "mariadb")),
        repr=_redacted_repr,
    )


_positive = attrs.validators.gt(0.0)
_positive_int = attrs.validators.gt(0)


@ts.settings(frozen=True)
class Tuning:
    """Everything portside-specific, read from ``PORTSIDE_<NAME>`` variables."""

    llm_backend: Backend = "auto"
    cache_backend: Backend = "auto"
    queue_backend: Backend = "auto"
    llm_model: str = "gpt-4o-mini"
    embedding_model: str = "text-embedding-3-small"
    llm_timeout: float = attrs.field(default=60.0, validator=_positive)
    llm_max_retries: int = attrs.field(default=2, validator=attrs.validators.ge(0))
    redis_timeout: float = attrs.field(default=0.5, validator=_positive)
    redis_max_connections: int = attrs.field(default=50, validator=_positive_int)
    db_pool_size: int = attrs.field(default=5, validator=_positive_int)
    sqlite_path: str = "portside.db"
    namespace: str = attrs.field(default="portside", validator=attrs.validators.min_len(1))
    queue_lease: float = attrs.field(default=30.0, validator=_positive)
    queue_max_deliveries: int = attrs.field(default=5, validator=_positive_int)
    cache_ttl: float = attrs.field(default=3600.0, validator=_positive)


@attrs.frozen
class Settings:
    """The effective configuration: connections plus tuning."""

    connections: Connections = attrs.field(factory=Connections)
    tuning: Tuning = attrs.field(factory=Tuning)

    @property
    def database_url(self) -> str:
        """``DATABASE_URL``, or the embedded SQLite file."""
        return self.connections.database_url or f"sqlite:///{self.tuning.sqlite_path}"

    def uses_redis(self, backend: Backend) -> bool:
        """Whether a port with this backend choice runs on Redis."""
        if backend == "memory":
            return False
        return backend == "real" or self.connections.redis_url is not None

    @property
    def real_llm(self) -> bool:
        """Whether the LLM port talks to an OpenAI-compatible server."""
        backend = self.tuning.llm_backend
        if backend == "memory":
            return False
        conn = self.connections
        return (
            backend == "real" or conn.openai_api_key is not None or conn.openai_base_url is not None
        )


class SettingsError(ValueError):
    """The environment holds an invalid value; ``str()`` names the variable."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


def _variable(cls: type, option: str) -> str:
    return option.upper() if cls is Connections else _PREFIX + option.upper()


def _explain(cls: type, exc: InvalidSettingsError) -> SettingsError:
    """The first problem in ``exc``, naming the variable and never echoing a value."""
    for sub in exc.exceptions:
        text = str(sub)
        rule = re.search(r"'(\w+)' must (.*)", text)
        if rule:
            # attrs validators append ": <value>"; drop it so no value is echoed
            return SettingsError(
                _variable(cls, rule.group(1)), "must " + rule.group(2).rsplit(": ", 1)[0]
            )
        option = re.search(r"for option '([\w.]+)'", text)
        if isinstance(sub, InvalidValueError) and option:
            cause = sub.__cause__ or sub.__context__
            reason = "not a valid value"
            if cause is not None and "api_key" not in option.group(1):
                reason = re.sub(r"'[^']*'", "the value", str(cause))[:120] or reason
            return SettingsError(_variable(cls, option.group(1)), reason)
    return SettingsError(cls.__name__, "invalid settings")


@attrs.frozen
class _MappingLoader:
    """typed-settings' EnvLoader, reading a given mapping instead of ``os.environ``."""

    prefix: str
    environ: Mapping[str, str]

    def __call__(self, settings_cls: type, options: Any) -> Any:
        from typed_settings.dict_utils import set_path
        from typed_settings.types import LoadedSettings, LoaderMeta

        values: dict[str, Any] = {}
        for option in options:
            variable = f"{self.prefix}{option.path.upper().replace('.', '_')}"
            if variable in self.environ:
                set_path(values, option.path, self.environ[variable])
        return LoadedSettings(values, LoaderMeta(self))


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the settings from ``environ`` (default: ``os.environ``).

    Raises ``SettingsError`` naming the variable when a value is invalid.
    """
    source = os.environ if environ is None else environ
    # Blank variables count as unset: `FOO= cmd` is how shells clear a setting.
    env = {k: v for k, v in source.items() if v != ""}
    parts: list[Any] = []
    for cls, prefix in ((Connections, ""), (Tuning, _PREFIX)):
        try:
            parts.append(ts.load_settings(cls, loaders=[_MappingLoader(prefix, env)]))
        except InvalidSettingsError as exc:
            raise _explain(cls, exc) from None
    return Settings(parts[0], parts[1])


def describe(
    settings: Settings, environ: Mapping[str, str] | None = None
) -> list[tuple[str, str, str]]:
    """Rows of (variable, effective value with secrets redacted, where it came from)."""
    env = os.environ if environ is None else environ
    rows: list[tuple[str, str, str]] = []
    pairs: tuple[tuple[type[Any], Any], ...] = (
        (Connections, settings.connections),
        (Tuning, settings.tuning),
    )
    for cls, obj in pairs:
        for field in attrs.fields(cls):
            variable = _variable(cls, field.name)
            value = getattr(obj, field.name)
            if value is None:
                shown = "(unset)"
            elif "api_key" in field.name:
                shown = _SECRET
            elif field.name.endswith("url"):
                shown = redact_url(str(value)) or ""
            else:
                shown = str(value)
            source = f"env {variable}" if env.get(variable) else "default"
            rows.append((variable, shown, source))
    return rows
