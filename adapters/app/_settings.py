"""Configuration from environment variables, validated once, secrets redacted.

The conventional variables come first (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``,
``REDIS_URL``, ``DATABASE_URL``); everything portside-specific is under ``PORTSIDE_``.
Loading is done by typed-settings over attrs classes; an invalid value is a
``SettingsError`` that names the variable and what was wrong, never a traceback.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from typing import Any, Literal

import attrs
import typed_settings as ts
from typed_settings.exceptions import InvalidSettingsError

from portside.adapters._redact import MASK as _SECRET
from portside.adapters._redact import redact_url as _redact_url
from portside.adapters._urls import (
    DATABASE_ACCEPTS,
    HTTP_ACCEPTS,
    REDIS_ACCEPTS,
    URLProblem,
    normalise_database_url,
    normalise_http_url,
    normalise_redis_url,
)

# The real-LLM guard's notion of "local" (loopback), so both agree on what needs no key.
from portside.ports.llm_rules import _is_loopback as is_loopback

__all__ = [
    "Backend",
    "Connections",
    "RelayMode",
    "Settings",
    "SettingsError",
    "Tuning",
    "describe",
    "load_settings",
    "redact_url",
]

#: Which adapters to build: ``auto`` (real where configured), ``real`` (required) or ``memory``.
Backend = Literal["auto", "real", "memory"]
#: Where the outbox relay runs: beside a worker's handlers, in ``portside relay``, right
#: after each commit that published (with a background loop behind it), or nowhere.
RelayMode = Literal["worker", "process", "after_commit", "off"]
_PREFIX = "PORTSIDE_"
# The cache's namespace rule (``portside.ports.cache_rules.check_namespace``).
_NAMESPACE = r"[A-Za-z0-9_.:\-]{1,128}"
#: The embedded database when ``DATABASE_URL`` is unset: this file in the current folder.
DEFAULT_SQLITE_PATH = "portside.db"


def redact_url(url: str | None) -> str | None:
    """``url`` with its password and credential query arguments replaced by ``***``."""
    return _redact_url(url) if url else url


def _redacted_repr(url: str | None) -> str:
    return repr(redact_url(url))


def _optional(normalise: Callable[[str], str]) -> Callable[[str | None], str | None]:
    def convert(value: str | None) -> str | None:
        return None if value is None else normalise(value)

    return convert


def _number(low: float, high: float, *, inclusive: bool = False) -> Any:
    """A validator for a finite number in ``(low, high]`` (``[low, high]`` if inclusive)."""

    def check(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
        above = value >= low if inclusive else value > low
        if not (math.isfinite(value) and above and value <= high):
            raise ValueError(f"'{attribute.name}' must be {attribute.metadata['accepts']}")

    return check


def _field(default: Any, accepts: str, validator: Any = None, **kw: Any) -> Any:
    return attrs.field(default=default, validator=validator, metadata={"accepts": accepts}, **kw)


def _seconds(default: float, high: float = 86_400.0, *, zero: bool = False) -> Any:
    low = "0" if zero else "more than 0"
    return _field(
        default,
        f"seconds, {low} to {high:g}",
        _number(0.0, high, inclusive=zero),
    )


def _count(default: int, low: int, high: int) -> Any:
    return _field(default, f"an integer from {low} to {high}", _number(low, high, inclusive=True))


@ts.settings(frozen=True)
class Connections:
    """Where the services are; read from the conventional, unprefixed variables.

    Every URL is checked and normalised when loaded (``postgres://`` becomes
    ``postgresql+psycopg://``, ``mysql://`` becomes ``mysql+pymysql://``).
    """

    openai_api_key: ts.SecretStr | None = _field(
        None,
        "the provider's API key (optional for a local OPENAI_BASE_URL)",
        repr=lambda v: _SECRET,
    )
    openai_base_url: str | None = _field(
        None, HTTP_ACCEPTS, converter=_optional(normalise_http_url)
    )
    redis_url: str | None = _field(
        None, REDIS_ACCEPTS, converter=_optional(normalise_redis_url), repr=_redacted_repr
    )
    database_url: str | None = _field(
        None, DATABASE_ACCEPTS, converter=_optional(normalise_database_url), repr=_redacted_repr
    )


_BACKENDS = "auto, real or memory"


@ts.settings(frozen=True)
class Tuning:
    """Everything portside-specific, read from ``PORTSIDE_<NAME>`` variables."""

    llm_backend: Backend = _field("auto", _BACKENDS)
    cache_backend: Backend = _field("auto", _BACKENDS)
    queue_backend: Backend = _field("auto", _BACKENDS)
    llm_model: str = _field("gpt-4o-mini", "a model name", attrs.validators.min_len(1))
    embedding_model: str = _field(
        "text-embedding-3-small", "a model name", attrs.validators.min_len(1)
    )
    llm_timeout: float = _seconds(60.0, 3600.0)
    llm_deadline: float = _seconds(120.0, 86_400.0)
    llm_max_retries: int = _count(2, 0, 10)
    redis_timeout: float = _seconds(0.5, 60.0)
    redis_client_timeout: float = _seconds(30.0, 86_400.0)
    redis_max_connections: int = _count(50, 1, 10_000)
    db_pool_size: int = _count(5, 1, 1_000)
    sqlite_path: str = _field(
        DEFAULT_SQLITE_PATH,
        "a file path (used when DATABASE_URL is unset)",
        attrs.validators.min_len(1),
    )
    namespace: str = _field(
        "portside", "1-128 letters, digits and _ . : -", attrs.validators.matches_re(_NAMESPACE)
    )
    queue_lease: float = _seconds(30.0)
    queue_max_deliveries: int = _count(5, 1, 1_000)
    cache_ttl: float = _seconds(3600.0, 2**31 - 1)
    health_interval: float = _seconds(10.0, 3600.0, zero=True)
    outbox_relay: RelayMode = _field("after_commit", "worker, process, after_commit or off")
    outbox_poll_interval: float = _seconds(1.0, 3600.0)
    outbox_batch: int = _count(100, 1, 1_000)
    outbox_lag_warning: float = _seconds(60.0)


@attrs.frozen
class Settings:
    """The effective configuration: connections plus tuning."""

    connections: Connections = attrs.field(factory=Connections)
    tuning: Tuning = attrs.field(factory=Tuning)

    @property
    def database_url(self) -> str:
        """``DATABASE_URL`` (normalised), or the embedded SQLite file ``PORTSIDE_SQLITE_PATH``."""
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

    @property
    def local_llm(self) -> bool:
        """Whether ``OPENAI_BASE_URL`` is a loopback server (one that needs no API key)."""
        url = self.connections.openai_base_url
        return url is not None and is_loopback(url)

    def openai_api_key(self) -> str:
        """The key to give the OpenAI SDK: ``OPENAI_API_KEY``, or a placeholder locally.

        Raises ``SettingsError`` when a remote provider (not loopback) has no key.
        """
        key = self.connections.openai_api_key
        if key is not None:
            return str(key)
        if self.local_llm:
            return _LOCAL_KEY
        raise SettingsError(
            "OPENAI_API_KEY",
            "is not set; set it, or set OPENAI_BASE_URL to a local server"
            " (localhost, 127.0.0.1 or ::1) that needs no key",
        )


# Local OpenAI-compatible servers ignore the key, but the SDK refuses to start without one.
_LOCAL_KEY = "local-server-needs-no-key"


class SettingsError(ValueError):
    """The environment holds an invalid value; ``str()`` is one line naming the variable.

    The message says what is accepted and never repeats the value (it may be a secret).
    """

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


def _variable(cls: type, option: str) -> str:
    return option.upper() if cls is Connections else _PREFIX + option.upper()


def _accepted(cls: type, option: str) -> str:
    """What the setting ``option`` of ``cls`` accepts, in words."""
    accepts: str = attrs.fields_dict(cls)[option].metadata["accepts"]
    return accepts


def _explain(cls: type, exc: InvalidSettingsError, env: Mapping[str, str]) -> SettingsError:
    """The first problem in ``exc``, naming the variable and never echoing a value."""
    names = attrs.fields_dict(cls)
    for sub in exc.exceptions:
        text = str(sub)
        option = re.search(r"for option '(\w+)'", text)
        found = option or re.search(r"'(\w+)' must ", text)
        name = found.group(1) if found else ""
        if name not in names:
            continue
        variable = _variable(cls, name)
        problem = "is not valid"
        converter = names[name].converter
        if option and converter is not None and variable in env:
            # Run the field's own check again to get its words (typed-settings keeps the
            # value in its message, which may be a secret).
            try:
                converter(env[variable])  # type: ignore[operator]
            except URLProblem as problem_in_url:
                problem = str(problem_in_url)
        return SettingsError(variable, f"{problem}; accepted: {_accepted(cls, name)}")
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


def _check_together(settings: Settings) -> None:
    """Choices that are valid alone but not with the rest of the configuration."""
    tuning = settings.tuning
    for port, backend in (("CACHE", tuning.cache_backend), ("QUEUE", tuning.queue_backend)):
        if backend == "real" and settings.connections.redis_url is None:
            raise SettingsError(f"PORTSIDE_{port}_BACKEND", "is real but REDIS_URL is not set")
    if settings.real_llm:
        settings.openai_api_key()


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read, normalise and validate the settings from ``environ`` (default: ``os.environ``).

    Raises ``SettingsError`` (one line naming the variable and what it accepts) when a
    value is invalid, or when a real LLM has no API key and no local base URL.
    """
    source = os.environ if environ is None else environ
    # Blank variables count as unset: `FOO= cmd` is how shells clear a setting.
    env = {k: v for k, v in source.items() if v != ""}
    parts: list[Any] = []
    for cls, prefix in ((Connections, ""), (Tuning, _PREFIX)):
        try:
            parts.append(ts.load_settings(cls, loaders=[_MappingLoader(prefix, env)]))
        except InvalidSettingsError as exc:
            raise _explain(cls, exc, env) from None
    settings = Settings(parts[0], parts[1])
    _check_together(settings)
    return settings


def describe(
    settings: Settings, environ: Mapping[str, str] | None = None
) -> list[tuple[str, str, str, str]]:
    """Rows of (variable, effective value with secrets redacted, source, accepted values)."""
    env = os.environ if environ is None else environ
    rows: list[tuple[str, str, str, str]] = []
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
            rows.append((variable, shown, source, field.metadata["accepts"]))
    return rows
