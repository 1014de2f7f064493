"""Ratio benchmarks: each adapter against the raw client, interleaved in one run."""
