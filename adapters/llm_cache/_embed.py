"""Embeddings through the cache: one entry per (identity, model, dimensions, text).

Every text's entry is looked up in one ``get_many``; only the texts that missed go
upstream, in one call, each once however often it repeats; the answer is merged back
in input order and the new vectors are stored in one ``set_many``. The decisions are
written once (``embed_steps``, a step generator) and driven with plain calls by
``embed_through_cache`` or awaited by ``aembed_through_cache``.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
from returns.result import Failure, Result, Success

from portside.adapters.codec import Codec
from portside.adapters.llm_cache._entry import EmbeddingEntry
from portside.adapters.llm_cache._key import embedding_key
from portside.adapters.llm_cache._policy import CachePolicy
from portside.adapters.observability import Metrics
from portside.adapters.resilience._steps import Call, Steps, arun, run
from portside.domain._errors import ProtocolError, ServiceError
from portside.domain._llm import CacheInfo, Embeddings, LLMIdentity, Usage
from portside.ports._cache import AsyncCachePort, CachePort
from portside.ports._clock import Clock
from portside.ports._llm import AsyncLLMPort, LLMPort

__all__ = ["aembed_through_cache", "embed_steps", "embed_through_cache"]


def _shares(tokens: int, texts: Sequence[str]) -> list[int]:
    """``tokens`` split over ``texts`` in proportion to their length (sums to ``tokens``)."""
    total = sum(len(t) for t in texts) or 1
    shares = [tokens * len(t) // total for t in texts]
    if shares:
        shares[-1] += tokens - sum(shares)
    return shares


def embed_through_cache(
    llm: LLMPort,
    texts: Sequence[str],
    *,
    model: str | None,
    dimensions: int | None,
    policy: CachePolicy,
    cache: CachePort,
    clock: Clock,
    metrics: Metrics,
    codec: Codec,
) -> Result[Embeddings, ServiceError]:
    """``llm.embed(texts)`` with per-text caching; cache failures count as misses.

    ``cache`` is expected to fail open (the LLM cache passes its ``FailOpenCache``);
    a failure it still returns is a miss or a skipped write all the same.

    ``CacheInfo.hit`` is true when every text came from the cache, ``age`` is the
    oldest entry used, ``saved.input_tokens`` the tokens the cached texts cost when they
    were first embedded (the provider reports one count per call, so it is shared out
    by text length).
    """
    steps = embed_steps(llm.identity, texts, model, dimensions, policy, clock, metrics, codec)
    return run(steps, _Target(cache, llm))


async def aembed_through_cache(
    llm: AsyncLLMPort,
    texts: Sequence[str],
    *,
    model: str | None,
    dimensions: int | None,
    policy: CachePolicy,
    cache: AsyncCachePort,
    clock: Clock,
    metrics: Metrics,
    codec: Codec,
) -> Result[Embeddings, ServiceError]:
    """``embed_through_cache`` awaiting ``llm`` and ``cache``."""
    steps = embed_steps(llm.identity, texts, model, dimensions, policy, clock, metrics, codec)
    return await arun(steps, _AsyncTarget(cache, llm))


@attrs.frozen
class _Target:
    """What the steps call: the cache's batch methods and the LLM's ``embed``."""

    cache: CachePort
    llm: LLMPort

    def get_many(self, keys: list[str]) -> Result[dict[str, bytes], ServiceError]:
        return self.cache.get_many(keys)

    def set_many(self, items: dict[str, bytes], ttl: float | None) -> Result[None, ServiceError]:
        return self.cache.set_many(items, ttl)

    def embed(
        self, texts: Sequence[str], model: str | None, dimensions: int | None
    ) -> Result[Embeddings, ServiceError]:
        return self.llm.embed(texts, model=model, dimensions=dimensions)


@attrs.frozen
class _AsyncTarget:
    """``_Target`` for asyncio."""

    cache: AsyncCachePort
    llm: AsyncLLMPort

    async def get_many(self, keys: list[str]) -> Result[dict[str, bytes], ServiceError]:
        return await self.cache.get_many(keys)

    async def set_many(
        self, items: dict[str, bytes], ttl: float | None
    ) -> Result[None, ServiceError]:
        return await self.cache.set_many(items, ttl)

    async def embed(
        self, texts: Sequence[str], model: str | None, dimensions: int | None
    ) -> Result[Embeddings, ServiceError]:
        return await self.llm.embed(texts, model=model, dimensions=dimensions)


def embed_steps(
    identity: LLMIdentity,
    texts: Sequence[str],
    model: str | None,
    dimensions: int | None,
    policy: CachePolicy,
    clock: Clock,
    metrics: Metrics,
    codec: Codec,
) -> Steps[Result[Embeddings, ServiceError]]:
    """The embeddings-through-the-cache decisions, calling ``get_many``, ``embed``, ``set_many``."""
    if not (policy.read or policy.write):
        plain: Result[Embeddings, ServiceError] = yield Call("embed", (texts, model, dimensions))
        return plain.map(lambda e: Embeddings(e.vectors, e.model, e.usage, CacheInfo(hit=False)))
    resolved = model if model is not None else identity.model
    keys = {text: embedding_key(identity, resolved, dimensions, text) for text in texts}
    found: dict[str, EmbeddingEntry] = {}
    if policy.read:
        raw = (yield Call("get_many", (list(keys.values()),))).value_or({})
        for text, key in keys.items():
            data = raw.get(key)
            entry = None if data is None else codec.decode(data, EmbeddingEntry).value_or(None)
            if entry is not None and (dimensions is None or len(entry.vector) == dimensions):
                found[text] = entry
    missing = [text for text in keys if text not in found]
    usage = Usage()
    served_model = next(iter(found.values())).model if found else resolved
    if missing:
        result = yield Call("embed", (missing, model, dimensions))
        if isinstance(result, Failure):
            return result
        fresh = result.unwrap()
        if len(fresh.vectors) != len(missing):
            return Failure(
                ProtocolError(
                    service=identity.provider,
                    operation="embed",
                    message=f"{len(fresh.vectors)} vectors for {len(missing)} texts",
                )
            )
        usage, served_model = fresh.usage, fresh.model or served_model
        now = clock.now()
        new = {
            text: EmbeddingEntry(vector, fresh.model, tokens, now)
            for text, vector, tokens in zip(
                missing, fresh.vectors, _shares(usage.input_tokens, missing), strict=True
            )
        }
        if policy.write:
            encoded = {keys[t]: codec.encode(e) for t, e in new.items()}
            items = {k: v.unwrap() for k, v in encoded.items() if isinstance(v, Success)}
            if items:
                yield Call("set_many", (items, policy.ttl))
        vectors = {
            **{t: e.vector for t, e in found.items()},
            **{t: e.vector for t, e in new.items()},
        }
    else:
        vectors = {t: e.vector for t, e in found.items()}
    metrics.incr("cache.embed_hits", len(found))
    metrics.incr("cache.embed_misses", len(missing))
    saved = Usage(input_tokens=sum(e.tokens for e in found.values()))
    if found:
        metrics.cache_hit(saved) if not missing else metrics.incr(
            "cache.saved_input_tokens", saved.input_tokens
        )
    info = CacheInfo(
        hit=not missing,
        age=max((max(0.0, clock.now() - e.stored_at) for e in found.values()), default=0.0),
        saved=saved,
    )
    return Success(Embeddings(tuple(vectors[t] for t in texts), served_model, usage, info))
