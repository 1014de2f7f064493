"""Memory: RedisCache reads a large value holding at most two copies of it at once."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid

import pytest

pytestmark = [
    pytest.mark.services,
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status"),
]

# Run in a fresh process: the peak (VmHWM) is a high-water mark of the whole process.
_PROBE = textwrap.dedent(
    """
    import sys
    from portside.adapters.redis import RedisCache

    def high_water():
        # VmHWM is this process's own peak (ru_maxrss keeps the parent's across exec)
        with open("/proc/self/status") as status:
            line = next(l for l in status if l.startswith("VmHWM:"))
        return int(line.split()[1]) * 1024

    size = int(sys.argv[3])
    cache = RedisCache.from_url(sys.argv[1], namespace=sys.argv[2])
    cache.get("small").unwrap()  # connect and warm up before the measurement starts
    before = high_water()
    value = cache.get("big").unwrap()
    after = high_water()
    assert value is not None and len(value) == size
    print((after - before) / size)
    """
)


def test_a_64_mib_get_peaks_below_three_copies(redis_url: str) -> None:
    """Reading a 64 MiB value grows the reading process by less than 2.5 times the value."""
    from portside.adapters.redis import RedisCache

    size = 64 * 1024 * 1024
    namespace = f"ps-mem-{uuid.uuid4().hex[:8]}"
    writer = RedisCache.from_url(redis_url, namespace=namespace)
    try:
        writer.set("big", b"x" * size).unwrap()  # written here, so the reader's peak is its own
        result = subprocess.run(
            [sys.executable, "-c", _PROBE, redis_url, namespace, str(size)],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
    finally:
        writer.clear()
        writer.close()
    growth = float(result.stdout.strip())
    assert growth < 2.5, f"peak memory grew by {growth:.2f} times the value"
