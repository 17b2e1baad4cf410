"""Rates with their uncertainty: a count ``k of n``, its point value and a Wilson score interval.

Every rate this project reports about a model (accuracy, recall, false alarms, agreement with the
reference) is measured on a few hundred images at most, so the point value alone claims more than
it knows: 240 of 240 correct is compatible with a true accuracy of 98.4%. The Wilson interval is
used because it stays inside [0, 1] and behaves at k = 0 and k = n, where the textbook normal
approximation collapses to a zero-width interval (Brown, Cai & DasGupta 2001 recommend it for
small n).
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

CONFIDENCE = 0.95


def wilson_interval(k: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Two-sided Wilson score interval of the proportion ``k / n``; ``(0, 1)`` when ``n == 0``."""
    if not 0 <= k <= n:
        raise ValueError(f"a rate needs 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return 0.0, 1.0
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # Clamp float residue so that k = n gives exactly 1.0 and k = 0 exactly 0.0.
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == n else min(1.0, centre + half)
    return low, high


def rate(k: int, n: int, confidence: float = CONFIDENCE) -> dict:
    """JSON-ready ``{"k", "n", "value", "low", "high", "confidence", "method"}`` (value None if n == 0)."""
    low, high = wilson_interval(int(k), int(n), confidence)
    return {"k": int(k), "n": int(n), "value": (k / n) if n else None, "low": round(low, 6),
            "high": round(high, 6), "confidence": confidence, "method": "wilson"}


def rate_of(mask) -> dict:
    """:func:`rate` of a boolean array: how many are true, of how many."""
    mask = np.asarray(mask, dtype=bool)
    return rate(int(mask.sum()), int(mask.size))


def format_rate(r: dict | None) -> str:
    """``"98.33% (236/240; 95% CI 95.8-99.4%)"``, or ``"-"`` for a missing rate."""
    if not r or not r["n"]:
        return "-"
    return (f"{r['value']:.2%} ({r['k']}/{r['n']}; {r['confidence']:.0%} CI "
            f"{r['low'] * 100:.1f}-{r['high'] * 100:.1f}%)")


def needed_for_rate(target: float) -> int:
    """Smallest n at which ``0 of n`` has an upper 95% bound at or under ``target`` (the rule of three).

    With no event among n trials the one-sided 95% upper bound of the rate is about 3/n, so fewer
    than 3/target trials cannot show that a rate is under ``target`` even when nothing happens.
    """
    if not 0 < target < 1:
        raise ValueError(f"a target rate must be in (0, 1), got {target}")
    return math.ceil(-math.log(1 - CONFIDENCE) / target)


def needed_rate(n: int) -> float:
    """The smallest target rate that ``n`` trials can show (inverse of :func:`needed_for_rate`)."""
    return -math.log(1 - CONFIDENCE) / max(n, 1)
