"""The queue's Lua scripts, read from the ``.lua`` files beside this module, and their replies.

Every script but the two publish ones starts with ``prelude.lua`` (the helpers they
share); the text is put together here, once per process. Each script's reply is
decoded into a named value right where it arrives: a ``Settled`` outcome, a
``ReceiveReply`` or an ``AdoptPage``, so no caller reads a reply by position.
"""

from __future__ import annotations

import enum
import functools
from importlib import resources
from typing import Any, Final, NamedTuple

__all__ = ["SCRIPTS", "AdoptPage", "ReceiveReply", "Settled", "WakeUp", "script_text"]

#: Every queue script, by the name of its ``.lua`` file.
SCRIPTS: Final = (
    "ack",
    "ack_many",
    "adopt",
    "extend",
    "nack",
    "publish",
    "publish_many",
    "receive",
)
#: The scripts that do not need the shared helpers (they touch only the stream).
_STANDALONE: Final = frozenset({"publish", "publish_many"})


@functools.cache
def script_text(name: str) -> str:
    """The full Lua text of the script ``name`` (the prelude included where it is used)."""
    folder = resources.files(__package__)
    body = (folder / f"{name}.lua").read_text(encoding="utf-8")
    if name in _STANDALONE:
        return body
    return (folder / "prelude.lua").read_text(encoding="utf-8") + body


class Settled(enum.IntEnum):
    """What a settle script (``ack``, ``nack``, ``extend``) answered."""

    #: The message is pending, but this delivery was nacked or superseded.
    STALE = -1
    #: The message is not pending in the group (acked, dead-lettered, never delivered).
    NOT_PENDING = 0
    DONE = 1
    #: ``nack`` only: that was the last allowed delivery; the message is a dead letter.
    DEAD_LETTERED = 2

    @property
    def refused(self) -> bool:
        """Whether the script refused the delivery (it was not live)."""
        return self in (Settled.STALE, Settled.NOT_PENDING)


class WakeUp(NamedTuple):
    """What a ``receive(wait=)`` that found nothing blocks on."""

    #: The newest entry of the stream (``0-0`` for an empty one): wait for anything later.
    newest_id: bytes
    #: When the group's next lease or delay falls due (adapter clock), if any.
    next_due: float | None


class ReceiveReply(NamedTuple):
    """The receive script's reply."""

    #: ``id, fields, attempt, receipt`` per redelivered message, flat.
    redelivered: list[Any]
    #: The batch lease of the fresh messages (their receipt), empty when there are none.
    batch_lease: bytes
    #: ``id, fields`` per fresh message, flat.
    fresh: list[Any]
    #: Set only when nothing was delivered and the caller asked to wait.
    wake: WakeUp | None

    @classmethod
    def of(cls, reply: list[Any]) -> ReceiveReply:
        """Decode the script's raw reply."""
        again, lease, fresh, wake = reply
        woken = None
        if wake:
            newest, due = wake
            woken = WakeUp(newest, float(due) if due else None)
        return cls(again, lease, fresh, woken)

    @property
    def delivered(self) -> bool:
        """Whether any message was delivered."""
        return bool(self.redelivered or self.fresh)


class AdoptPage(NamedTuple):
    """One page of orphan adoption."""

    #: Where the next page starts; ``0-0`` after the last page.
    cursor: bytes
    #: How many pending entries without a lease this page made due.
    adopted: int

    @classmethod
    def of(cls, reply: list[Any]) -> AdoptPage:
        """Decode the script's raw reply."""
        cursor, adopted = reply
        return cls(cursor, int(adopted))

    @property
    def last(self) -> bool:
        """Whether this was the last page."""
        return self.cursor in (b"0-0", "0-0")
