"""In-memory fakes of every port. For tests and the embedded defaults.

Each fake is the reference model of its port: the contract kit runs the real adapters
against it. They encode through the same codec as the real adapters, so a value that
would fail in production fails here too.
"""

from adapters.memory.clock import ManualClock, SystemClock

__all__ = ["ManualClock", "SystemClock"]
