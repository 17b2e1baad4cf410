"""Whether a lower val loss is evidence: the paired gain over the val images against its standard error.

Stage 2 (fine-tuning) is kept only when its model beats the head's on validation by more than the val
split can resolve. Both models score the same images, so the per-image loss differences are paired:
their mean is the gain, their standard error says how much of it one or two images could make. On a
small val split whose images a model already gets right, the val loss measures confidence, and one
image's loss can carry the whole gain.

Measured on the hard steel variant (66 val images, 2-core AMD EPYC with AVX-512 VNNI, 2026-12-07): over
its five splits, the three runs whose fine-tuning had lowered the val loss did so by 0.09, 1.28 and 1.21
standard errors (one or two images each), and their int8 TFLite artifacts were all rejected by the
gate; the same runs stopped after the head passed on all five, at the same 981 of 1,000 hold-out defects
caught by the fp32 artifacts (see the README).
"""

from __future__ import annotations

import numpy as np

# One-sided 95%: the gain must be 1.645 standard errors, as a one-sided z-test at 5% would ask.
DEFAULT_MIN_EVIDENCE = 1.645


def paired_gain(before: np.ndarray, after: np.ndarray) -> dict:
    """``{gain, se, z, n}`` of ``after``'s per-image losses against ``before``'s (lower is better).

    ``gain`` is the mean drop in loss; ``se`` its standard error over the images; ``z`` their ratio
    (0 with no gain or fewer than 2 images; ``None`` when every image gained exactly as much, so the
    spread gives no scale).
    """
    diff = np.asarray(before, np.float64) - np.asarray(after, np.float64)
    n = len(diff)
    gain = float(diff.mean()) if n else 0.0
    se = float(diff.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0
    if gain <= 0 or n < 2:
        z = 0.0
    else:
        z = None if se <= 1e-9 else round(gain / se, 3)  # no spread beyond float rounding: no scale
    return {"gain": round(gain, 6), "se": round(se, 6), "z": z, "n": n}


def resolved(evidence: dict, min_z: float) -> bool:
    """True when the gain is positive and at least ``min_z`` standard errors (``min_z`` 0: any gain)."""
    return evidence["gain"] > 0 and (evidence["z"] is None or evidence["z"] >= min_z)
