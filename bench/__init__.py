"""Benchmarks for Credence: ``python -m bench.throughput`` (``make bench``).

Benchmarks print figures and assert nothing; the tests live under ``tests/``.
"""
