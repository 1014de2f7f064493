"""The contract kit: property-based state machines that prove an adapter equals its fake.

Ships in the package so users can run it against their own adapters. Importing it needs
the ``testing`` extra (hypothesis and pytest).
"""

__all__: list[str] = []
