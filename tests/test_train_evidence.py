"""Stage 2's gain must be evidence: the paired per-image gain against its standard error (train.evidence)."""

import numpy as np
import pytest

from train.evidence import DEFAULT_MIN_EVIDENCE, paired_gain, resolved


def test_a_gain_one_image_makes_is_not_evidence():
    # 66 val images the head already gets right; fine-tuning lowers one image's loss a lot, the rest
    # not at all: the mean drops (as on the hard variant's split 42), the paired test is not convinced.
    before = np.full(66, 0.01)
    before[7] = 0.30
    after = before.copy()
    after[7] = 0.05
    ev = paired_gain(before, after)
    assert ev["gain"] == pytest.approx(0.25 / 66, abs=1e-6) and ev["n"] == 66
    assert ev["z"] == pytest.approx(1.0, abs=1e-3)  # one outlier of n: mean / (sd / sqrt n) = 1
    assert not resolved(ev, DEFAULT_MIN_EVIDENCE)
    assert resolved(ev, 0.0)  # 0 keeps any gain, as before the rule


def test_a_gain_most_images_share_is_evidence():
    rng = np.random.default_rng(0)
    before = rng.uniform(0.05, 0.3, 240)
    after = before * rng.uniform(0.3, 0.8, 240)  # every image better, by varying amounts
    ev = paired_gain(before, after)
    assert ev["z"] > 10 and resolved(ev, DEFAULT_MIN_EVIDENCE)


@pytest.mark.parametrize("after_shift, z", [(0.0, 0.0), (0.05, 0.0)])
def test_no_gain_or_a_loss_is_never_resolved(after_shift, z):
    before = np.linspace(0.01, 0.2, 30)
    ev = paired_gain(before, before + after_shift)
    assert ev["gain"] <= 0 and ev["z"] == z
    assert not resolved(ev, 0.0) and not resolved(ev, DEFAULT_MIN_EVIDENCE)


def test_the_same_gain_on_every_image_has_no_spread_and_is_resolved():
    before = np.linspace(0.1, 0.5, 10)
    ev = paired_gain(before, before - 0.05)
    assert ev["se"] == pytest.approx(0.0, abs=1e-9) and ev["z"] is None
    assert resolved(ev, DEFAULT_MIN_EVIDENCE)


def test_one_image_gives_no_standard_error():
    ev = paired_gain(np.array([0.5]), np.array([0.1]))
    assert ev["z"] == 0.0 and not resolved(ev, DEFAULT_MIN_EVIDENCE)
