"""Per-frame decisions: per-class defect thresholds, and how export chooses them.

Semantics (shared by the export gate and the device): each defect class ``c`` has a threshold
``t_c``; a frame is flagged when some defect class reaches its threshold (``p_c >= t_c``), and
it is reported as the class with the highest ``p_c / t_c``. The "ok" class has no threshold.

Sorting (``ok_label`` None: a set without a good class, every class a label): every class has a
threshold, and "flagged" means a class was decided; a frame under every threshold stays undecided.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from runtime.fitness import LineTargets
from runtime.rates import needed_for_rate, needed_rate, rate_of

# The false-alarm rate on good parts that export's thresholds aim for unless told otherwise.
DEFAULT_TARGET_FALSE_ALARM_RATE = 0.01


@dataclass(frozen=True)
class Decision:
    """One frame's verdict."""

    flagged: bool
    label: str  # the defect class when flagged, else the top-1 label
    score: float  # probability of ``label``


class Decider:
    """Applies per-class thresholds to probability vectors."""

    def __init__(self, labels: list[str], ok_label: str | None, thresholds: dict[str, float]):
        if ok_label is not None and ok_label not in labels:
            raise ValueError(f"ok label {ok_label!r} is not among the labels {labels}")
        missing = [c for c in labels if c != ok_label and c not in thresholds]
        if missing:
            raise ValueError(f"no decision threshold for defect classes {missing}; "
                             "pass them (CLASS=VALUE) or use a bundle that has them")
        self.labels = list(labels)
        self.ok_index = None if ok_label is None else labels.index(ok_label)
        # ok gets +inf so that it can never be "flagged"; divisions give ratios to thresholds.
        self._thr = np.array([np.inf if c == ok_label else float(thresholds[c]) for c in labels],
                             dtype=np.float64)

    def flags(self, probs: np.ndarray) -> np.ndarray:
        """Boolean flag per row of an ``(N, C)`` probability array."""
        return (probs >= self._thr).any(axis=-1)

    def chosen(self, probs: np.ndarray) -> np.ndarray:
        """Per row of an ``(N, C)`` array, the index of the class with the highest ratio to its threshold."""
        return np.argmax(probs / self._thr, axis=-1)

    def decide(self, probs: np.ndarray) -> Decision:
        """Verdict for one ``(C,)`` probability vector."""
        ratios = probs / self._thr
        k = int(np.argmax(ratios))
        if ratios[k] >= 1.0:
            return Decision(True, self.labels[k], float(probs[k]))
        top = int(np.argmax(probs))
        return Decision(False, self.labels[top], float(probs[top]))


# Good val images needed to fit the tail of their defect scores; with fewer, thresholds sit mid-way in
# the free margin between the good parts and the weakest defect caught.
MIN_GOOD_FOR_FIT = 20
# No fitted threshold goes below this defect score. A confident model's good parts pile up near 0, and
# a tail fitted to them would put the threshold where a change of light on the line flags good parts.
MIN_FITTED_THRESHOLD = 0.05


def fitted_tail(scores: np.ndarray, rate: float) -> float:
    """The score that ``rate`` of scores like these exceed (scores are probabilities in 0..1).

    The empirical quantile needs about ``3/rate`` scores (300 for 1%); a val split has tens of good
    parts, and their highest score says little about where the 1% tail lies. This extrapolates it from
    a normal fit of the logits' upper half: the median, and the spread of the logits above it. The
    lower half is left out because it only says how sure the model is of its surest good parts: scores
    of 1e-6 and 1e-3 are 7 logits apart and would widen a whole-sample fit, and push its tail up.
    """
    s = np.clip(np.asarray(scores, np.float64), 1e-6, 1 - 1e-6)
    logits = np.log(s) - np.log1p(-s)
    centre = float(np.median(logits))
    spread = float(np.sqrt(np.mean((logits[logits >= centre] - centre) ** 2)))
    z = centre + NormalDist().inv_cdf(1.0 - rate) * spread
    return float(1.0 / (1.0 + np.exp(-z)))


def _lowest_admissible(ok_scores: np.ndarray, budget: float) -> float:
    """Just above the highest ok score the false-alarm budget cannot absorb (0 when it absorbs all)."""
    ok_sorted = np.sort(ok_scores)[::-1]
    allowed = int(np.floor(budget * len(ok_sorted) + 1e-9))
    return float(np.nextafter(ok_sorted[allowed], 1.0)) if allowed < len(ok_sorted) else 0.0


def false_alarm_floor(good_scores: np.ndarray, rate: float) -> float:
    """The lowest defect-score threshold at which good parts with these scores are flagged at ``rate``.

    The fitted tail (:func:`fitted_tail`, with at least ``MIN_GOOD_FOR_FIT`` scores), never under the
    highest score the rate admits on these parts nor under ``MIN_FITTED_THRESHOLD``.
    """
    fitted = fitted_tail(good_scores, rate) if len(good_scores) >= MIN_GOOD_FOR_FIT else 0.0
    return max(fitted, _lowest_admissible(good_scores, rate), MIN_FITTED_THRESHOLD)


def _threshold_for_class(ok_scores: np.ndarray, pos_scores: np.ndarray, budget: float,
                         floor: float | None = None) -> dict:
    """Threshold maximizing recall with false-alarm rate <= budget on ``ok_scores``.

    With a ``floor`` (the fitted any-defect threshold) it is the lowest admissible threshold not under
    the floor; without one it is centred in the free margin (robust to score shifts, blind to the target).
    """
    t_lo = _lowest_admissible(ok_scores, budget)
    above = pos_scores[pos_scores >= t_lo]
    # Highest threshold with the same recall: the weakest positive still caught.
    t_hi = float(above.min()) if above.size else 1.0
    t = max(t_lo, floor) if floor is not None else (t_lo + t_hi) / 2.0
    return {
        "threshold": t,
        "val_false_alarm_rate": float(np.mean(ok_scores >= t)) if ok_scores.size else 0.0,
        "val_recall": float(np.mean(pos_scores >= t)) if pos_scores.size else None,
        "margin": [t_lo, t_hi],
    }


def any_defect_floor(ok_probs: np.ndarray, ok: int, target_false_alarm_rate: float) -> dict:
    """Where a good part's defect score is expected to pass the false-alarm target.

    The defect score is the highest defect-class probability: a frame is flagged when it reaches
    that class's threshold, so with every threshold at or above this floor a good part is flagged
    only if its defect score reaches the floor.

    ``threshold`` is the fitted tail (:func:`fitted_tail`), never under the highest score the target
    admits on these images nor under ``MIN_FITTED_THRESHOLD``; ``None`` with fewer than
    ``MIN_GOOD_FOR_FIT`` good images (``placement`` says which).
    """
    n = len(ok_probs)
    if n < MIN_GOOD_FOR_FIT:
        return {"placement": "mid-margin", "threshold": None, "good_images": n,
                "why": f"fewer than {MIN_GOOD_FOR_FIT} good val images to fit their score tail"}
    scores = np.delete(ok_probs, ok, axis=1).max(axis=1).astype(np.float64)
    fitted = fitted_tail(scores, target_false_alarm_rate)
    t = false_alarm_floor(scores, target_false_alarm_rate)
    return {"placement": "fitted", "threshold": t, "fitted": fitted, "minimum": MIN_FITTED_THRESHOLD,
            "good_images": n, "val_false_alarm_rate": float(np.mean(scores >= t))}


def recall_guard(probs: np.ndarray, y: np.ndarray, ok: int, thresholds: dict[str, float],
                 labels: list[str], targets: LineTargets) -> tuple[dict[str, float], dict]:
    """Lower ``thresholds`` that would miss more defects than the line's recall target allows, as far as
    the line's false-alarm limit lets them; returns the thresholds and what was done.

    The false-alarm target is an aim; the line targets are what a user accepts. One good val part that
    looks like a defect (a scratch-like good part beside scratch-like inclusions) pushes a threshold
    aimed at 1% false alarms to 0.97, and the run then misses a defect in five. A new defect scores
    under the (k+1)-th lowest of n val defect scores with probability (k+1)/(n+1), whatever the score
    distribution, so the thresholds come down to the lowest such score that keeps that under
    ``1 - min_defect_recall`` (the weakest val defect, for n under 39 at 95%), but not under where the
    good parts' fitted false-alarm rate (:func:`fitted_tail`) or their val rate would pass
    ``max_false_alarm_rate``. They are never raised.
    """
    defect = y != ok
    scores = np.delete(probs, ok, axis=1).max(axis=1).astype(np.float64)  # any-defect score
    n = int(defect.sum())
    misses = max(0, int(np.floor((1 - targets.min_defect_recall) * (n + 1) + 1e-9)) - 1)
    before = rate_of(Decider(labels, labels[ok], thresholds).flags(probs[defect]))
    info = {"min_defect_recall": targets.min_defect_recall,
            "max_false_alarm_rate": targets.max_false_alarm_rate, "val_defects_caught_before": before,
            "misses_allowed": misses, "applied": False}
    if n == 0 or n - before["k"] <= misses:
        return thresholds, info
    wanted = float(np.sort(scores[defect])[misses])
    limit = false_alarm_floor(scores[~defect], targets.max_false_alarm_rate)
    cap = max(wanted, limit)
    lowered = {c: min(t, cap) for c, t in thresholds.items()}
    if lowered == thresholds:
        return thresholds, {**info, "why": f"the false-alarm limit allows no threshold under {limit:.3g}"}
    after = rate_of(Decider(labels, labels[ok], lowered).flags(probs[defect]))
    return lowered, {**info, "applied": True, "cap": cap, "recall_threshold": wanted,
                     "false_alarm_limit": limit, "val_defects_caught_after": after}


def _restate_classes(details: dict, thresholds: dict[str, float], probs: np.ndarray, y: np.ndarray, ok: int,
                     labels: list[str]) -> None:
    """Each defect class's val rates in ``details`` at its (lowered) threshold."""
    for c, t in thresholds.items():
        i = labels.index(c)
        details[c].update(threshold=t, val_false_alarm_rate=float(np.mean(probs[y == ok, i] >= t)),
                          val_recall=float(np.mean(probs[y == i, i] >= t)) if (y == i).any() else None)


def choose_thresholds(probs: np.ndarray, y: np.ndarray, labels: list[str], ok_label: str | None,
                      target_false_alarm_rate: float = DEFAULT_TARGET_FALSE_ALARM_RATE,
                      targets: LineTargets | None = None) -> tuple[dict[str, float], dict]:
    """Per-class thresholds from validation probabilities.

    With a good class and enough good images, every class threshold sits at the lowest score that
    keeps the good parts' estimated false-alarm rate at the target (:func:`any_defect_floor`, fitted
    on their highest defect-class probability), so the target holds for all classes together; each
    also keeps its own false alarms on the val images within an even share of the target. With too
    few good images (and for sorting) thresholds are placed mid-way in the free margin instead.
    Sorting (``ok_label`` None): a class's false alarms are the other classes' images it would take.
    With line ``targets`` and a good class, :func:`recall_guard` then lowers thresholds that miss more
    val defects than the line's recall target allows (``details["overall"]["recall_guard"]``).
    Returns ``(thresholds, details)``.
    """
    ok = None if ok_label is None else labels.index(ok_label)
    defects = [i for i in range(len(labels)) if i != ok]
    budget = target_false_alarm_rate / max(1, len(defects))
    placement = None if ok is None else any_defect_floor(probs[y == ok], ok, target_false_alarm_rate)
    floor = None if placement is None else placement["threshold"]
    thresholds, details = {}, {}
    for i in defects:
        negatives = probs[y == ok, i] if ok is not None else probs[y != i, i]
        info = _threshold_for_class(negatives, probs[y == i, i], budget, floor)
        thresholds[labels[i]] = info["threshold"]
        details[labels[i]] = info
    if ok is None:
        details["overall"] = sorting_summary(probs, y, Decider(labels, None, thresholds), "val")
        details["overall"]["target_false_alarm_rate"] = target_false_alarm_rate
        return thresholds, details
    guard = None
    if targets is not None:
        thresholds, guard = recall_guard(probs, y, ok, thresholds, labels, targets)
        if guard["applied"]:
            _restate_classes(details, thresholds, probs, y, ok, labels)
    flagged = Decider(labels, ok_label, thresholds).flags(probs)
    details["overall"] = {
        "target_false_alarm_rate": target_false_alarm_rate,
        "placement": placement,
        "recall_guard": guard,
        "val_false_alarm_rate": float(flagged[y == ok].mean()) if (y == ok).any() else 0.0,
        "val_defect_recall": float(flagged[y != ok].mean()) if (y != ok).any() else None,
        "val_false_alarms": rate_of(flagged[y == ok]),
        "val_defects_caught": rate_of(flagged[y != ok]),
    }
    return thresholds, details


def sorting_summary(probs: np.ndarray, y: np.ndarray, decider: Decider, split: str) -> dict:
    """Sorting: how many images a class was decided for, and how many of those it was the right one."""
    decided, chosen = decider.flags(probs), decider.chosen(probs)
    return {f"{split}_decided": rate_of(decided),
            f"{split}_right_when_decided": rate_of(chosen[decided] == y[decided])}


def small_split_warning(n_ok: int, target_false_alarm_rate: float, ok_label: str = "ok",
                        split: str = "validation") -> str | None:
    """Words for a split with too few good parts for the false-alarm target, else ``None``.

    A false-alarm target ``p`` cannot be shown on fewer than about ``3/p`` good parts: even with no
    false alarm at all, the 95% upper bound of the rate stays above ``p`` (the rule of three).
    ``split`` is ``validation`` (where thresholds are placed) or ``test`` (where they are checked).
    """
    need = needed_for_rate(target_false_alarm_rate)
    if n_ok >= need:
        return None
    use, flag = ("placed", "--val-fraction") if split == "validation" else ("checked", "--test-fraction")
    return (f"the {split} split has {n_ok} {ok_label!r} images, but a {target_false_alarm_rate:.1%} "
            f"false-alarm threshold needs at least {need} to be {use} (with fewer, even zero false alarms "
            f"leave the true rate possibly above the target): expect more false alarms on the line than "
            f"the report shows. Fix: add good photos (about {need - n_ok} more in {split}), raise "
            f"{flag} when training, or export with a looser --target-false-alarm-rate (at least "
            f"{needed_rate(n_ok):.1%} for {n_ok} images)")
