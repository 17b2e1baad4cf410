"""Preprocessing: one contract, identical pixels from a decoded photo and from a camera frame."""

import numpy as np
import pytest

from runtime.contract import INTERPOLATIONS, LETTERBOX_PAD, RESIZE_MODES, InputContract
from runtime.preprocess import crop_roi, fitted_size, prepare_bgr, prepare_rgb
from runtime.roi import parse_roi
from runtime.sources import as_bgr


@pytest.mark.parametrize("interp", sorted(INTERPOLATIONS))
@pytest.mark.parametrize("roi", [None, (0.1, 0.2, 0.9, 0.7)])
@pytest.mark.parametrize("mode", RESIZE_MODES)
def test_bgr_frame_and_rgb_photo_give_same_pixels(interp, roi, mode):
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    c = InputContract(48, 64, interpolation=interp, roi=roi, resize=mode)
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


def test_grey_and_bgra_frames_are_normalised_where_they_enter():
    c = InputContract(8, 8)
    grey = np.full((16, 16), 9, np.uint8)
    assert prepare_bgr(as_bgr(grey), c).shape == (8, 8, 3)
    bgra = np.zeros((16, 16, 4), np.uint8)
    bgra[..., 0] = 200  # blue
    assert prepare_bgr(as_bgr(bgra), c)[0, 0].tolist() == [0, 0, 200]
    with pytest.raises(ValueError, match="as_bgr"):  # the loop only ever sees 3-channel BGR
        prepare_bgr(grey, c)


def test_letterbox_keeps_the_aspect_and_pads_with_grey():
    c = InputContract(8, 8, resize="letterbox")
    wide = np.full((10, 20, 3), 255, np.uint8)  # 2:1 -> 8x4, centred, 2 grey rows above and below
    out = prepare_rgb(wide, c)
    assert out.shape == (8, 8, 3)
    assert (out[:2] == LETTERBOX_PAD).all() and (out[6:] == LETTERBOX_PAD).all()
    assert (out[2:6] == 255).all()
    square = np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8)
    assert np.array_equal(prepare_rgb(square, c), prepare_rgb(square, InputContract(8, 8)))


def test_crop_keeps_the_aspect_and_cuts_the_centre():
    c = InputContract(8, 8, resize="crop")
    tall = np.zeros((30, 10, 3), np.uint8)
    tall[10:20] = (0, 255, 0)  # only the middle third is green: the crop must see nothing else
    out = prepare_rgb(tall, c)
    assert out.shape == (8, 8, 3)
    assert (out == (0, 255, 0)).all()
    assert fitted_size(10, 30, c) == (8, 24)
    assert fitted_size(10, 30, InputContract(8, 8, resize="letterbox")) == (3, 8)


def test_contract_reads_legacy_keys_and_refuses_unsupported_values():
    legacy = {"height": 8, "width": 8, "color_order": "RGB", "value_range": [0, 255], "interpolation": "area",
              "roi": None, "layout": "NHWC"}
    # A bundle written before area-bilinear became the default keeps the area resize it was made with.
    assert InputContract.from_dict(legacy) == InputContract(8, 8, interpolation="area")
    with pytest.raises(ValueError, match="layout"):
        InputContract.from_dict({**legacy, "layout": "NCHW"})
    with pytest.raises(ValueError, match="resize"):
        InputContract(8, 8, resize="squash")


def test_parse_roi():
    assert parse_roi("0.25,0,0.75,1") == (0.25, 0.0, 0.75, 1.0)
    assert parse_roi(None) is None and parse_roi("none") is None
    assert parse_roi([0, 0, 0.5, 0.5]) == (0.0, 0.0, 0.5, 0.5)
    with pytest.raises(ValueError, match="x0,y0,x1,y1"):
        parse_roi("0.2,0.3")
    with pytest.raises(ValueError, match="fractions"):
        parse_roi("0.5,0,0.2,1")


def test_contract_roundtrip_and_validation():
    c = InputContract(96, 128, interpolation="bilinear", roi=(0, 0, 0.5, 0.5))
    assert InputContract.from_dict(c.to_dict()) == c
    with pytest.raises(ValueError, match="interpolation"):
        InputContract(8, 8, interpolation="lanczos9")
    with pytest.raises(ValueError, match="roi"):
        InputContract(8, 8, roi=(0.5, 0, 0.4, 1))
    with pytest.raises(ValueError, match="unknown keys"):
        InputContract.from_dict({"height": 8, "width": 8, "mean": [0.5]})
