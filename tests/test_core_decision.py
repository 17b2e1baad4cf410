"""Decision thresholds: semantics shared by the export gate and the device."""

import numpy as np
import pytest

from runtime.decision import Decider, choose_thresholds

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
