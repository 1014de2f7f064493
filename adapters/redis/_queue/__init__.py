"""The Redis queue: ``RedisQueue`` and the Lua scripts it runs, one per operation.

Keys are ``<namespace>:<len(topic)>:{<topic>}:...``; group keys add
``:g:<len(group)>:<group>:<kind>``. The lengths make every key decode to exactly one
(topic, group) pair whatever the names contain, and the braces (a hash tag) keep all
keys of a topic in one cluster slot, so every script touches one slot (a topic that
begins with ``}`` is tagged ``{=<topic>}``, since ``{}`` is no tag). On Redis Cluster
the queue runs on redis-py's ``RedisCluster``, which routes each call by its keys.
Per topic: ``S`` the stream and ``G`` the set of group names. Per group: ``L`` a sorted
set of leases scored by the time (on the adapter's clock) they fall due, ``H`` a hash
from message id to ``consumer<TAB>receipt`` (empty receipt once nacked), ``F`` the
leases of last allowed deliveries (scored like ``L``: when one falls due the message is
a dead letter) and ``D`` a stream of dead letters. Members of ``L`` and ``F`` name
stream ids zero-padded, so leases due at the same time sort by id as numbers.

Leases come in two shapes. The messages one ``receive`` reads fresh from the stream
share one **batch lease**: a single member of ``L`` named ``<padded first id>~<random>/
<last id>/<consumer>``; each of those deliveries' receipt is that name followed by
``#<its id>``. Every pending entry of the group between the two ids came from that
read, so one member (no per-entry write) covers the batch. A message gets its own
**lease record** (member ``<padded id>`` of ``L`` plus a field of ``H``) when it is
redelivered, nacked or extended, or when its batch lease falls due and it is not
redelivered at once; a record always overrides the batch lease. Attempt counts are the
consumer group's own delivery counters.

Deleting acked entries: several groups read one stream, and an entry may only be
XDEL'd once every group is done with it. A group still needs an entry when the entry is
in its pending list or beyond its ``last-delivered-id``; ``release`` (in
``prelude.lua``) checks the other groups (none to check for a topic with one group, the
common case) and deletes the entry when none needs it. Redis 8.2's ``XACKDEL ... ACKED``
does the same server-side; it is not used because Redis 7.0 must be served.

Modules: the operations, written once without I/O as generators of steps (``_steps``):
``_publish``, ``_receive`` and ``_settle``, on ``_core`` (fields, script registration,
caches, the helpers operations share); ``_scripts`` (loading the ``.lua`` files, named
replies), ``_layout`` (keys, entry fields, decoding), ``_durability`` (what the server
can promise), ``_confirm`` (durable publish) and ``_nodes`` (which server of a cluster
a step needs). ``_adapter`` (``RedisQueue``) sends the
steps with the blocking driver ``_drive``; ``_async_adapter`` (``AsyncRedisQueue``, not
imported here, so the sync queue never loads the async modules) with ``_async_drive``.
Results are tested with ``type(result) is Failure``, as in ``portside.ports.queue_rules``.
"""

from portside.adapters.redis._queue._adapter import RedisQueue
from portside.adapters.redis._queue._drive import queue_durability
from portside.adapters.redis._queue._durability import QueueDurability, QueueNotDurable

__all__ = ["QueueDurability", "QueueNotDurable", "RedisQueue", "queue_durability"]
