"""The Redis cache: ``RedisCache`` and the Lua scripts of its atomic steps.

Every key is stored as ``<namespace>|<key>``. ``delete_if_equal``, ``get_or_lock`` and
``set_and_unlock`` are one Lua script each (the ``.lua`` files beside this module), so
each is one atomic step and one round trip.

Modules: ``_adapter`` (the port's operations), ``_scripts`` (loading the ``.lua``
files, replies decoded into named values).
"""

from portside.adapters.redis._cache._adapter import RedisCache

__all__ = ["RedisCache"]
