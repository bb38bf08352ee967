"""Benchmarks: they print tables, they never fail CI (`python -m bench`)."""
