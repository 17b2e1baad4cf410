"""Decision thresholds: semantics shared by the export gate and the device."""

import numpy as np
import pytest

from runtime.decision import MIN_FITTED_THRESHOLD, MIN_GOOD_FOR_FIT, Decider, choose_thresholds, fitted_tail
from runtime.fitness import LineTargets

LABELS = ["crack", "ok", "scratch"]


def test_decide_flags_when_any_defect_reaches_its_threshold():
    d = Decider(LABELS, "ok", {"crack": 0.3, "scratch": 0.6})
    assert not d.decide(np.array([0.2, 0.5, 0.3])).flagged
    v = d.decide(np.array([0.35, 0.4, 0.25]))
    assert v.flagged and v.label == "crack" and v.score == pytest.approx(0.35)
    # scratch at 0.59 < 0.6 is not flagged even though it is the top class
    v = d.decide(np.array([0.01, 0.4, 0.59]))
    assert not v.flagged and v.label == "scratch"
    assert d.flags(np.array([[0.3, 0.7, 0.0], [0.0, 1.0, 0.0]])).tolist() == [True, False]


def test_missing_threshold_is_an_error():
    with pytest.raises(ValueError, match="scratch"):
        Decider(LABELS, "ok", {"crack": 0.5})


def test_choose_thresholds_meets_false_alarm_budget_and_keeps_recall():
    rng = np.random.default_rng(0)
    n = 400
    y = rng.integers(0, 3, n)
    probs = np.full((n, 3), 0.05)
    # Separable scores with a margin: positives of class c score 0.6..0.9, others 0..0.3.
    for c in (0, 2):
        probs[:, c] = np.where(y == c, rng.uniform(0.6, 0.9, n), rng.uniform(0.0, 0.3, n))
    probs[:, 1] = 1 - probs[:, 0] - probs[:, 2]
    thr, info = choose_thresholds(probs, y, LABELS, "ok", target_false_alarm_rate=0.01)
    for c in ("crack", "scratch"):
        assert 0.3 < thr[c] < 0.6  # inside the free margin, not hugging an edge
    assert info["overall"]["val_false_alarm_rate"] <= 0.01
    assert info["overall"]["val_defect_recall"] == 1.0


def test_choose_thresholds_trades_recall_for_false_alarms():
    # Overlapping scores: the budget caps false alarms on ok even if recall suffers.
    y = np.array([1] * 100 + [0] * 100)
    s = np.concatenate([np.linspace(0.0, 0.6, 100), np.linspace(0.4, 1.0, 100)])
    probs = np.stack([s, 1 - s, np.zeros_like(s)], axis=1)
    thr, info = choose_thresholds(probs, y, LABELS, "ok", target_false_alarm_rate=0.05)
    assert info["crack"]["val_false_alarm_rate"] <= 0.025  # budget split over 2 defect classes
    assert 0.5 < info["crack"]["val_recall"] < 1.0


def _good_and_defects(n_good: int, n_defect: int, seed: int = 0,
                      weakest: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities over LABELS: good parts' crack score logit-normal (1% of them above 0.10),
    defects' crack score uniform in ``weakest``..0.9, no scratches."""
    rng = np.random.default_rng(seed)
    good = 1 / (1 + np.exp(-rng.normal(-4.5, 1.0, n_good)))
    crack = np.concatenate([good, rng.uniform(weakest, 0.9, n_defect)])
    y = np.array([1] * n_good + [0] * n_defect)
    return np.stack([crack, 1 - crack, np.zeros_like(crack)], axis=1), y


def test_fitted_tail_finds_a_quantile_the_sample_is_too_small_to_show():
    rng = np.random.default_rng(1)
    true_1pct = 1 / (1 + np.exp(-(-4.0 + 2.3263)))  # logits N(-4, 1): 1% of scores exceed 0.158
    large = 1 / (1 + np.exp(-rng.normal(-4.0, 1.0, 5000)))
    assert fitted_tail(large, 0.01) == pytest.approx(true_1pct, abs=0.02)
    small = 1 / (1 + np.exp(-rng.normal(-4.0, 1.0, 45)))
    assert small.max() < true_1pct < fitted_tail(small, 0.01) * 2  # the sample's maximum falls short


def test_fitted_tail_ignores_how_sure_the_model_is_of_its_surest_good_parts():
    rng = np.random.default_rng(2)
    scores = 1 / (1 + np.exp(-rng.normal(-4.0, 1.0, 61)))
    surer = np.where(scores < np.median(scores), scores * 1e-3, scores)  # lower half 7 logits lower
    assert fitted_tail(surer, 0.01) == pytest.approx(fitted_tail(scores, 0.01), rel=1e-9)


def test_thresholds_spend_the_false_alarm_budget_on_recall_and_hold_it_on_new_parts():
    probs, y = _good_and_defects(60, 40)
    thr, info = choose_thresholds(probs, y, LABELS, "ok", target_false_alarm_rate=0.01)
    placement = info["overall"]["placement"]
    assert placement["placement"] == "fitted" and placement["good_images"] == 60
    assert all(t >= placement["threshold"] for t in thr.values())  # no class flags below the floor
    # New parts from the same line: weaker defects than any in val are still caught, where a threshold
    # mid-way between the good parts and the weakest val defect misses many of them...
    fresh, y_fresh = _good_and_defects(20000, 20000, seed=3, weakest=0.15)
    decider, mid = Decider(LABELS, "ok", thr), sum(info["crack"]["margin"]) / 2
    assert decider.flags(fresh[y_fresh == 0]).mean() == 1.0 and (fresh[y_fresh == 0, 0] < mid).mean() > 0.1
    # ...and good parts are flagged near the 1% target, not far under it.
    assert 0.002 < decider.flags(fresh[y_fresh == 1]).mean() < 0.025


def test_a_confident_model_gets_the_minimum_threshold_not_one_in_its_float_noise():
    probs, y = _good_and_defects(60, 40)
    probs[y == 1, 0], probs[y == 1, 1] = 1e-5, 1 - 1e-5
    thr, info = choose_thresholds(probs, y, LABELS, "ok", target_false_alarm_rate=0.01)
    assert info["overall"]["placement"]["fitted"] < 1e-3
    assert thr["crack"] == MIN_FITTED_THRESHOLD


def test_too_few_good_images_to_fit_keep_thresholds_mid_way_in_the_margin():
    probs, y = _good_and_defects(MIN_GOOD_FOR_FIT - 1, 40)
    thr, info = choose_thresholds(probs, y, LABELS, "ok", target_false_alarm_rate=0.01)
    assert info["overall"]["placement"]["placement"] == "mid-margin"
    lo, hi = info["crack"]["margin"]
    assert thr["crack"] == pytest.approx((lo + hi) / 2)


def _with_a_defect_like_good_part(n_good: int = 45, n_defect: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Good parts and defects as in ``_good_and_defects``, but one good val part scores 0.97 as a crack
    (a scratch-like good part beside scratch-like defects)."""
    probs, y = _good_and_defects(n_good, n_defect, seed=4)
    probs[0, 0], probs[0, 1] = 0.97, 0.03
    return probs, y


def test_one_defect_like_good_part_does_not_cost_the_line_its_recall():
    probs, y = _with_a_defect_like_good_part()
    plain, _ = choose_thresholds(probs, y, LABELS, "ok", target_false_alarm_rate=0.01)
    assert plain["crack"] > 0.97  # the 1% aim alone: over the outlier, so every val defect (<= 0.9) is missed
    thr, info = choose_thresholds(probs, y, LABELS, "ok", 0.01, LineTargets())
    guard = info["overall"]["recall_guard"]
    assert guard["applied"] and guard["val_defects_caught_before"]["k"] == 0
    assert info["overall"]["val_defect_recall"] >= 0.95 and thr["crack"] == guard["cap"] < plain["crack"]
    assert info["crack"]["threshold"] == thr["crack"] and info["crack"]["val_recall"] >= 0.95
    # New parts from the same line, without the outlier: the lowered threshold keeps good parts'
    # false alarms within the line's 5% and catches what the 1% aim alone missed.
    fresh, y_fresh = _good_and_defects(20000, 20000, seed=5)
    decider = Decider(LABELS, "ok", thr)
    assert decider.flags(fresh[y_fresh == 1]).mean() <= 0.05
    assert decider.flags(fresh[y_fresh == 0]).mean() >= 0.93  # the weakest of 20 val defects: 95% expected


def test_the_recall_guard_leaves_thresholds_that_already_meet_the_recall_target():
    probs, y = _good_and_defects(60, 40)
    plain, _ = choose_thresholds(probs, y, LABELS, "ok", target_false_alarm_rate=0.01)
    thr, info = choose_thresholds(probs, y, LABELS, "ok", 0.01, LineTargets())
    assert thr == plain and not info["overall"]["recall_guard"]["applied"]


def test_the_recall_guard_never_lowers_past_the_false_alarm_limit():
    # Overlapping scores: 95% recall on val would flag far more than 5% of the good parts.
    y = np.array([1] * 100 + [0] * 100)
    s = np.concatenate([np.linspace(0.0, 0.6, 100), np.linspace(0.4, 1.0, 100)])
    probs = np.stack([s, 1 - s, np.zeros_like(s)], axis=1)
    plain, _ = choose_thresholds(probs, y, LABELS, "ok", target_false_alarm_rate=0.01)
    thr, info = choose_thresholds(probs, y, LABELS, "ok", 0.01, LineTargets(0.95, 0.05))
    guard = info["overall"]["recall_guard"]
    assert guard["applied"] and thr["crack"] == guard["false_alarm_limit"] > guard["recall_threshold"]
    assert thr["crack"] < plain["crack"] and info["overall"]["val_false_alarm_rate"] <= 0.05
    assert info["overall"]["val_defect_recall"] < 0.95  # the model cannot meet both: it is not made to
