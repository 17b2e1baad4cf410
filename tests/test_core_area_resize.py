"""The banded area resize writes exactly the pixels of one ``cv2.resize(..., INTER_AREA)`` call."""

import cv2
import numpy as np
import pytest

from runtime import area_resize
from runtime.area_resize import band_edges, resize_area


@pytest.fixture(autouse=True)
def _many_cores(monkeypatch):
    # Split even on a 1-core CI box, and even small frames, so every case below really uses bands.
    monkeypatch.setattr(area_resize.os, "cpu_count", lambda: 4)
    monkeypatch.setattr(area_resize, "MIN_SOURCE_PIXELS", 0)


@pytest.mark.parametrize("src, dst", [
    ((480, 640), (224, 224)), ((480, 640), (96, 96)), ((1080, 1920), (224, 224)),
    ((720, 1280), (160, 160)), ((600, 800), (300, 227)), ((481, 643), (224, 224)),
    ((240, 320), (224, 224)),
])
@pytest.mark.parametrize("channels", [3, 1, 4])
def test_same_pixels_as_one_opencv_call(src, dst, channels):
    rng = np.random.default_rng(sum(src) + channels)
    shape = src + ((channels,) if channels > 1 else ())
    image = cv2.GaussianBlur(rng.integers(0, 256, shape, dtype=np.uint8), (3, 3), 0)
    expected = cv2.resize(image, (dst[1], dst[0]), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(resize_area(image, dst[1], dst[0]), expected)


def test_same_pixels_from_a_cropped_view():
    rng = np.random.default_rng(3)
    frame = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    view = frame[37:437, 101:581]  # a non-contiguous ROI crop, as crop_roi returns
    expected = cv2.resize(view, (224, 224), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(resize_area(view, 224, 224), expected)


def test_band_edges_fall_on_whole_source_rows():
    edges = band_edges(480, 224, 4)
    assert edges[0] == 0 and edges[-1] == 224 and len(edges) == 5
    assert all(m * 480 % 224 == 0 for m in edges)
    assert band_edges(481, 224, 4) == [0, 224]  # gcd 1: no inner edge exists, one band
