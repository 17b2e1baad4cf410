"""train.data's augmentation layers, as the config sets them."""

import pytest

from train.config import resolve
from train.data import augmenter
from train.errors import TrainError


def _layers(**values) -> dict:
    return {type(layer).__name__: layer for layer in augmenter(resolve(values)).layers}


def test_the_zoom_is_the_configured_fraction_and_none_at_zero():
    assert _layers()["RandomZoom"].height_factor == 0.1  # the default, as before it was configurable
    assert _layers(zoom=0.25)["RandomZoom"].height_factor == 0.25
    assert "RandomZoom" not in _layers(zoom=0.0) and "RandomBrightness" in _layers(zoom=0.0)
    assert augmenter(resolve({"augment": False})) is None


@pytest.mark.parametrize("value", [0.6, -0.1])
def test_a_zoom_out_of_range_is_a_clear_error(value):
    with pytest.raises(TrainError, match="zoom must be from 0 to 0.5"):
        resolve({"zoom": value})
