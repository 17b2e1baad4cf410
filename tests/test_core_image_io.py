"""runtime.image_io: every kind of file found in a factory photo folder decodes or fails clearly."""

import struct

import cv2
import numpy as np
import pytest

from runtime.errors import ImageReadError
from runtime.image_io import is_image_path, read_image


@pytest.fixture()
def colour():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)


def _write(path, img, params=()):
    assert cv2.imwrite(str(path), img, list(params))
    return path


def test_rgb_order(tmp_path, colour):
    bgr = colour
    got = read_image(_write(tmp_path / "a.png", bgr))
    np.testing.assert_array_equal(got, bgr[..., ::-1])


def test_greyscale_becomes_three_channels(tmp_path, colour):
    grey = colour[..., 0]
    got = read_image(_write(tmp_path / "g.png", grey))
    assert got.shape == (24, 32, 3)
    np.testing.assert_array_equal(got[..., 0], grey)
    np.testing.assert_array_equal(got[..., 2], grey)


def test_rgba_drops_alpha(tmp_path, colour):
    bgra = np.dstack([colour, np.full(colour.shape[:2], 7, np.uint8)])
    got = read_image(_write(tmp_path / "a.png", bgra))
    np.testing.assert_array_equal(got, colour[..., ::-1])


def test_16bit_scaled_to_8bit(tmp_path, colour):
    img16 = colour.astype(np.uint16) * 257  # 8-bit value v -> 16-bit v*257
    got = read_image(_write(tmp_path / "d.png", img16))
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, colour[..., ::-1])


def _exif_orientation_jpeg(img_bgr, orientation: int) -> bytes:
    """A JPEG with an APP1 EXIF segment carrying only the Orientation tag."""
    ok, buf = cv2.imencode(".jpg", img_bgr, [cv2.IMWRITE_JPEG_QUALITY, 100])
    assert ok
    tiff = b"MM\x00\x2a\x00\x00\x00\x08" + struct.pack(">H", 1)
    tiff += struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0)
    app1 = b"Exif\x00\x00" + tiff
    seg = b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1
    data = buf.tobytes()
    return data[:2] + seg + data[2:]


def test_exif_rotation_applied(tmp_path):
    img = np.zeros((20, 40, 3), np.uint8)
    img[:, :20] = 255  # left half white
    path = tmp_path / "r.jpg"
    path.write_bytes(_exif_orientation_jpeg(img, 6))  # 6 = rotate 90 degrees clockwise to display
    got = read_image(path)
    assert got.shape[:2] == (40, 20)
    assert got[:18].mean() > 200 and got[22:].mean() < 50  # white half now on top


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"", "empty file"),
        (b"this is not an image at all", "not a decodable image"),
    ],
)
def test_bad_bytes(tmp_path, content, reason):
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageReadError, match=reason):
        read_image(path)


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_truncated(tmp_path, colour, suffix):
    ok, buf = cv2.imencode(suffix, colour)
    path = tmp_path / f"t{suffix}"
    path.write_bytes(buf.tobytes()[: len(buf) // 2])
    with pytest.raises(ImageReadError, match="truncated|not a decodable"):
        read_image(path)


def test_missing_file(tmp_path):
    with pytest.raises(ImageReadError, match="cannot read"):
        read_image(tmp_path / "nope.png")


def test_suffixes():
    assert is_image_path("a/B.JPEG") and is_image_path("x.webp") and not is_image_path("notes.txt")
