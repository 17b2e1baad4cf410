"""Benchmarks: scripts run as ``python -m benchmarks.<name>``; each writes a results JSON."""
