"""Class balance against imbalance: loss weights (the default) or oversampling the smaller classes."""

import numpy as np
import pytest

from runtime.contract import InputContract
from train.config import TrainConfig, resolve
from train.data import make_dataset, oversample, training_rows
from train.intake import prepare_dataset
from train.intake.report import class_weights
from train.synth import generate


def test_oversampling_repeats_every_class_up_to_the_largest_and_keeps_every_row():
    y = np.array([0] * 10 + [1] * 3 + [2] * 4 + [0] * 2)
    rows = oversample(y, seed=7)
    assert np.bincount(y[rows]).tolist() == [12, 12, 12]
    assert set(rows) == set(range(len(y)))  # nothing is dropped, the largest class included
    small = np.bincount(rows, minlength=len(y))[y == 1]
    assert sorted(small) == [4, 4, 4]  # 12 = 3 x 4: whole repeats only
    assert sorted(np.bincount(rows, minlength=len(y))[y == 2]) == [3, 3, 3, 3]
    assert np.array_equal(rows, oversample(y, seed=7))  # seeded: a re-run trains on the same epoch


def test_a_remainder_is_drawn_without_replacement():
    y = np.array([0] * 10 + [1] * 4)  # 10 = 2 x 4 + 2: two photos of class 1 get a third visit
    visits = np.bincount(oversample(y, seed=1), minlength=len(y))[y == 1]
    assert sorted(visits) == [2, 2, 3, 3]


def test_only_the_oversample_mode_changes_the_rows_an_epoch_visits():
    y = np.array([0, 0, 0, 1])
    assert training_rows(y, resolve({})) is None  # balanced: loss weights, each photo once
    assert training_rows(y, resolve({"class_weights": "none"})) is None
    assert np.bincount(y[training_rows(y, resolve({"class_weights": "oversample"}))]).tolist() == [3, 3]


def test_the_dataset_gathers_the_given_rows_and_shuffles_them_all_in_training():
    x = np.arange(5, dtype=np.uint8).reshape(5, 1, 1, 1).repeat(3, axis=-1)
    y = np.array([0, 0, 0, 1, 1])
    config = resolve({"batch_size": 4})
    rows = np.array([0, 1, 2, 3, 3, 4, 4])
    plain = [(int(a[0, 0, 0]), int(b)) for xb, yb in make_dataset(x, y, config, training=False, rows=rows)
             for a, b in zip(xb.numpy(), yb.numpy(), strict=True)]
    assert plain == [(int(r), int(y[r])) for r in rows]  # image and label stay paired
    shuffled = [(int(a[0, 0, 0]), int(b)) for xb, yb in make_dataset(x, y, config, training=True, rows=rows)
                for a, b in zip(xb.numpy(), yb.numpy(), strict=True)]
    assert sorted(shuffled) == sorted(plain)


@pytest.mark.parametrize(("mode", "remedy"), [("line", "balance the good parts against the defects"),
                                               ("balanced", "balanced class weights are applied"),
                                               ("oversample", "photos are repeated in training")])
def test_the_imbalance_warning_says_what_balances_the_classes(tmp_path, mode, remedy):
    data = generate(tmp_path / "d", count=60, size=40, ok_fraction=0.85)
    config = TrainConfig(data=str(data), verbose=False, class_weights=mode)
    ds = prepare_dataset(config, InputContract(32, 32), tmp_path / "run")
    assert remedy in ds.report["imbalance"]["warning"]
    weights = ds.report["class_weights"]
    if mode == "oversample":  # the repeats balance the classes: the loss is not weighted on top
        assert set(weights.values()) == {1.0}
    else:
        assert weights["defect"] > 2 * weights["ok"]


LINE_COUNTS = {"good": 210, "crack": 21, "hole": 24, "chip": 15}  # a line's set: one good class, rare types


def _loss_share(weights: dict[str, float], counts: dict[str, int]) -> dict[str, float]:
    total = sum(weights[c] * n for c, n in counts.items())
    return {c: weights[c] * n / total for c, n in counts.items()}


def test_line_weights_put_half_the_loss_on_the_good_parts_and_split_the_rest_evenly_over_the_types():
    share = _loss_share(class_weights(LINE_COUNTS, list(LINE_COUNTS), "line", "good"), LINE_COUNTS)
    assert share["good"] == pytest.approx(0.5, abs=1e-3)
    assert [share[t] for t in ("crack", "hole", "chip")] == pytest.approx([1 / 6] * 3, abs=1e-3)
    # per-class balance gives the good parts a quarter here: the ok/defect decision tilts 1:3
    flat = _loss_share(class_weights(LINE_COUNTS, list(LINE_COUNTS), "balanced", "good"), LINE_COUNTS)
    assert flat["good"] == pytest.approx(0.25, abs=1e-3)


@pytest.mark.parametrize(("counts", "ok"), [({"ok": 300, "defect": 40}, "ok"),  # two classes
                                            (LINE_COUNTS, None)])  # sorting: no good class
def test_line_weights_are_the_balanced_ones_with_two_classes_or_without_a_good_class(counts, ok):
    labels = list(counts)
    assert class_weights(counts, labels, "line", ok) == class_weights(counts, labels, "balanced", ok)


def test_the_default_weights_a_set_with_one_good_class_and_several_defect_types_for_the_line(tmp_path):
    data = tmp_path / "d"
    generate(data, count=120, size=40, ok_fraction=0.85)  # 18 defects: two types of 9
    (data / "defect").rename(data / "scratch")
    for i, p in enumerate(sorted((data / "scratch").iterdir())):
        if i % 2:
            (data / "dent").mkdir(exist_ok=True)
            p.rename(data / "dent" / p.name)
    config = TrainConfig(data=str(data), verbose=False, ok_label="ok")
    ds = prepare_dataset(config, InputContract(32, 32), tmp_path / "run")
    train = ds.report["splits"]["train"]
    share = _loss_share(ds.report["class_weights"], train)
    assert share["ok"] == pytest.approx(0.5, abs=1e-3)
    assert share["scratch"] == pytest.approx(share["dent"], abs=1e-3)
