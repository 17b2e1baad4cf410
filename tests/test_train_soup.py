"""Stage 2's greedy weight average (train.soup) on weights whose val loss is known in closed form."""

import numpy as np
import pytest

from train.soup import Ingredient, average, greedy_soup


def _bowl(weights: list[np.ndarray]) -> float:
    """A val loss with its minimum at all-zero weights."""
    return float(sum(np.sum(w.astype(np.float64) ** 2) for w in weights))


def _model(value: float) -> list[np.ndarray]:
    return [np.full((2, 3), value, np.float32), np.full((3,), value, np.float32)]


def _ingredient(name: str, value: float) -> Ingredient:
    weights = _model(value)
    return Ingredient(name, _bowl(weights), weights)


def test_average_is_the_element_wise_mean_in_each_array_s_dtype():
    mean = average([_model(1.0), _model(2.0), _model(6.0)])
    assert [m.shape for m in mean] == [(2, 3), (3,)] and all(m.dtype == np.float32 for m in mean)
    np.testing.assert_allclose(mean[0], 3.0)
    np.testing.assert_allclose(mean[1], 3.0)


def test_a_model_joins_only_when_the_average_lowers_the_val_loss():
    # Two runs on either side of the optimum average to it; a third far off would spoil the average.
    weights, record = greedy_soup([_ingredient("head", 1.0), _ingredient("far", 5.0),
                                   _ingredient("left", -1.01)], _bowl)
    assert record["ingredients"] == ["head", "left"]
    assert record["val_loss"] == pytest.approx(_bowl(_model(-0.005)), abs=1e-6)
    np.testing.assert_allclose(weights[0], -0.005, atol=1e-7)
    # Every mix tried is on record, in the order tried (lowest val loss first).
    assert [t["ingredients"] for t in record["tried"]] == [["head", "left"], ["head", "left", "far"]]
    assert record["tried"][1]["val_loss"] > record["val_loss"]


def test_with_nothing_to_gain_the_best_model_is_kept_as_it_is():
    best = _ingredient("head", 0.5)
    weights, record = greedy_soup([_ingredient("a", 2.0), best, _ingredient("b", 3.0)], _bowl)
    assert record["ingredients"] == ["head"] and weights is best.weights
    assert record["val_loss"] == pytest.approx(best.val_loss)


def test_on_a_tie_the_first_listed_starts_the_soup():
    # stages.finetune lists the head's weights first: a fine-tuning that only ties it is not taken.
    head, tie = Ingredient("head", 1.0, _model(1.0)), Ingredient("finetune", 1.0, _model(-1.0))
    _, record = greedy_soup([head, tie], lambda w: 1.0)
    assert record["ingredients"] == ["head"]
