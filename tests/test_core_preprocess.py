"""Preprocessing: one contract, identical pixels from a decoded photo and from a camera frame."""

import numpy as np
import pytest

from runtime.contract import InputContract
from runtime.preprocess import crop_roi, prepare_bgr, prepare_rgb


@pytest.mark.parametrize("interp", ["area", "bilinear", "nearest", "bicubic"])
@pytest.mark.parametrize("roi", [None, (0.1, 0.2, 0.9, 0.7)])
def test_bgr_frame_and_rgb_photo_give_same_pixels(interp, roi):
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    c = InputContract(48, 64, interpolation=interp, roi=roi)
    a = prepare_rgb(rgb, c)
    b = prepare_bgr(np.ascontiguousarray(rgb[..., ::-1]), c)
    assert a.shape == (48, 64, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)


def test_roi_crop_fractions():
    img = np.arange(100 * 200).reshape(100, 200)
    c = InputContract(10, 10, roi=(0.25, 0.5, 0.75, 1.0))
    out = crop_roi(img, c)
    assert out.shape == (50, 100)
    assert out[0, 0] == img[50, 50]


def test_grey_and_bgra_frames():
    c = InputContract(8, 8)
    grey = np.full((16, 16), 9, np.uint8)
    assert prepare_bgr(grey, c).shape == (8, 8, 3)
    bgra = np.zeros((16, 16, 4), np.uint8)
    bgra[..., 0] = 200  # blue
    out = prepare_bgr(bgra, c)
    assert out[0, 0].tolist() == [0, 0, 200]


def test_contract_roundtrip_and_validation():
    c = InputContract(96, 128, interpolation="bilinear", roi=(0, 0, 0.5, 0.5))
    assert InputContract.from_dict(c.to_dict()) == c
    with pytest.raises(ValueError, match="interpolation"):
        InputContract(8, 8, interpolation="lanczos9")
    with pytest.raises(ValueError, match="roi"):
        InputContract(8, 8, roi=(0.5, 0, 0.4, 1))
    with pytest.raises(ValueError, match="unknown keys"):
        InputContract.from_dict({"height": 8, "width": 8, "mean": [0.5]})
