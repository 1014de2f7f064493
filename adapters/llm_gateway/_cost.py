"""Usage and cost: a configured price table, the cost of each call, and budgets.

Prices are configuration (no network): per million tokens of input, cached input and
output, per model. ``PricedLLM`` puts each call's cost on its result
(``Completion.cost``, the final ``ChatDelta.cost``, ``Embeddings.cost``), adds it to
``Metrics`` (``llm.cost_micros`` and ``llm.cost_micros.<model>``, in millionths of the
currency) and charges it to a ``Budget``, which refuses a call with ``QuotaExceeded``
before it is sent once its key (a tenant, an API key) has spent its limit.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

import attrs
from returns.result import Failure, Result, Success

from portside.adapters.observability import Metrics, default_metrics
from portside.domain._errors import QuotaExceeded, ServiceError
from portside.domain._llm import (
    ChatDelta,
    ChatRequest,
    Completion,
    Embeddings,
    LLMIdentity,
    Usage,
)
from portside.ports._llm import LLMPort
from portside.ports.llm_rules import validate_chat, validate_embed

__all__ = ["Budget", "Price", "PriceTable", "PricedLLM"]

_SERVICE: Final = "cost"


def _price(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not (
        isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 1e9
    ):
        raise ValueError(f"{attribute.name} must be a non-negative number")


@attrs.frozen
class Price:
    """What a model costs per million tokens; cached input defaults to the input price."""

    input: float = attrs.field(validator=_price)
    output: float = attrs.field(default=0.0, validator=_price)
    cached_input: float | None = attrs.field(default=None, validator=_price)

    def of(self, usage: Usage) -> float:
        """The cost of ``usage``: cached input tokens at their own price."""
        cached = min(usage.cached_input_tokens, usage.input_tokens)
        cached_price = self.input if self.cached_input is None else self.cached_input
        return (
            (usage.input_tokens - cached) * self.input
            + cached * cached_price
            + usage.output_tokens * self.output
        ) / 1_000_000


@attrs.frozen
class PriceTable:
    """Prices by model name; ``"*"`` prices any model not listed. Configuration only."""

    prices: Mapping[str, Price] = attrs.field(hash=False)
    currency: str = "USD"

    def cost(self, model: str, usage: Usage) -> float | None:
        """What ``usage`` of ``model`` cost, or ``None`` when the model has no price.

        A model the server names with a date suffix (``gpt-4o-mini-2024-07-18``) is
        priced as its listed prefix when it has no entry of its own.
        """
        price = self.prices.get(model)
        if price is None:
            prefixes = [name for name in self.prices if name != "*" and model.startswith(name)]
            price = self.prices[max(prefixes, key=len)] if prefixes else self.prices.get("*")
        return None if price is None else price.of(usage)


@attrs.define
class Budget:
    """Spending limits per key (a tenant, an API key...); thread-safe, in memory.

    ``limits`` maps a key to what it may spend; ``default`` applies to keys not listed
    (``None``: unlimited). ``spent(key)`` reads what was charged so far.
    """

    limits: Mapping[str, float] = attrs.field(factory=dict)
    default: float | None = None
    _spent: dict[str, float] = attrs.field(factory=dict, init=False, repr=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False)

    def limit(self, key: str) -> float | None:
        """What ``key`` may spend in all (``None``: no limit)."""
        return self.limits.get(key, self.default)

    def spent(self, key: str) -> float:
        """What ``key`` has spent so far."""
        with self._lock:
            return self._spent.get(key, 0.0)

    def exhausted(self, key: str) -> bool:
        """Whether ``key`` has spent its limit: its next call is refused."""
        limit = self.limit(key)
        return limit is not None and self.spent(key) >= limit

    def charge(self, key: str, cost: float) -> None:
        """Add ``cost`` to what ``key`` spent."""
        with self._lock:
            self._spent[key] = self._spent.get(key, 0.0) + cost


@attrs.define
class PricedLLM(LLMPort):
    """Prices every answer of ``llm`` and keeps each budget key within its limit.

    The budget key of a chat call is ``request.metadata[budget_field]`` (default
    ``"tenant"``), else ``default_key``; embeddings use ``default_key``. A key that
    spent its limit gets ``Failure(QuotaExceeded)`` and nothing is sent. A cache hit
    (``cache.hit``) costs nothing. A model without a price gets ``cost=None`` and
    charges nothing.
    """

    llm: LLMPort
    prices: PriceTable
    budget: Budget | None = None
    metrics: Metrics = attrs.field(factory=default_metrics)
    budget_field: str = "tenant"
    default_key: str = ""

    @property
    def identity(self) -> LLMIdentity:
        """The wrapped adapter's identity: pricing never changes an answer."""
        return self.llm.identity

    def close(self) -> None:
        """Close the wrapped adapter."""
        self.llm.close()

    def _key(self, request: ChatRequest | None) -> str:
        if request is not None and isinstance(request.metadata, Mapping):
            key = request.metadata.get(self.budget_field)
            if isinstance(key, str):
                return key
        return self.default_key

    def _refusal(self, key: str, operation: str) -> QuotaExceeded | None:
        if self.budget is None or not self.budget.exhausted(key):
            return None
        return QuotaExceeded(
            service=_SERVICE,
            operation=operation,
            message=f"the budget of {key[:64]!r} is spent ({self.prices.currency})",
        )

    def _charge(self, key: str, model: str, usage: Usage, hit: bool) -> float | None:
        cost = 0.0 if hit else self.prices.cost(model, usage)
        if cost is None or hit:
            return cost
        micros = round(cost * 1_000_000)
        self.metrics.incr("llm.cost_micros", micros)
        self.metrics.incr(f"llm.cost_micros.{model}", micros)
        if self.budget is not None:
            self.budget.charge(key, cost)
        return cost

    def complete(self, request: ChatRequest) -> Result[Completion, ServiceError]:
        """``llm``'s answer with its cost; ``QuotaExceeded`` when the budget is spent."""
        invalid = validate_chat(request, service=_SERVICE, operation="complete")
        if invalid is not None:
            return Failure(invalid)
        key = self._key(request)
        refused = self._refusal(key, "complete")
        if refused is not None:
            return Failure(refused)
        result = self.llm.complete(request)
        if isinstance(result, Failure):
            return result
        done = result.unwrap()
        hit = done.cache is not None and done.cache.hit
        return Success(attrs.evolve(done, cost=self._charge(key, done.model, done.usage, hit)))

    def stream(self, request: ChatRequest) -> Iterator[Result[ChatDelta, ServiceError]]:
        """``llm``'s deltas, the final one with its cost; ``QuotaExceeded`` as ``complete``."""
        invalid = validate_chat(request, service=_SERVICE, operation="stream")
        if invalid is not None:
            yield Failure(invalid)
            return
        key = self._key(request)
        refused = self._refusal(key, "stream")
        if refused is not None:
            yield Failure(refused)
            return
        for event in self.llm.stream(request):
            if isinstance(event, Success):
                delta = event.unwrap()
                if delta.usage is not None:
                    hit = delta.cache is not None and delta.cache.hit
                    cost = self._charge(key, delta.model, delta.usage, hit)
                    event = Success(attrs.evolve(delta, cost=cost))
            yield event

    def embed(
        self,
        texts: Sequence[str],
        *,
        model: str | None = None,
        dimensions: int | None = None,
    ) -> Result[Embeddings, ServiceError]:
        """``llm``'s vectors with their cost; ``QuotaExceeded`` as ``complete``."""
        invalid = validate_embed(texts, model, dimensions, service=_SERVICE)
        if invalid is not None:
            return Failure(invalid)
        refused = self._refusal(self.default_key, "embed")
        if refused is not None:
            return Failure(refused)
        result = self.llm.embed(texts, model=model, dimensions=dimensions)
        if isinstance(result, Failure):
            return result
        done = result.unwrap()
        hit = done.cache is not None and done.cache.hit
        cost = self._charge(self.default_key, done.model, done.usage, hit)
        return Success(attrs.evolve(done, cost=cost))
