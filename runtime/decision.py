"""Per-frame decisions: per-class defect thresholds, and how export chooses them.

Semantics (shared by the export gate and the device): each defect class ``c`` has a threshold
``t_c``; a frame is flagged when some defect class reaches its threshold (``p_c >= t_c``), and
it is reported as the class with the highest ``p_c / t_c``. The "ok" class has no threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Decision:
    """One frame's verdict."""

    flagged: bool
    label: str  # the defect class when flagged, else the top-1 label
    score: float  # probability of ``label``


class Decider:
    """Applies per-class thresholds to probability vectors."""

    def __init__(self, labels: list[str], ok_label: str, thresholds: dict[str, float]):
        if ok_label not in labels:
            raise ValueError(f"ok label {ok_label!r} is not among the labels {labels}")
        missing = [c for c in labels if c != ok_label and c not in thresholds]
        if missing:
            raise ValueError(f"no decision threshold for defect classes {missing}; "
                             "pass them (CLASS=VALUE) or use a bundle that has them")
        self.labels = list(labels)
        self.ok_index = labels.index(ok_label)
        # ok gets +inf so that it can never be "flagged"; divisions give ratios to thresholds.
        self._thr = np.array([np.inf if c == ok_label else float(thresholds[c]) for c in labels],
                             dtype=np.float64)

    def flags(self, probs: np.ndarray) -> np.ndarray:
        """Boolean flag per row of an ``(N, C)`` probability array."""
        return (probs >= self._thr).any(axis=-1)

    def decide(self, probs: np.ndarray) -> Decision:
        """Verdict for one ``(C,)`` probability vector."""
        ratios = probs / self._thr
        k = int(np.argmax(ratios))
        if ratios[k] >= 1.0:
            return Decision(True, self.labels[k], float(probs[k]))
        top = int(np.argmax(probs))
        return Decision(False, self.labels[top], float(probs[top]))


def _threshold_for_class(ok_scores: np.ndarray, pos_scores: np.ndarray, budget: float) -> dict:
    """Threshold maximizing recall with false-alarm rate <= budget, centred in the free margin."""
    ok_sorted = np.sort(ok_scores)[::-1]
    allowed = int(np.floor(budget * len(ok_sorted) + 1e-9))
    # Lowest admissible threshold: just above the (allowed+1)-th highest ok score.
    t_lo = float(np.nextafter(ok_sorted[allowed], 1.0)) if allowed < len(ok_sorted) else 0.0
    above = pos_scores[pos_scores >= t_lo]
    # Highest threshold with the same recall: the weakest positive still caught.
    t_hi = float(above.min()) if above.size else 1.0
    t = (t_lo + t_hi) / 2.0
    return {
        "threshold": t,
        "val_false_alarm_rate": float(np.mean(ok_scores >= t)) if ok_scores.size else 0.0,
        "val_recall": float(np.mean(pos_scores >= t)) if pos_scores.size else None,
        "margin": [t_lo, t_hi],
    }


def choose_thresholds(probs: np.ndarray, y: np.ndarray, labels: list[str], ok_label: str,
                      target_false_alarm_rate: float = 0.01) -> tuple[dict[str, float], dict]:
    """Per-class thresholds from validation probabilities.

    The false-alarm budget is split evenly over the defect classes, so the union bound keeps the
    overall rate on ok parts at or under the target; within that budget each class's recall is
    maximized and the threshold placed mid-way in the remaining margin (robust to score shifts).
    Returns ``(thresholds, details)``.
    """
    ok = labels.index(ok_label)
    defects = [i for i in range(len(labels)) if i != ok]
    budget = target_false_alarm_rate / max(1, len(defects))
    thresholds, details = {}, {}
    for i in defects:
        info = _threshold_for_class(probs[y == ok, i], probs[y == i, i], budget)
        thresholds[labels[i]] = info["threshold"]
        details[labels[i]] = info
    flagged = Decider(labels, ok_label, thresholds).flags(probs)
    details["overall"] = {
        "target_false_alarm_rate": target_false_alarm_rate,
        "val_false_alarm_rate": float(flagged[y == ok].mean()) if (y == ok).any() else 0.0,
        "val_defect_recall": float(flagged[y != ok].mean()) if (y != ok).any() else None,
    }
    return thresholds, details
