"""A format that fails (even by crashing its converter process) is recorded; the others still run.

Also: a crash in the middle of an export never leaves a half-written bundle that looks complete.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from export import registry
from export.__main__ import main
from export.bundle_writer import publish, staging_dir
from export.config import ExportConfig
from export.errors import ExportError
from export.pipeline import export
from export.presets import Int8Preset
from export.registry import register_format
from tests.fixtures.export_fixtures import write_fake_run


@pytest.fixture(scope="module")
def crashing_run(tmp_path_factory) -> Path:
    """A real run whose int8 TFLite conversion segfaults the converter.

    Softplus straight on raw 0..255 convolution outputs overflows float32 (exp(429)) while the int8
    calibration runs, and TF 2.21's quantizer prints "scale out of expressed type range" and dies
    with SIGSEGV instead of raising. The same overflow in the fp32 artifact gave inf, then NaN
    probabilities, on AVX-512 machines (whose kernels compute softplus as log(1 + exp(x))) and
    finite ones on AVX2: the clip at 100 keeps the fp32 outputs finite on every CPU, and the head
    (zero kernel, bias [0, 4]) gives every image p(ok) = 0.982, so no verdict hangs on rounding.
    """
    import keras

    run = write_fake_run(tmp_path_factory.mktemp("crashing"))
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Activation("softplus")(keras.layers.Conv2D(4, 3)(inputs))
    x = keras.layers.ReLU(max_value=100.0)(x)  # min(inf, 100): finite fp32 outputs, calibration still dies
    head = keras.layers.Dense(2, activation="softmax", kernel_initializer="zeros",
                              bias_initializer=keras.initializers.Constant([0.0, 4.0]))
    model = keras.Model(inputs, head(keras.layers.GlobalAveragePooling2D()(x)))
    shutil.rmtree(run / "saved_model")
    model.save(run / "model.keras")
    model.export(str(run / "saved_model"), verbose=False)
    return run


def test_converter_crash_fails_one_format_and_the_others_still_run(crashing_run, tmp_path, capsys):
    out = tmp_path / "bundle"
    rc = main(["--run", str(crashing_run), "--out", str(out), "--formats", "tflite-int8,tflite-fp32",
               "--calibration-size", "6"])
    err = capsys.readouterr().err
    assert rc == 3
    assert "tflite-int8 failed to export" in err and "converter process died" in err
    doc = json.loads((out / "bundle.json").read_text())
    assert [f["name"] for f in doc["failed_exports"]] == ["tflite-int8"]
    assert "scale out of expressed type range" in doc["failed_exports"][0]["error"]  # the cause, named
    assert [a["name"] for a in doc["artifacts"]] == ["tflite-fp32"]
    gate = doc["artifacts"][0]["gate"]
    assert gate["status"] == "passed" and gate["metrics"]["agreement"] == 1.0 and gate["metrics"]["ties"] == 0
    assert not (out / "model_int8.tflite").exists()
    assert "export failed" in (out / "report.md").read_text()


def test_a_crash_is_explained_by_its_error_not_by_tensorflows_start_up_lines(tmp_path):
    from export.worker import ConverterWorker

    log = tmp_path / "converter.log"
    onednn = ("I0000 00:00:1796526320.659401   30125 port.cc:153] oneDNN custom operations are on. You may "
              "see slightly different numerical results due to floating-point round-off errors from "
              "different computation orders.")
    log.write_text(f"old job: error: not this one\n{onednn}\nloc(fused): error: 'tfl.quantize' op scale "
                   f"out of expressed type range\n{onednn}\n")
    tail = ConverterWorker(log)._tail(len("old job: error: not this one\n"))
    assert tail == "'tfl.quantize' op scale out of expressed type range"


def test_keep_going_accepts_the_bundle_when_something_passed(crashing_run, tmp_path):
    config = ExportConfig(run=str(crashing_run), out=str(tmp_path / "b"), keep_going=True,
                          formats=("tflite-int8", "tflite-fp32"), int8=Int8Preset(calibration_size=6))
    assert export(config) == (tmp_path / "b").absolute()  # no exception: tflite-fp32 passed


@pytest.fixture
def temp_format():
    added = []

    def add(name: str, fn, precision: str):
        register_format(name, "tflite", precision)(fn)
        added.append(name)

    yield add
    for name in added:
        registry._FORMATS.pop(name, None)


def test_crash_midway_leaves_the_previous_bundle_untouched(fake_run, tmp_path, temp_format):
    out = tmp_path / "bundles" / "line3"
    out.mkdir(parents=True)
    (out / "bundle.json").write_text('{"previous": true}')
    (out / "model_int8.tflite").write_bytes(b"previous model")

    def dies_halfway(job):
        job.dest.write_bytes(b"half a model")
        raise KeyboardInterrupt  # not an Exception: nothing may catch and continue

    temp_format("test-dies", dies_halfway, "fp32")
    with pytest.raises(KeyboardInterrupt):
        export(ExportConfig(run=str(fake_run), out=str(out), formats=("test-dies",)))
    assert json.loads((out / "bundle.json").read_text()) == {"previous": True}
    assert (out / "model_int8.tflite").read_bytes() == b"previous model"
    assert sorted(p.name for p in out.parent.iterdir()) == ["line3"]  # no staging folder left


def test_publish_swaps_in_the_new_bundle_and_deletes_the_old(tmp_path):
    out = tmp_path / "b"
    out.mkdir()
    (out / "bundle.json").write_text("old")
    (out / "stale.onnx").write_text("old artifact")
    with staging_dir(out) as staging:
        (staging / "bundle.json").write_text("new")
        publish(staging, out)
    assert (out / "bundle.json").read_text() == "new" and not (out / "stale.onnx").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_publish_refuses_a_staging_folder_without_bundle_json(tmp_path):
    out = tmp_path / "b"
    with pytest.raises(ExportError, match="incomplete bundle"), staging_dir(out) as staging:
        (staging / "model_fp32.tflite").write_text("x")
        publish(staging, out)
    assert not out.exists() and list(tmp_path.iterdir()) == []

