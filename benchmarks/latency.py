"""Latency figures of one case: percentiles, a bootstrap interval for p50 and p90, a CDF sketch.

The bootstrap resamples the per-query latencies (``resamples`` times, fixed seed) and takes the
2.5th and 97.5th percentiles of the resampled statistic: the interval a second run on the same
machine would most likely land in. It says nothing about another machine. Past ``BOOTSTRAP_MAX``
samples (a fast engine over 60 s) it would cost seconds per case for nothing: there the interval is
the distribution-free one of order statistics (the ranks ``n*q -/+ 1.96*sqrt(n*q*(1-q))``), which is
what the bootstrap of a quantile converges to for large ``n``.
"""

from __future__ import annotations

import numpy as np

QUANTILES = np.linspace(0, 100, 101)  # the CDF sketch kept in results (percent)
BOOTSTRAP_MAX = 100_000


def order_statistic_ci(samples_ms: np.ndarray, q: float) -> list[float]:
    """Distribution-free 95% interval of the ``q``-th percentile (normal approximation of the ranks)."""
    a = np.sort(np.asarray(samples_ms, dtype=np.float64))
    n, f = a.size, q / 100.0
    half = 1.96 * np.sqrt(n * f * (1 - f))
    lo, hi = int(np.floor(n * f - half)), int(np.ceil(n * f + half))
    return [float(a[max(lo, 0)]), float(a[min(hi, n - 1)])]


def bootstrap_ci(samples_ms: np.ndarray, q: float, resamples: int = 400, seed: int = 0) -> list[float]:
    """95% bootstrap interval of the ``q``-th percentile of ``samples_ms``."""
    a = np.asarray(samples_ms, dtype=np.float64)
    if a.size < 2:
        return [float(a[0]), float(a[0])] if a.size else [float("nan")] * 2
    if a.size > BOOTSTRAP_MAX:
        return order_statistic_ci(a, q)
    rng = np.random.default_rng(seed)
    # Resample in chunks: 400 x 100k samples would be 320 MB at once.
    stats = np.concatenate(
        [
            np.percentile(a[rng.integers(0, a.size, (chunk, a.size))], q, axis=1)
            for chunk in _chunks(resamples, max(1, 4_000_000 // a.size))
        ]
    )
    return [float(np.percentile(stats, 2.5)), float(np.percentile(stats, 97.5))]


def _chunks(total: int, size: int) -> list[int]:
    return [min(size, total - i) for i in range(0, total, size)]


def latency_summary(samples_ms: list[float] | np.ndarray) -> dict:
    """p50/p90/p95/p99/max/mean/std (ms), intervals for p50 and p90, throughput and a 101-point CDF."""
    a = np.asarray(samples_ms, dtype=np.float64)
    if a.size == 0:
        return {"n": 0}
    pct = {f"p{q}": float(np.percentile(a, q)) for q in (50, 90, 95, 99)}
    return {
        "n": int(a.size),
        **pct,
        "min": float(a.min()),
        "max": float(a.max()),
        "mean": float(a.mean()),
        "std": float(a.std()),
        "p50_ci": bootstrap_ci(a, 50),
        "p90_ci": bootstrap_ci(a, 90, seed=1),
        "throughput_fps": float(1e3 / a.mean()) if a.mean() > 0 else None,
        "cdf_ms": [round(float(v), 5) for v in np.percentile(a, QUANTILES)],
    }
