"""The accuracy gate: compare an artifact's probabilities with the Keras reference's.

Pure functions over arrays, so they are easy to test; ``export.evaluate`` produces the arrays by
running each artifact through the runtime's own backends. Accuracies and recalls are fractions
(0..1); drops are percentage points (the unit of the limits); agreement limits are percent.
Each rate has a sibling ``<name>_ci`` with its count (k of n) and 95% Wilson interval
(``runtime.rates``): a few hundred test images cannot pin a rate down to the point value.
"""

from __future__ import annotations

import numpy as np

from export.config import GatePolicy
from runtime.rates import rate_of

_EPS = 1e-9  # keep 1.0000000001-point drops from failing a 1.0-point limit


def confusion_matrix(pred: np.ndarray, y: np.ndarray, n: int) -> list[list[int]]:
    """``[true][predicted]`` counts."""
    m = np.zeros((n, n), dtype=np.int64)
    np.add.at(m, (y, pred), 1)
    return m.tolist()


def per_class_recall(pred: np.ndarray, y: np.ndarray, labels: list[str]) -> dict[str, float | None]:
    """Recall per class (``None`` for a class absent from ``y``)."""
    return {c: (float(np.mean(pred[y == i] == i)) if np.any(y == i) else None) for i, c in enumerate(labels)}


def _summary(pred: np.ndarray, y: np.ndarray, labels: list[str]) -> dict:
    return {"top1": float(np.mean(pred == y)), "top1_ci": rate_of(pred == y),
            "per_class_recall": per_class_recall(pred, y, labels),
            "per_class_recall_ci": {c: rate_of(pred[y == i] == i)
                                    for i, c in enumerate(labels) if np.any(y == i)},
            "confusion_matrix": confusion_matrix(pred, y, len(labels)), "n": int(len(y))}


def classification_summary(probs: np.ndarray, y: np.ndarray, labels: list[str]) -> dict:
    """Top-1 and per-class recall (each with its count and 95% interval), and the confusion matrix."""
    return _summary(probs.argmax(axis=1), y, labels)


def resolve_ties(probs: np.ndarray, ref_probs: np.ndarray, tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    """The artifact's predicted classes, and a mask of the images settled as ties.

    Where every class probability is within ``tolerance`` of the reference's, the outputs are the same
    numbers up to float rounding and any argmax difference is a tie broken by the CPU's kernels, not a
    disagreement: the artifact gets the reference's class there. Any larger difference stands.
    """
    pred, ref_pred = probs.argmax(axis=1), ref_probs.argmax(axis=1)
    close = np.abs(probs.astype(np.float64) - ref_probs.astype(np.float64)).max(axis=1) <= tolerance
    ties = close & (pred != ref_pred)
    return np.where(ties, ref_pred, pred), ties


# A reference top-2 margin below this is a near coin-flip: any conversion may decide it the other way.
THIN_MARGIN = 0.2


def top2_margin(probs: np.ndarray) -> np.ndarray:
    """Per image, the top class's probability minus the runner-up's (0 = a tie, 1 = certain)."""
    top = np.sort(probs, axis=1)
    return top[:, -1] - top[:, -2] if probs.shape[1] > 1 else np.ones(len(probs))


def margin_diagnosis(name: str, metrics: dict) -> str | None:
    """Words for a rejected artifact whose flips sit on images the reference itself barely decides."""
    flips, thin = metrics.get("flips", 0), metrics.get("thin_margin_flips", 0)
    if not flips or thin * 2 < flips:
        return None
    return (f"{name}: {thin} of its {flips} disagreements are on images the reference decides by a top-2 "
            f"margin under {metrics['thin_margin']:g} ({metrics['thin_margin_images']} such images of "
            f"{metrics['n']}): the model's margins are too thin for this precision (the conversion is not "
            "broken). "
            "Fix: train on more photos of the confused classes (see the confusion matrix) so that the model "
            "decides them clearly, or deploy a passing fp32 artifact")


def line_changes(flags: np.ndarray, ref_flags: np.ndarray, y: np.ndarray, ok_index: int) -> dict:
    """How an artifact's line decisions (flag or pass, each model at its own thresholds) differ from the
    reference's on the same images: the consequence on a line that flags parts, whatever the classes."""
    defect = y != ok_index
    return {"n": int(len(y)), "changed": int((flags != ref_flags).sum()),
            "flagged": int(flags.sum()), "reference_flagged": int(ref_flags.sum()),
            "defects_passed": int((ref_flags & ~flags & defect).sum()),  # the reference flags them
            "defects_caught": int((~ref_flags & flags & defect).sum()),  # the reference passes them
            "good_flagged": int((~ref_flags & flags & ~defect).sum()),
            "good_passed": int((ref_flags & ~flags & ~defect).sum())}


def line_diagnosis(name: str, metrics: dict) -> str | None:
    """Words for a rejected artifact on what its disagreements do to the line's flag/pass decisions.

    The gate judges classes (top-1 and per-class recall), as a line that sorts defects by type needs;
    a line that only flags parts cares whether the same parts are flagged, which is a different count.
    """
    c = metrics.get("line_changes")
    if not c or not metrics.get("flips"):
        return None
    if not c["changed"]:
        return (f"{name}: its {metrics['flips']} class disagreement(s) leave the line's decisions as they "
                f"were: at its own thresholds it flags the same {c['flagged']} of {c['n']} test parts as the "
                "reference and passes the rest. It stays rejected (a line that sorts defects by type would "
                "see the flips); a line that only flags parts can run it with "
                f"`runtime.camera --allow-rejected`, knowing that this was measured on {c['n']} test photos")
    moved = [f"{c[k]} {words}" for k, words in (
        ("defects_passed", "defect(s) the reference flags passed"),
        ("good_flagged", "good part(s) the reference passes flagged"),
        ("defects_caught", "defect(s) the reference passes caught"),
        ("good_passed", "good part(s) the reference flags passed")) if c[k]]
    return (f"{name}: at its own thresholds it decides {c['changed']} of {c['n']} test parts differently "
            f"from the reference: {', '.join(moved)}")


def diagnoses(name: str, metrics: dict) -> list[str]:
    """What a rejected artifact's disagreements are (thin margins) and what they do on the line."""
    return [d for d in (margin_diagnosis(name, metrics), line_diagnosis(name, metrics)) if d]


def gate_metrics(probs: np.ndarray, ref_probs: np.ndarray, y: np.ndarray, labels: list[str],
                 tie_tolerance: float = 0.0) -> dict:
    """Every gate number of one artifact against the reference on the same images.

    Argmax differences on images whose outputs match within ``tie_tolerance`` are ties (see
    :func:`resolve_ties`); how many were settled so is reported as ``ties``.
    """
    pred, ties = resolve_ties(probs, ref_probs, tie_tolerance)
    mine = _summary(pred, y, labels)
    ref = classification_summary(ref_probs, y, labels)
    recall_drop = {c: round((ref["per_class_recall"][c] - r) * 100, 6)
                   for c, r in mine["per_class_recall"].items() if r is not None}
    finite = np.isfinite(probs).all(axis=1)
    diff = np.abs(probs.astype(np.float64) - ref_probs.astype(np.float64))[finite]
    agree = pred == ref_probs.argmax(1)
    thin = top2_margin(ref_probs) < THIN_MARGIN
    return {**mine,
            "top1_drop": round((ref["top1"] - mine["top1"]) * 100, 6),
            "recall_drop": recall_drop,
            "agreement": float(np.mean(agree)), "agreement_ci": rate_of(agree),
            "ties": int(ties.sum()), "tie_tolerance": tie_tolerance,
            "non_finite": int((~finite).sum()),  # NaN/inf outputs: argmax of them means nothing
            "flips": int((~agree).sum()), "thin_margin": THIN_MARGIN,
            "thin_margin_images": int(thin.sum()), "thin_margin_flips": int((~agree & thin).sum()),
            "mean_abs_dprob": float(diff.mean()) if diff.size else None,
            "max_abs_dprob": float(diff.max()) if diff.size else None}


def verdict(metrics: dict, reference: dict, precision: str, policy: GatePolicy) -> tuple[str, list[str]]:
    """``("passed"|"rejected", reasons)``; each reason says by how much a limit was missed."""
    reasons = []
    if metrics.get("non_finite"):
        reasons.append(f"gives NaN or infinite probabilities on {metrics['non_finite']} of {metrics['n']} "
                       "test images (an overflow in the converted graph: check the activations' range on "
                       "raw 0..255 inputs)")
    if metrics["top1_drop"] > policy.max_top1_drop + _EPS:
        reasons.append(f"top-1 drops {metrics['top1_drop']:.2f} points (reference {reference['top1']:.2%} -> "
                       f"{metrics['top1']:.2%}); limit {policy.max_top1_drop:.2f}")
    for c, drop in metrics["recall_drop"].items():
        if drop > policy.max_recall_drop + _EPS:
            before, after = reference["per_class_recall"][c], metrics["per_class_recall"][c]
            reasons.append(f"recall of {c!r} drops {drop:.2f} points ({before:.2%} -> {after:.2%}); "
                           f"limit {policy.max_recall_drop:.2f}")
    floor = policy.min_agreement(precision)
    ci = metrics["agreement_ci"]
    if policy.agreement_bound == "lower" and ci["low"] * 100 < floor - _EPS:
        reasons.append(f"agrees with the reference on {ci['k']} of {ci['n']} test images, 95% interval "
                       f"{ci['low']:.2%}-{ci['high']:.2%}; {precision} needs a lower bound >= {floor:.2f}% "
                       f"(agreement_bound=lower)")
    elif metrics["agreement"] * 100 < floor - _EPS:
        reasons.append(f"agrees with the reference on {metrics['agreement']:.2%} of test images "
                       f"({ci['k']} of {ci['n']}); {precision} needs >= {floor:.2f}%")
    return ("rejected" if reasons else "passed"), reasons
