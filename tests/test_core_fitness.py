"""Fitness for the line: the reference model judged against line targets, with counts and intervals."""

import pytest

from runtime.fitness import LineTargets, describe, judge
from runtime.rates import rate


def test_a_model_that_misses_defects_is_not_fit_and_says_why():
    f = judge(rate(19, 21), rate(13, 45), LineTargets(), "test split")
    assert f["fit"] is False
    recall, far = f["checks"]
    assert (recall["passed"], far["passed"]) == (False, False)
    assert recall["rate"]["k"] == 19 and recall["rate"]["n"] == 21 and recall["target"] == 0.95
    assert f["reasons"][0].startswith("defect recall 90.48% (19/21; 95% CI")
    assert "is not >= the target 95%" in f["reasons"][0]
    assert "is not <= the target 5%" in f["reasons"][1]
    assert describe(f).startswith("NOT FIT for the line on test split: defect recall 90.48%")


def test_targets_are_inclusive_overridable_and_checked():
    assert judge(rate(95, 100), rate(5, 100), LineTargets(), "t")["fit"] is True  # exactly at the targets
    assert judge(rate(95, 100), rate(5, 100), LineTargets(0.96, 0.05), "t")["fit"] is False
    with pytest.raises(ValueError, match="fraction"):
        LineTargets(min_defect_recall=95)


def test_nothing_to_count_is_unknown_not_fit_or_unfit():
    f = judge(rate(0, 0), rate(0, 10), LineTargets(), "test split")
    assert f["fit"] is None and f["reasons"] == []
    assert describe(f).startswith("fitness unknown") and describe(None).startswith("fitness not judged")
