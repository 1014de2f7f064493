"""Everything that touches the world, grouped by capability, each behind a facade.

``memory`` (the fakes), ``redis``, ``sqlalchemy`` and ``openai`` (one per optional extra),
``llm_cache``, ``resilience`` and ``structured`` (decorators over any port), ``app``
(settings, composition root, health checks, CLI, worker, Flask), ``testing`` (the
contract kits and fault tools), and the shared modules ``clock``, ``codec``,
``entities``, ``cache_tools`` and ``observability``. The package itself exports only the
error raised when a facade's optional extra is missing.
"""

from portside.adapters._extras import MissingExtraError

__all__ = ["MissingExtraError"]
