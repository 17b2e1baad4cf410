"""The accuracy gate: compare an artifact's probabilities with the Keras reference's.

Pure functions over arrays, so they are easy to test; ``export.evaluate`` produces the arrays by
running each artifact through the runtime's own backends. Accuracies and recalls are fractions
(0..1); drops are percentage points (the unit of the limits); agreement limits are percent.
"""

from __future__ import annotations

import numpy as np

from export.config import GatePolicy

_EPS = 1e-9  # keep 1.0000000001-point drops from failing a 1.0-point limit


def confusion_matrix(pred: np.ndarray, y: np.ndarray, n: int) -> list[list[int]]:
    """``[true][predicted]`` counts."""
    m = np.zeros((n, n), dtype=np.int64)
    np.add.at(m, (y, pred), 1)
    return m.tolist()


def per_class_recall(pred: np.ndarray, y: np.ndarray, labels: list[str]) -> dict[str, float | None]:
    """Recall per class (``None`` for a class absent from ``y``)."""
    return {c: (float(np.mean(pred[y == i] == i)) if np.any(y == i) else None) for i, c in enumerate(labels)}


def classification_summary(probs: np.ndarray, y: np.ndarray, labels: list[str]) -> dict:
    """Top-1, per-class recall and confusion matrix of one set of predictions."""
    pred = probs.argmax(axis=1)
    return {"top1": float(np.mean(pred == y)), "per_class_recall": per_class_recall(pred, y, labels),
            "confusion_matrix": confusion_matrix(pred, y, len(labels)), "n": int(len(y))}


def gate_metrics(probs: np.ndarray, ref_probs: np.ndarray, y: np.ndarray, labels: list[str]) -> dict:
    """Every gate number of one artifact against the reference on the same images."""
    mine = classification_summary(probs, y, labels)
    ref = classification_summary(ref_probs, y, labels)
    recall_drop = {c: round((ref["per_class_recall"][c] - r) * 100, 6)
                   for c, r in mine["per_class_recall"].items() if r is not None}
    diff = np.abs(probs.astype(np.float64) - ref_probs.astype(np.float64))
    return {**mine,
            "top1_drop": round((ref["top1"] - mine["top1"]) * 100, 6),
            "recall_drop": recall_drop,
            "agreement": float(np.mean(probs.argmax(1) == ref_probs.argmax(1))),
            "mean_abs_dprob": float(diff.mean()), "max_abs_dprob": float(diff.max())}


def verdict(metrics: dict, reference: dict, precision: str, policy: GatePolicy) -> tuple[str, list[str]]:
    """``("passed"|"rejected", reasons)``; each reason says by how much a limit was missed."""
    reasons = []
    if metrics["top1_drop"] > policy.max_top1_drop + _EPS:
        reasons.append(f"top-1 drops {metrics['top1_drop']:.2f} points (reference {reference['top1']:.2%} -> "
                       f"{metrics['top1']:.2%}); limit {policy.max_top1_drop:.2f}")
    for c, drop in metrics["recall_drop"].items():
        if drop > policy.max_recall_drop + _EPS:
            before, after = reference["per_class_recall"][c], metrics["per_class_recall"][c]
            reasons.append(f"recall of {c!r} drops {drop:.2f} points ({before:.2%} -> {after:.2%}); "
                           f"limit {policy.max_recall_drop:.2f}")
    floor = policy.min_agreement(precision)
    if metrics["agreement"] * 100 < floor - _EPS:
        reasons.append(f"agrees with the reference on {metrics['agreement']:.2%} of test images; "
                       f"{precision} needs >= {floor:.2f}%")
    return ("rejected" if reasons else "passed"), reasons
