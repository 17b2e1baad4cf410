"""Bias correction for int8 weights (export.bias_correction): real Keras layers, exact expectations.

Rounding a kernel to int8 shifts each output channel's mean by ``dW . E[x]``; the correction
subtracts it. On inputs that are constant over space, that shift is exact for any kernel size, so
the tests can demand it to float precision.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from export import bias_correction as bc


def _flat_images(n: int, size: int, channels: int, seed: int = 0) -> np.ndarray:
    """Images whose every pixel of a channel is one value: conv output means are then exact."""
    rng = np.random.default_rng(seed)
    flat = rng.uniform(0, 6, (n, 1, 1, channels))
    return np.broadcast_to(flat, (n, size, size, channels)).astype(np.float32)


def test_rounding_is_symmetric_per_output_channel_on_127_steps():
    k = np.array([[0.5, -2.0], [1.0, 0.01], [-0.25, 1.0]])  # (in, out)
    q = bc.rounded(k, out_axis=1)
    assert np.allclose(q[:, 0], np.round(k[:, 0] / (1.0 / 127)) * (1.0 / 127))
    assert np.allclose(q[:, 1], np.round(k[:, 1] / (2.0 / 127)) * (2.0 / 127))
    assert bc.rounded(np.zeros((2, 3)), 1).tolist() == np.zeros((2, 3)).tolist()  # no division by zero


@pytest.mark.parametrize("kind", ["Conv2D", "DepthwiseConv2D", "Dense"])
def test_the_shift_is_the_mean_output_change_that_rounding_the_kernel_gives(kind):
    import keras

    rng = np.random.default_rng(1)
    x = _flat_images(16, 6, 4) if kind != "Dense" else rng.uniform(0, 6, (16, 4)).astype(np.float32)
    layer = {"Conv2D": keras.layers.Conv2D(5, 3, use_bias=False),
             "DepthwiseConv2D": keras.layers.DepthwiseConv2D(3, depth_multiplier=2, use_bias=False),
             "Dense": keras.layers.Dense(5, use_bias=False)}[kind]
    layer.build(x.shape)
    kernel = rng.normal(0, 1, layer.kernel.shape).astype(np.float32)
    layer.set_weights([kernel])
    before = np.asarray(layer(x)).reshape(-1, layer(x).shape[-1]).mean(axis=0)
    out_axis = 2 if kind == "DepthwiseConv2D" else kernel.ndim - 1
    if kind == "DepthwiseConv2D":  # its quantization channels are in x multiplier
        flat = kernel.reshape(3, 3, -1)
        layer.set_weights([bc.rounded(flat, 2).reshape(kernel.shape).astype(np.float32)])
    else:
        layer.set_weights([bc.rounded(kernel, out_axis).astype(np.float32)])
    after = np.asarray(layer(x)).reshape(-1, before.shape[0]).mean(axis=0)
    shift = bc.output_shift(kind, kernel, x.reshape(-1, 4).mean(axis=0))
    assert np.abs(after - before).max() > 1e-4  # there is a shift to find
    assert np.allclose(shift, after - before, atol=1e-3)  # float32 outputs of size ~30


def _tiny_model():
    """Conv -> BN -> depthwise -> BN in a nested model, pooled, then Dense. Linear on purpose: the
    rounded model's mean output is then exactly restorable, so the test can ask for it."""
    import keras

    inp = keras.Input((8, 8, 3))
    inner_in = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(8, 3, use_bias=False, name="conv")(inner_in)
    h = keras.layers.BatchNormalization(name="conv_bn")(h)
    h = keras.layers.DepthwiseConv2D(3, use_bias=False, name="dw")(h)
    h = keras.layers.BatchNormalization(name="dw_bn")(h)
    inner = keras.Model(inner_in, h, name="backbone")  # nested, as the classifier's backbone is
    pooled = keras.layers.GlobalAveragePooling2D()(inner(inp))
    model = keras.Model(inp, keras.layers.Dense(4, name="probs")(pooled))
    rng = np.random.default_rng(2)
    for layer in bc.flat_layers(model):
        ws = layer.get_weights()
        if ws and type(layer).__name__ != "BatchNormalization":
            layer.set_weights([rng.normal(0, 0.5, w.shape).astype(np.float32) for w in ws])
        elif ws:  # gamma, beta, moving mean, moving variance
            n = ws[0].shape[0]
            layer.set_weights([rng.uniform(0.5, 2, n), rng.normal(0, 0.2, n), rng.normal(0, 0.2, n),
                               rng.uniform(0.5, 2, n)])
    return model


def _weights(model) -> dict:
    return {layer.name: [w.copy() for w in layer.get_weights()] for layer in bc.flat_layers(model)}


def _round_all(model, skip=()) -> None:
    for layer in bc.flat_layers(model):
        kind = type(layer).__name__
        if kind in ("Conv2D", "DepthwiseConv2D", "Dense") and layer.name not in skip:
            ws = layer.get_weights()
            axis = 2 if kind == "DepthwiseConv2D" else ws[0].ndim - 1
            layer.set_weights([bc.rounded(ws[0], axis).astype(np.float32), *ws[1:]])


def test_corrected_and_rounded_the_model_keeps_the_float_models_mean_outputs():
    x = _flat_images(32, 8, 3, seed=3) * 40
    model = _tiny_model()
    float_mean = np.asarray(model(x)).mean(axis=0)
    original = _weights(model)
    _round_all(model)
    plain = np.abs(np.asarray(model(x)).mean(axis=0) - float_mean).max()
    for layer in bc.flat_layers(model):
        layer.set_weights(original[layer.name])

    record = bc.correct_biases(model, x)
    assert record["layers_corrected"] == 3 and record["layers_without_bias"] == []
    assert record["measured_on"] == "32 calibration images"
    _round_all(model)
    corrected = np.abs(np.asarray(model(x)).mean(axis=0) - float_mean).max()
    assert plain > 1e-3 and corrected < plain / 100


def test_the_correction_lands_in_the_bias_or_the_batchnorm_after_and_skips_float_layers():
    x = _flat_images(8, 8, 3) * 40
    model = _tiny_model()
    before = _weights(model)
    record = bc.correct_biases(model, x, exclude=frozenset({"dw"}))
    after = _weights(model)
    assert record["layers_left_float"] == ["dw"] and record["layers_corrected"] == 2
    assert all(np.array_equal(a, b) for a, b in zip(before["dw"], after["dw"], strict=True))
    # Left float: no rounding, no shift.
    assert all(np.array_equal(a, b) for a, b in zip(before["dw_bn"], after["dw_bn"], strict=True))
    assert np.array_equal(before["conv"][0], after["conv"][0])  # kernels are never changed
    assert not np.array_equal(before["conv_bn"][2], after["conv_bn"][2])  # moving mean takes the shift
    assert np.array_equal(before["conv_bn"][3], after["conv_bn"][3])
    assert not np.array_equal(before["probs"][1], after["probs"][1])  # Dense: its own bias
    assert all(layer.call.__name__ != "wrapped" for layer in bc.flat_layers(model))  # the recorders are gone


def test_small_layers_are_those_under_the_weight_count():
    model = _tiny_model()  # conv 3x3x3x8 = 216, dw 3x3x8 = 72, probs 8x4 = 32
    assert bc.small_layers(model, 100) == ("dw", "probs")
    assert bc.small_layers(model, 1) == ()


INT8_FORMATS = ("tflite-int8", "tflite-dynamic", "onnx-int8")


@pytest.fixture(scope="module")
def corrected_bundle(tiny_run, tmp_path_factory):
    """The tiny run's int8 formats exported with ``bias_correction = "on"``."""
    from export.config import ExportConfig
    from export.errors import GateRejectedError
    from export.pipeline import export
    from export.presets import Int8Preset
    from tests.fixtures.export_fixtures import TINY_CALIBRATION_SIZE, TINY_LINE_TARGETS

    out = tmp_path_factory.mktemp("bundles") / "corrected"
    config = ExportConfig(run=str(tiny_run), out=str(out), keep_going=True, threads=2, formats=INT8_FORMATS,
                          int8=Int8Preset(calibration_size=TINY_CALIBRATION_SIZE, bias_correction="on"),
                          **TINY_LINE_TARGETS)
    try:
        export(config)
    except GateRejectedError:  # the records are what this tests, passed or not
        pass
    return json.loads((out / "bundle.json").read_text())


@pytest.mark.parametrize("name", INT8_FORMATS)
def test_the_bundle_says_its_integer_artifacts_were_bias_corrected(corrected_bundle, name):
    q = next(a for a in corrected_bundle["artifacts"] if a["name"] == name)["quantization"]
    assert q["bias_correction"] is True and q["layers_corrected"] > 0
    assert "bias_correction_choice" not in q  # "on": one build, nothing chosen
    assert q["measured_on"].endswith("calibration images")
    if name != "tflite-dynamic":  # the ops kept float over the limit are not corrected
        over = {op["layer"] for op in q["float_ops"] if op["steps"] > q["op_error_limit_steps"]}
        assert over <= set(q["layers_left_float"])


@pytest.mark.parametrize("name", INT8_FORMATS)
def test_by_default_each_int8_format_keeps_the_build_validation_prefers(tiny_bundle, name):
    """``"auto"``: built as trained and bias-corrected, both judged on validation, the better kept."""
    from export.correction_choice import AS_TRAINED, CORRECTED, chosen

    doc = json.loads((tiny_bundle / "bundle.json").read_text())
    q = next(a for a in doc["artifacts"] if a["name"] == name)["quantization"]
    choice = q["bias_correction_choice"]
    verdicts = choice["validation"]
    assert set(verdicts) == {AS_TRAINED, CORRECTED}
    for v in verdicts.values():
        assert v["gate"] in ("passed", "rejected") and 0 <= v["agree"] <= v["of"] and v["error"] >= 0
    assert choice["chosen"] == chosen(verdicts[AS_TRAINED], verdicts[CORRECTED])
    assert q["bias_correction"] is (choice["chosen"] == CORRECTED)  # the kept build's own record
    report = (tiny_bundle / "report.md").read_text()
    assert f"{name} was built as trained and bias-corrected and keeps the {choice['chosen']} build" in report


def test_the_choice_prefers_a_pass_then_keeps_the_model_as_trained_unless_correction_cuts_the_error():
    from export.correction_choice import AS_TRAINED, CORRECTED, candidates_for, chosen

    def v(gate: str, error: float) -> dict:
        return {"gate": gate, "agree": 66, "of": 66, "error": error}

    assert chosen(v("rejected", 0.01), v("passed", 0.05)) == CORRECTED  # the gate first
    assert chosen(v("passed", 0.01), v("rejected", 0.001)) == AS_TRAINED
    assert chosen(v("passed", 0.0057), v("passed", 0.0010)) == CORRECTED  # hard variant, dynamic range
    assert chosen(v("passed", 0.0068), v("passed", 0.00617)) == AS_TRAINED  # a 9% cut: noise
    assert chosen(v("rejected", 0.0211), v("rejected", 0.0227)) == AS_TRAINED
    assert chosen(v("passed", 0.0), v("passed", 0.0)) == AS_TRAINED  # nothing to cut
    assert list(candidates_for("auto", 1, 2)) == [AS_TRAINED, CORRECTED]
    assert candidates_for("on", 1, 2) == {CORRECTED: 2} and candidates_for("off", 1, 2) == {AS_TRAINED: 1}


def test_fewer_steps_for_a_named_layer_give_its_own_shift():
    """ONNX Runtime's reduce_range rounds the first convolution to 64 steps each side, not 127."""
    x = _flat_images(8, 8, 3) * 40
    coarse, fine = _tiny_model(), _tiny_model()  # the same seeded weights
    assert bc.first_conv(coarse) == "conv"
    bc.correct_biases(coarse, x, qmax_of={"conv": 64})
    bc.correct_biases(fine, x)
    moved = {name: not np.array_equal(_weights(coarse)[name][2], _weights(fine)[name][2])
             for name in ("conv_bn", "dw_bn")}
    assert moved == {"conv_bn": True, "dw_bn": False}
    kernel, mean = _weights(_tiny_model())["conv"][0], x.reshape(-1, 3).mean(axis=0)
    expected = _weights(_tiny_model())["conv_bn"][2] + bc.output_shift("Conv2D", kernel, mean, 64)
    assert np.allclose(_weights(coarse)["conv_bn"][2], expected, atol=1e-5)


def test_bias_correction_is_an_option_checked_by_value():
    from export.presets import Int8Preset

    assert Int8Preset().bias_correction == "auto"  # measured better on some models, worse on one
    with pytest.raises(ValueError, match="bias_correction must be one of"):
        Int8Preset(bias_correction="yes")
