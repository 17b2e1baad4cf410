"""TFLite int8 over MSE activation ranges (export.activation_ranges), and the validation choice.

Real conversions of the tiny run's SavedModel and real LiteRT interpreters; the histograms are of the
calibrated model's own activations on calibration images.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from export import activation_ranges as ar
from export import int8_fallback as fb
from export.config import ExportConfig
from export.errors import OptionError
from export.options import resolve_settings
from export.presets import Int8Preset
from export.registry import get_format


def _hist(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.histogram(values, bins=ar.BINS, range=(lo, hi))[0]


def _error(values: np.ndarray, lo: float, hi: float) -> float:
    """Mean squared error of 8-bit quantization of ``values`` over ``[lo, hi]``, computed directly."""
    scale = (hi - lo) / 255
    zero = np.round(-lo / scale)
    return float(np.mean(((np.clip(np.round(values / scale) + zero, 0, 255) - zero) * scale - values) ** 2))


def test_a_long_tail_is_clipped_where_the_error_is_least():
    # A ReLU6 output whose values lie under 1 but once reached 6: min/max spends 5/6 of its steps on
    # that one value; clipping it costs (6 - hi)^2 once, and a finer step saves on the million others.
    values = np.concatenate([np.random.default_rng(0).uniform(0.0, 1.0, 1_000_000), [6.0]])
    lo, hi = ar.mse_range(_hist(values, 0.0, 6.0), 0.0, 6.0)
    assert lo == 0.0 and 1.0 < hi < 4.0
    assert _error(values, lo, hi) < 0.7 * _error(values, 0.0, 6.0)


def test_values_that_fill_their_range_keep_it():
    values = np.random.default_rng(1).uniform(-2.0, 4.0, 100_000)
    lo, hi = ar.mse_range(_hist(values, -2.0, 4.0), -2.0, 4.0)
    assert (lo, hi) == (-2.0, 4.0)


def test_a_negative_tail_is_clipped_too_and_zero_stays_in_range():
    rng = np.random.default_rng(2)
    values = np.concatenate([rng.normal(0.0, 0.2, 100_000), [-5.0, 5.0]])  # a linear output's outliers
    lo, hi = ar.mse_range(_hist(values, -5.0, 5.0), -5.0, 5.0)
    assert -5.0 < lo < 0.0 < hi < 5.0
    assert _error(values, lo, hi) < _error(values, -5.0, 5.0)


def _scales(path) -> dict[str, float]:
    """Per-tensor activation scale of an int8 TFLite model, by tensor name."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path))
    return {t["name"]: t["quantization"][0] for t in it.get_tensor_details()
            if t["dtype"] == np.int8 and t["quantization"][0] and len(t["shape"]) == 4}


def test_the_narrowed_ranges_are_what_the_built_model_quantizes_with(tiny_calibration, tmp_path):
    from export.formats_tflite import convert_tflite

    saved_model, cal = tiny_calibration
    mse = convert_tflite(saved_model, str(tmp_path / "mse.tflite"), "int8", cal, "auto",
                         activation_ranges="mse")["quantization"]
    minmax = convert_tflite(saved_model, str(tmp_path / "minmax.tflite"), "int8", cal, "auto")["quantization"]
    assert mse["activation_ranges"] == "mse" and "activation_ranges" not in minmax
    assert mse["float_ops"] == minmax["float_ops"]  # the same ops float, only the ranges differ
    assert mse["tensors"] > 0
    assert mse["ranges_measured_on"] == f"{min(64, ar.RANGE_IMAGES)} calibration images"
    narrowed, full = _scales(tmp_path / "mse.tflite"), _scales(tmp_path / "minmax.tflite")
    common = [n for n in narrowed if n in full]
    assert len(common) > 10
    # Never wider than min/max (a scale may grow by the quantizer's nudging of zero, far under 1%).
    assert all(narrowed[n] <= full[n] * 1.01 for n in common)
    assert 0 < sum(narrowed[n] < full[n] * 0.99 for n in common) <= mse["tensors_narrowed"]
    from runtime.backends import open_backend

    with open_backend(tmp_path / "mse.tflite", backend="litert", threads=1) as backend:
        probs = backend.run(np.load(cal)[:4])
    assert np.all(np.isfinite(probs)) and np.allclose(probs.sum(1), 1.0, atol=0.02)


def test_auto_keeps_the_ranges_validation_prefers(tiny_calibration, tmp_path):
    from export.config import GatePolicy
    from export.formats_tflite import _converter, convert_tflite

    saved_model, cal = tiny_calibration
    images = np.load(cal)[:24]
    fp32 = _converter(saved_model, "fp32", None).convert()
    (tmp_path / "fp32.tflite").write_bytes(fp32)
    probs = _probs(tmp_path / "fp32.tflite", images)
    labels = [f"c{i}" for i in range(probs.shape[1])]
    val = tmp_path / "val.npz"
    np.savez(val, images=images, probs=probs, y=probs.argmax(1), labels=np.array(labels))
    q = convert_tflite(saved_model, str(tmp_path / "auto.tflite"), "int8", cal, "auto", str(val),
                       GatePolicy(), "auto")["quantization"]
    choice = q["activation_ranges_choice"]
    verdicts = choice["validation"]
    assert set(verdicts) == {"min/max", "mse"} and {v["of"] for v in verdicts.values()} == {24}
    tried = next(t for t in q["validation_tries"] if t["float_ops"] == len(q["float_ops"]))
    assert verdicts["min/max"] == {k: tried[k] for k in ("gate", "agree", "of", "error")}
    want = "mse" if fb.prefers(verdicts["min/max"], verdicts["mse"]) else "min/max"
    assert choice["chosen"] == want
    assert q["activation_ranges"] == ("mse" if want == "mse" else "minmax")
    # The file kept is the build chosen: its validation error is the chosen verdict's.
    assert fb.output_error(_probs(tmp_path / "auto.tflite", images), probs) == verdicts[want]["error"]


def _probs(path, images: np.ndarray) -> np.ndarray:
    """Probabilities through the runtime's LiteRT backend, threaded as the validation judge runs it."""
    from runtime.backends import open_backend

    with open_backend(path, backend="litert", threads=None) as engine:
        return engine.run(images)


@pytest.mark.parametrize("incumbent, challenger, preferred", [
    ({"gate": "rejected", "error": 0.01}, {"gate": "passed", "error": 0.05}, True),  # the gate first
    ({"gate": "passed", "error": 0.01}, {"gate": "rejected", "error": 0.001}, False),
    ({"gate": "passed", "error": 0.0120}, {"gate": "passed", "error": 0.0084}, True),  # a 30% cut
    ({"gate": "passed", "error": 0.0120}, {"gate": "passed", "error": 0.0100}, False),  # 17%: noise
    ({"gate": "rejected", "error": 0.0300}, {"gate": "rejected", "error": 0.0200}, True),
])
def test_a_change_is_kept_only_where_validation_prefers_it(incumbent, challenger, preferred):
    assert fb.prefers(incumbent, challenger) is preferred


def test_activation_ranges_is_a_tflite_int8_option_checked_by_value():
    with pytest.raises(ValueError, match="activation_ranges must be one of"):
        Int8Preset(activation_ranges="percentile")
    with pytest.raises(ValueError, match="needs float_fallback = 'auto'"):
        Int8Preset(activation_ranges="mse", float_fallback="off")
    assert resolve_settings(get_format("tflite-int8"), ExportConfig())["activation_ranges"] == "auto"
    forced = ExportConfig(options={"tflite-int8": {"activation_ranges": "minmax"}})
    assert resolve_settings(get_format("tflite-int8"), forced)["activation_ranges"] == "minmax"
    with pytest.raises(OptionError, match="accepted by: tflite-int8"):
        onnx = ExportConfig(options={"onnx-int8": {"activation_ranges": "mse"}})
        resolve_settings(get_format("onnx-int8"), onnx)


def test_the_bundle_and_report_say_which_ranges_the_int8_artifact_keeps(tiny_bundle):
    doc = json.loads((tiny_bundle / "bundle.json").read_text())
    q = next(a for a in doc["artifacts"] if a["name"] == "tflite-int8")["quantization"]
    choice = q["activation_ranges_choice"]
    assert choice["chosen"] in ("mse", "min/max") and q["activation_ranges"] in ("mse", "minmax")
    report = (tiny_bundle / "report.md").read_text()
    assert "--option tflite-int8.activation_ranges=minmax (or =mse)" in report
    onnx = next(a for a in doc["artifacts"] if a["name"] == "onnx-int8")["quantization"]
    assert "activation_ranges_choice" not in onnx  # ONNX Runtime calibrates its own way
