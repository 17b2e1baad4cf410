"""The banded area resize writes exactly the pixels of one ``cv2.resize(..., INTER_AREA)`` call."""

import cv2
import numpy as np
import pytest

from runtime import area_resize
from runtime.area_resize import band_edges, resize_area, resize_area_bilinear


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


# ---------------------------------------------------------------------------- area-bilinear (cheap)
def test_area_bilinear_is_the_area_filter_at_a_whole_factor():
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (128, 192, 3), dtype=np.uint8)
    np.testing.assert_array_equal(resize_area_bilinear(image, 96, 64),
                                  cv2.resize(image, (96, 64), interpolation=cv2.INTER_AREA))


def test_area_bilinear_shrinks_by_whole_factors_then_bilinear():
    rng = np.random.default_rng(6)
    frame = rng.integers(0, 256, (480, 641, 3), dtype=np.uint8)  # 641 = 2 x 320 + 1: one column over
    half = cv2.resize(frame[:, 0:640], (320, 240), interpolation=cv2.INTER_AREA)
    expected = cv2.resize(half, (224, 168), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(resize_area_bilinear(frame, 224, 168), expected)
    hd = rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8)  # letterboxed to 224 x 126: halved twice
    quarter = cv2.resize(cv2.resize(hd, (640, 360), interpolation=cv2.INTER_AREA), (320, 180),
                         interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(resize_area_bilinear(hd, 224, 126),
                                  cv2.resize(quarter, (224, 126), interpolation=cv2.INTER_LINEAR))
    # Stretched to a square: halved once (360 < 2 x 224), then 2x1 by area, then bilinear.
    stretched = cv2.resize(cv2.resize(hd, (640, 360), interpolation=cv2.INTER_AREA), (320, 360),
                           interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(resize_area_bilinear(hd, 224, 224),
                                  cv2.resize(stretched, (224, 224), interpolation=cv2.INTER_LINEAR))


@pytest.mark.parametrize("src, dst", [((300, 300), (224, 224)), ((96, 96), (64, 64)),
                                      ((200, 200), (224, 224)), ((150, 300), (112, 224)),
                                      ((50, 40), (64, 64))])
def test_area_bilinear_is_the_area_filter_for_photos_near_the_model_size(src, dst):
    """No whole factor to take (casting 300 -> 224, the demo's 96 -> 64, neu_det grown to 224): the
    pixels of ``area``, so models trained before this default are reproduced exactly."""
    image = np.random.default_rng(7).integers(0, 256, src + (3,), dtype=np.uint8)
    np.testing.assert_array_equal(resize_area_bilinear(image, dst[1], dst[0]),
                                  cv2.resize(image, (dst[1], dst[0]), interpolation=cv2.INTER_AREA))


@pytest.mark.parametrize("src, dst", [((480, 640), (168, 224)), ((720, 1280), (126, 224)),
                                      ((720, 1280), (224, 224)), ((300, 300), (224, 224))])
def test_area_bilinear_lets_every_source_pixel_count(src, dst):
    """A one-pixel defect anywhere in the frame changes the model's input (bilinear alone skips some)."""
    base = np.full(src + (3,), 100, np.uint8)
    ref = resize_area_bilinear(base, dst[1], dst[0])
    margin = max(src[0] // dst[0], src[1] // dst[1])  # pixels an uneven side may cut at the edges
    # Steps of 7 and 11 rows/columns meet every offset within a whole factor (2, 3, 5) many times.
    for r in range(margin, src[0] - margin, 7):
        for c in range(margin + r % 11, src[1] - margin, 11 * 7):
            dot = base.copy()
            dot[r, c] = 255
            assert not np.array_equal(resize_area_bilinear(dot, dst[1], dst[0]), ref), (r, c)
    # Bilinear over the whole factor does skip rows (a row k within its first period is lost for some
    # k): why the area step exists. Below 2x it skips none.
    plain = cv2.resize(base, (dst[1], dst[0]), interpolation=cv2.INTER_LINEAR)
    lost = []
    for k in range(8):
        line = base.copy()
        line[k] = 255
        lost.append(np.array_equal(cv2.resize(line, (dst[1], dst[0]), interpolation=cv2.INTER_LINEAR), plain))
    assert any(lost) == (src[0] / dst[0] > 2)
