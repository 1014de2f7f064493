"""The contract kits, the local OpenAI-compatible server and the fault tools. For tests.

- Kits: hypothesis state machines that prove an adapter equals its fake, one per port
  (``cache_contract``, ``check_queue_contract``, ``check_unit_of_work``, ``llm_contract``),
  and ``check_outbox``: units of work, crashing relays and a failing queue
  (``OutageQueue``) deliver every committed message once, in order, and nothing else.
- ``OpenAITestServer``: a local OpenAI-compatible HTTP server with scripted replies and
  faults, so the OpenAI adapter is tested with no network.
- Fault tools: ``TcpFaultProxy`` (cut, stall or blackhole a loopback connection) and
  ``throwaway_redis`` (a killable ``redis-server`` on a free port), ``throwaway_cluster``
  (a Redis Cluster of three primaries and three replicas on free ports),
  ``throwaway_sentinel`` (one primary, one replica and three sentinels on free ports).
- ``require_server``: the URL of a real server for a test, or a skip (a failure with
  ``PORTSIDE_REQUIRE_SERVICES=1``); ``proxied_url``: that URL pointed at a proxy, with
  its credentials and database kept.

Ships in the package so users can run it against their own adapters. Importing it needs
the ``testing`` extra (hypothesis and pytest).
"""

from portside.adapters._extras import require

require("hypothesis", "testing")
require("pytest", "testing")

from portside.adapters.testing._async_bridge import (  # noqa: E402 - after the extra check
    BlockingCache,
    BlockingLLM,
    BlockingLockingCache,
    BlockingQueue,
    EventLoopThread,
)
from portside.adapters.testing._async_uow_bridge import (  # noqa: E402 - after the extra check
    BlockingRepository,
    BlockingUnitOfWork,
)
from portside.adapters.testing._cache_kit import (  # noqa: E402 - after the extra check
    CacheContract,
    CacheTarget,
    cache_contract,
    run_cache_contract,
)
from portside.adapters.testing._fault_proxy import (  # noqa: E402 - after the extra check
    Direction,
    ProxyMode,
    ProxyStats,
    TcpFaultProxy,
)
from portside.adapters.testing._llm_gateway_kit import (  # noqa: E402 - after the extra check
    FallbackFactory,
    GatewayContract,
    GatewayKitOptions,
    LimiterFactory,
    gateway_contract,
    run_gateway_contract,
)
from portside.adapters.testing._llm_kit import (  # noqa: E402 - after the extra check
    Collected,
    LLMContract,
    LLMFactory,
    LLMKitOptions,
    LLMScript,
    collect_stream,
    fake_llm_subject,
    llm_contract,
    run_llm_contract,
)
from portside.adapters.testing._llm_strategies import (  # noqa: E402 - after the extra check
    INVALID_CHAT,
    INVALID_EMBED,
    ScriptedReply,
    chat_requests,
    embed_texts,
    replies,
    stream_texts,
)
from portside.adapters.testing._openai_answers import (  # noqa: E402 - after the extra check
    Behaviour,
    Delay,
    EchoKey,
    HttpError,
    KeepAliveForever,
    RawBody,
    RedirectLoop,
    Reply,
    StreamFault,
    Trickle,
    chat_body,
    default_reply,
    embeddings_body,
    error_body,
    sse_events,
)
from portside.adapters.testing._openai_http import RecordedRequest  # noqa: E402 - after the extra check
from portside.adapters.testing._openai_server import OpenAITestServer  # noqa: E402 - after the extra check
from portside.adapters.testing._outage_queue import (  # noqa: E402 - after the extra check
    OutageMode,
    OutageQueue,
)
from portside.adapters.testing._outbox_kit import (  # noqa: E402 - after the extra check
    OutboxBackend,
    OutboxContract,
    RelayFactory,
    RelayLike,
    SimulatedCrash,
    check_outbox,
    outbox_relay,
)
from portside.adapters.testing._queue_faults import (  # noqa: E402 - after the extra check
    MemoryQueueFaults,
    QueueFaults,
    RedisQueueFaults,
)
from portside.adapters.testing._queue_kit import (  # noqa: E402 - after the extra check
    KIT_OPTIONS,
    QueueContract,
    QueueFactory,
    check_queue_contract,
)
from portside.adapters.testing._services import (  # noqa: E402 - after the extra check
    DEFAULT_MARIADB_URL,
    DEFAULT_POSTGRES_URL,
    DEFAULT_REDIS_URL,
    proxied_url,
    require_server,
    services_required,
    unreachable_reason,
)
from portside.adapters.testing._throwaway_cluster import (  # noqa: E402 - after the extra check
    ThrowawayCluster,
    throwaway_cluster,
)
from portside.adapters.testing._throwaway_redis import (  # noqa: E402 - after the extra check
    FaultToolError,
    ThrowawayRedis,
    free_port,
    throwaway_redis,
)
from portside.adapters.testing._throwaway_sentinel import (  # noqa: E402 - after the extra check
    ThrowawaySentinel,
    throwaway_sentinel,
)
from portside.adapters.testing._uow_async_backends import (  # noqa: E402 - after the extra check
    AsyncMemoryBackend,
    AsyncSqlBackend,
    async_memory_backend,
    async_sqlalchemy_backend,
)
from portside.adapters.testing._uow_backends import (  # noqa: E402 - after the extra check
    KitEntity,
    KitSchema,
    MemoryBackend,
    SqlBackend,
    UowBackend,
    kit_entities,
    kit_schema,
    memory_backend,
    sqlalchemy_backend,
)
from portside.adapters.testing._uow_kit import (  # noqa: E402 - after the extra check
    UowContract,
    check_unit_of_work,
)

__all__ = [
    "DEFAULT_MARIADB_URL",
    "DEFAULT_POSTGRES_URL",
    "DEFAULT_REDIS_URL",
    "INVALID_CHAT",
    "INVALID_EMBED",
    "KIT_OPTIONS",
    "AsyncMemoryBackend",
    "AsyncSqlBackend",
    "Behaviour",
    "BlockingCache",
    "BlockingLLM",
    "BlockingLockingCache",
    "BlockingQueue",
    "BlockingRepository",
    "BlockingUnitOfWork",
    "CacheContract",
    "CacheTarget",
    "Collected",
    "Delay",
    "Direction",
    "EchoKey",
    "EventLoopThread",
    "FallbackFactory",
    "FaultToolError",
    "GatewayContract",
    "GatewayKitOptions",
    "HttpError",
    "KeepAliveForever",
    "KitEntity",
    "KitSchema",
    "LLMContract",
    "LLMFactory",
    "LLMKitOptions",
    "LLMScript",
    "LimiterFactory",
    "MemoryBackend",
    "MemoryQueueFaults",
    "OpenAITestServer",
    "OutageMode",
    "OutageQueue",
    "OutboxBackend",
    "OutboxContract",
    "ProxyMode",
    "ProxyStats",
    "QueueContract",
    "QueueFactory",
    "QueueFaults",
    "RawBody",
    "RecordedRequest",
    "RedirectLoop",
    "RedisQueueFaults",
    "RelayFactory",
    "RelayLike",
    "Reply",
    "ScriptedReply",
    "SimulatedCrash",
    "SqlBackend",
    "StreamFault",
    "TcpFaultProxy",
    "ThrowawayCluster",
    "ThrowawayRedis",
    "ThrowawaySentinel",
    "Trickle",
    "UowBackend",
    "UowContract",
    "async_memory_backend",
    "async_sqlalchemy_backend",
    "cache_contract",
    "chat_body",
    "chat_requests",
    "check_outbox",
    "check_queue_contract",
    "check_unit_of_work",
    "collect_stream",
    "default_reply",
    "embed_texts",
    "embeddings_body",
    "error_body",
    "fake_llm_subject",
    "free_port",
    "gateway_contract",
    "kit_entities",
    "kit_schema",
    "llm_contract",
    "memory_backend",
    "outbox_relay",
    "proxied_url",
    "replies",
    "require_server",
    "run_cache_contract",
    "run_gateway_contract",
    "run_llm_contract",
    "services_required",
    "sqlalchemy_backend",
    "sse_events",
    "stream_texts",
    "throwaway_cluster",
    "throwaway_redis",
    "throwaway_sentinel",
    "unreachable_reason",
]
