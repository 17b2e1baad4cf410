"""Rates with their uncertainty: Wilson intervals checked against hand-computed values."""

import numpy as np
import pytest

from runtime.decision import choose_thresholds, small_split_warning
from runtime.rates import format_rate, needed_for_rate, rate, rate_of, wilson_interval


def test_wilson_interval_matches_published_and_hand_computed_values():
    # Newcombe (1998), Stat. Med. 17:857, table I: 81 of 263 -> 0.2553 to 0.3662.
    low, high = wilson_interval(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)
    # k = 0 and k = n: the bound on the open side is z^2 / (n + z^2), by hand 3.8415 / 123.8415.
    assert wilson_interval(0, 120) == (0.0, pytest.approx(3.841459 / 123.841459, abs=1e-6))
    assert wilson_interval(240, 240) == (pytest.approx(240 / 243.841459, abs=1e-6), 1.0)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_rate_records_count_value_and_interval():
    r = rate(236, 240)
    assert (r["k"], r["n"], r["method"], r["confidence"]) == (236, 240, "wilson", 0.95)
    assert r["value"] == pytest.approx(236 / 240) and r["low"] < r["value"] < r["high"]
    assert rate_of(np.array([True, False, True, True])) == rate(3, 4)
    assert format_rate(r) == "98.33% (236/240; 95% CI 95.8-99.4%)"
    assert format_rate(rate(0, 0)) == "-" and rate(0, 0)["value"] is None
    with pytest.raises(ValueError, match="0 <= k <= n"):
        rate(5, 4)


def test_rule_of_three_for_a_false_alarm_target():
    assert needed_for_rate(0.01) == 300  # ceil(-ln 0.05 / 0.01) = ceil(299.57)
    assert needed_for_rate(0.05) == 60


def test_small_validation_split_warns_in_words():
    text = small_split_warning(120, 0.01, "ok")
    assert "120 'ok' images" in text and "1.0% false-alarm threshold needs at least 300 to be placed" in text
    assert "--val-fraction" in text and "180 more" in text
    assert "--target-false-alarm-rate (at least 2.5% for 120 images)" in text
    assert small_split_warning(300, 0.01, "ok") is None
    assert "--test-fraction" in small_split_warning(120, 0.01, "ok", split="test")


def test_threshold_details_carry_counts_of_false_alarms_and_caught_defects():
    y = np.array([1] * 100 + [0] * 20)  # labels: crack=0, ok=1
    probs = np.zeros((120, 2))
    probs[:100, 1], probs[100:, 0] = 1.0, 1.0
    _, details = choose_thresholds(probs, y, ["crack", "ok"], "ok", 0.01)
    overall = details["overall"]
    assert overall["val_false_alarms"]["k"] == 0 and overall["val_false_alarms"]["n"] == 100
    assert overall["val_defects_caught"]["k"] == 20 and overall["val_defects_caught"]["n"] == 20
