"""Train-to-device parity: the runtime's preprocessing + fp32 artifacts agree with the Keras model.

The reference is ``keras.models.load_model(run/model.keras)`` fed the training pixels
(``prepare_rgb(read_image(path))``); the device side is the camera's own path: an OpenCV BGR
frame through ``prepare_bgr`` into the bundle's fp32 TFLite and ONNX artifacts, via the runtime
backends. Every test image must get the same top-1, probabilities within 1e-3.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from export.gate import resolve_ties
from export.registry import list_formats
from runtime.bundle import Bundle
from runtime.contract import InputContract
from runtime.image_io import read_image
from runtime.preprocess import prepare_bgr, prepare_rgb
from train.conveyor import read_test_split

TOLERANCE = 1e-3


@pytest.fixture(scope="module")
def reference(tiny_bundle, tiny_run):
    """(training pixels, device-path pixels, Keras probabilities) for every test-split image."""
    import keras

    data_dir, items, manifest = read_test_split(tiny_run)
    contract = Bundle.load(tiny_bundle).contract  # what the device uses...
    assert contract == InputContract.from_dict(manifest["input"])  # ...is what training used
    train_pixels, device_pixels = [], []
    for rel, _label in items:
        path = data_dir / rel
        train_pixels.append(prepare_rgb(read_image(path), contract))
        frame = cv2.imread(str(path), cv2.IMREAD_COLOR)  # what a file source hands the loop (BGR)
        device_pixels.append(prepare_bgr(frame, contract))
    train_x, device_x = np.stack(train_pixels), np.stack(device_pixels)
    model = keras.models.load_model(tiny_run / "model.keras")
    probs = np.asarray(model.predict(train_x.astype(np.float32), batch_size=32, verbose=0))
    return train_x, device_x, probs


def test_camera_preprocessing_gives_the_training_pixels(reference):
    train_x, device_x, _ = reference
    assert train_x.dtype == device_x.dtype == np.uint8
    assert np.array_equal(train_x, device_x)  # BGR frame -> RGB model input, bit for bit


@pytest.mark.parametrize("name", [s.name for s in list_formats() if s.precision == "fp32"])
def test_fp32_artifacts_match_keras_on_every_test_image(tiny_bundle, reference, name):
    _, device_x, keras_probs = reference
    bundle = Bundle.load(tiny_bundle)
    artifact = bundle.get(name)
    with bundle.open(artifact) as engine:
        probs = np.stack([engine.run_one(x) for x in device_x])
    assert probs.shape == keras_probs.shape
    # An argmax flip between outputs equal within TOLERANCE is a float tie (the gate's rule), not a bug.
    top1, _ = resolve_ties(probs, keras_probs, TOLERANCE)
    top1_mismatch = np.flatnonzero(top1 != keras_probs.argmax(1))
    assert top1_mismatch.size == 0, f"{name}: top-1 differs from Keras on images {top1_mismatch.tolist()}"
    worst = float(np.abs(probs - keras_probs).max())
    assert worst <= TOLERANCE, f"{name}: max |p - p_keras| = {worst:.2e} > {TOLERANCE}"


def test_int8_input_table_is_the_affine_quantization(tiny_bundle, reference):
    """The uint8 lookup that feeds int8 artifacts equals round(p / scale + zero), clipped, exactly."""
    from runtime.backends.litert import quantization_table, quantize

    _, device_x, _ = reference
    bundle = Bundle.load(tiny_bundle)
    with bundle.open(bundle.get("tflite-int8"), backend="litert") as engine:
        quant, dtype = engine._in_quant, engine._in_dtype
        table_fed = engine.run_one(device_x[0])
        engine._interp.set_tensor(engine._in_index, quantize(device_x[0], quant, dtype)[None])
        engine._interp.invoke()
        direct = engine._interp.get_tensor(engine._out_index)[0]
    pixels = np.arange(256, dtype=np.uint8)
    cases = [(quant, dtype), ((0.99607843, 0), np.dtype(np.uint8)), ((0.99607843, -128), np.dtype(np.int8)),
             ((2 / 255, 128), np.dtype(np.uint8))]
    for q, dt in cases:
        np.testing.assert_array_equal(quantization_table(q, dt), quantize(pixels, q, dt))
    out_scale, out_zero = engine._out_quant
    np.testing.assert_allclose(table_fed, (direct.astype(np.float32) - out_zero) * out_scale)
