"""TFLite formats, all converted from the run's inference SavedModel.

The conversion itself runs in :class:`export.worker.ConverterWorker` (a spawned process), because
the TFLite quantizer can segfault instead of raising; everything here is picklable plain data.
"""

from __future__ import annotations

import os
import sys
from functools import partial
from pathlib import Path

import numpy as np

from export.config import GatePolicy
from export.correction_choice import build_best, candidates_for
from export.registry import FormatJob, register_format

# TFLite's dynamic-range quantizer leaves weight tensors with fewer elements than this in float
# (its default weight-size threshold).
DYNAMIC_MIN_ELEMENTS = 1024


def convert_tflite(saved_model: str, dest: str, precision: str, calibration: str | None = None,
                   float_fallback: str = "off", validation: str | None = None,
                   policy: GatePolicy | None = None, activation_ranges: str = "minmax") -> dict:
    """Convert ``saved_model`` to ``dest`` at ``precision``. Runs in the worker.

    ``calibration`` is an ``.npy`` of ``(N,H,W,3) uint8`` images (int8 only). With ``float_fallback``
    ``"auto"`` (int8 only) the ops whose int8 error exceeds :data:`export.int8_fallback.OP_ERROR_LIMIT`
    on calibration images stay in float, and with ``validation`` (an ``.npz``, see
    :func:`export.int8_fallback.validation_judge`) a few more while the gate (``policy``) would reject
    the model on it. ``activation_ranges`` (``"minmax"``, ``"mse"``, ``"auto"``; with the fallback
    only) says how activations are ranged (:func:`_ranged_build`). Returns ``{"size_bytes",
    "quantization"}``; the latter (int8 only) names the ops kept in float and the worst op errors.
    """
    make = partial(_converter, saved_model, precision, calibration)
    try:
        if precision == "int8" and float_fallback == "auto":
            data, quantization = _int8_with_fallback(make, measured(saved_model, calibration),
                                                     validation, policy)
            if activation_ranges != "minmax":
                data, quantization = _ranged_build(data, quantization, np.load(calibration),
                                                   measured(saved_model, calibration)[0], activation_ranges,
                                                   validation, policy)
        else:
            data, quantization = make().convert(), None
    except Exception as exc:  # TF's ConverterError may not pickle back to the parent
        raise RuntimeError(f"{type(exc).__name__}: {exc}") from None
    Path(dest).write_bytes(data)
    if precision == "int8" and quantization is None:
        quantization = {"float_fallback": float_fallback, "float_ops": []}
    return {"size_bytes": len(data), "quantization": quantization}


def int8_op_errors(saved_model: str, calibration: str) -> list[dict]:
    """Every op's own int8 error on calibration images, worst first (:func:`export.int8_fallback.measure`).

    Runs in the worker. ONNX int8 ranks its float candidates by it (:mod:`export.onnx_fallback`).
    """
    try:
        return measured(saved_model, calibration)[1]
    except Exception as exc:  # TF's errors may not pickle back to the parent
        raise RuntimeError(f"{type(exc).__name__}: {exc}") from None


# The worker's measurements, by the files measured: both int8 formats ask for the same one (TFLite
# for its float fallback, ONNX for its ranking) and it takes tens of seconds on a real model.
_MEASURED: dict[tuple, tuple[bytes, list[dict], int]] = {}


def measured(saved_model: str, calibration: str) -> tuple[bytes, list[dict], int]:
    """``(calibrated model, every op's int8 error, images measured on)``, measured once per worker process.

    :func:`export.int8_fallback.measure` on the first calibration images. Keyed by both paths with their
    modification times and sizes, so a rewritten file is measured again.
    """
    from export import int8_fallback as fb

    key = tuple((p, os.stat(p).st_mtime_ns, os.stat(p).st_size) for p in (saved_model, calibration))
    if key not in _MEASURED:
        images = np.load(calibration)[:fb.DEBUG_IMAGES]
        _MEASURED[key] = (*fb.measure(_converter(saved_model, "int8", calibration), images), len(images))
        print(f"int8 per-op error measured on {len(images)} calibration images", file=sys.stderr, flush=True)
    return _MEASURED[key]


def _converter(saved_model: str, precision: str, calibration: str | None):
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
    if precision != "fp32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if precision == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    if precision == "int8":
        images = np.load(calibration)

        def representative():
            for image in images:  # float32 0..255: the SavedModel's input, the device's pixels
                yield [image[None].astype(np.float32)]

        converter.representative_dataset = representative
        # INT8 builtins only: an unquantizable op fails loudly instead of leaving a float island
        # inside an "int8" model (the one float island allowed is the measured one of
        # export.int8_fallback, named in the bundle).
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
    return converter


def _int8_with_fallback(make_converter, measurement: tuple[bytes, list[dict], int], validation: str | None,
                        policy: GatePolicy | None) -> tuple[bytes, dict]:
    """Full-integer, unless some ops' int8 error is far beyond rounding (or the gate rejects it on val)."""
    from export import int8_fallback as fb

    calibrated, errors, n_images = measurement

    def build(ops: list[dict]) -> bytes:
        if not ops:  # the converter's own full-integer path, exactly as with float_fallback="off"
            return make_converter().convert()
        return fb.quantize_except(calibrated, [e["tensor"] for e in ops])

    record = {"float_fallback": "auto", "op_error_limit_steps": fb.OP_ERROR_LIMIT,
              "measured_on": f"{n_images} calibration images"}
    if validation is None:
        worst = fb.above_limit(errors)
        model = build(worst)
    else:
        judge = fb.validation_judge(validation, policy or GatePolicy())
        model, worst, tries = fb.checked_on_validation(build, errors, judge)
        record["validation_tries"] = tries
    record.update(float_ops=worst, worst_int8_ops=[e for e in errors if e not in worst][:3])
    return model, record


def _ranged_build(minmax: bytes, record: dict, calibration: np.ndarray, calibrated: bytes, mode: str,
                  validation: str | None, policy: GatePolicy | None) -> tuple[bytes, dict]:
    """The model with the same float ops over MSE activation ranges (:mod:`export.activation_ranges`).

    ``mode`` ``"mse"`` keeps it; ``"auto"`` judges it on validation against ``minmax`` (the build the
    float-op search kept) and keeps it only where validation prefers it
    (:func:`export.int8_fallback.prefers`). The record gains ``activation_ranges`` (the ranges kept)
    and, with ``"auto"``, ``activation_ranges_choice``.
    """
    from export import int8_fallback as fb
    from export.activation_ranges import with_mse_ranges

    if mode == "auto" and validation is None:  # nothing to judge the change on: the converter's ranges
        return minmax, {**record, "activation_ranges": "minmax"}
    narrowed, ranges = with_mse_ranges(calibrated, calibration)
    model = fb.quantize_except(narrowed, [e["tensor"] for e in record["float_ops"]])
    if mode == "mse":
        return model, {**record, **ranges}
    judge = fb.validation_judge(validation, policy or GatePolicy())
    before = next(t for t in record["validation_tries"] if t["float_ops"] == len(record["float_ops"]))
    verdicts = {"min/max": {k: before[k] for k in ("gate", "agree", "of", "error")}, "mse": judge(model)}
    keep = fb.prefers(verdicts["min/max"], verdicts["mse"])
    choice = {"mode": "auto", "chosen": "mse" if keep else "min/max", "validation": verdicts,
              "rule": f"passes the gate on validation; if both or neither, MSE ranges only when they cut "
                      f"the output error by {fb.MIN_ERROR_CUT:.0%}"}
    if keep:
        return model, {**record, **ranges, "activation_ranges_choice": choice}
    return minmax, {**record, "activation_ranges": "minmax", "activation_ranges_choice": choice}


def _convert(job: FormatJob, dest: Path, calibration: str | None = None, validation: str | None = None,
             source: Path | None = None, correction: dict | None = None) -> dict | None:
    """Convert ``source`` (default: the run's SavedModel) to ``dest``; return its quantization record.

    ``correction`` is the bias correction's record (None for the model as trained), merged into it;
    float formats record nothing (None).
    """
    source = source or job.ctx.run.file("saved_model")
    done = job.ctx.worker().run(convert_tflite, str(source), str(dest), job.spec.precision, calibration,
                                job.settings.get("float_fallback", "off"), validation, job.ctx.config.gate,
                                job.settings.get("activation_ranges", "minmax"))
    if job.spec.precision in ("fp32", "fp16"):  # nothing quantized, nothing to record
        return None
    return {**(done["quantization"] or {}), **(correction or {"bias_correction": False})}


def float_layers_for_correction(job: FormatJob, calibration: str) -> tuple[str, ...]:
    """The layers an int8 format's bias correction leaves alone: those its float fallback keeps float.

    With ``float_fallback = "auto"`` the ops whose int8 error is beyond
    :data:`export.int8_fallback.OP_ERROR_LIMIT` stay float; measured first on the model as trained,
    their layers are left uncorrected. (Ops the validation check adds later keep their correction;
    the check judges the model as built. Rebuilding them uncorrected was tried and measured worse on
    a neu_det model, see the README.)
    """
    if job.settings.get("float_fallback") != "auto":
        return ()
    from export import int8_fallback as fb

    errors = job.ctx.worker().run(int8_op_errors, str(job.ctx.run.file("saved_model")), calibration)
    return tuple(e["layer"] for e in fb.above_limit(errors))


@register_format("tflite-fp32", "tflite", "fp32")
def export_tflite_fp32(job: FormatJob) -> None:
    """Float32 TFLite: the reference numerics, runs everywhere."""
    _convert(job, job.dest)


@register_format("tflite-fp16", "tflite", "fp16")
def export_tflite_fp16(job: FormatJob) -> None:
    """Float16 weights (half the size); float32 input/output, computed in fp32 on CPUs."""
    _convert(job, job.dest)


@register_format("tflite-dynamic", "tflite", "dynamic",
                 options=("int8.calibration_size", "int8.bias_correction"))
def export_tflite_dynamic(job: FormatJob) -> None:
    """Dynamic-range: int8 weights, float activations; no calibration data for the converter.

    With ``bias_correction = "on"`` it converts a copy of the model whose biases cancel the weights'
    int8 rounding shift, measured on ``calibration_size`` train images; the converter leaves weight
    tensors under :data:`DYNAMIC_MIN_ELEMENTS` float, so those layers are not corrected. ``"auto"``
    (the default) converts both and keeps the one validation prefers (:mod:`export.correction_choice`).
    """
    def corrected(dest: Path) -> dict:
        from export.bias_correction import small_layers

        source, correction = job.ctx.bias_corrected_saved_model(
            int(job.settings["calibration_size"]), small_layers(job.ctx.keras_model(), DYNAMIC_MIN_ELEMENTS))
        return _convert(job, dest, source=source, correction=correction)

    builds = candidates_for(job.settings["bias_correction"], lambda dest: _convert(job, dest), corrected)
    job.details["quantization"] = build_best(job, "tflite", builds)


@register_format("tflite-int8", "tflite", "int8",
                 options=("int8.calibration_size", "int8.float_fallback", "int8.bias_correction",
                          "int8.activation_ranges"))
def export_tflite_int8(job: FormatJob) -> None:
    """Integer: uint8 in/out, int8 builtin ops, calibrated on real train images.

    With ``float_fallback = "auto"`` (the default) an op whose int8 error is far beyond rounding
    stays in float, and a few more while the gate rejects it on validation, named in the bundle; ``"off"``
    keeps every op integer (int8-only accelerators). With the fallback, ``activation_ranges = "auto"``
    also builds the model over MSE activation ranges and keeps them where validation prefers them.
    With ``bias_correction = "on"`` it converts a copy of the model whose biases cancel the weights'
    int8 rounding shift; ``"auto"`` (the default) converts both and keeps the one validation prefers
    (:mod:`export.correction_choice`).
    """
    fallback = job.settings.get("float_fallback") == "auto"
    size = int(job.settings["calibration_size"])
    calibration = str(job.ctx.calibration_file(size))
    validation = str(job.ctx.validation_file()) if fallback else None

    def corrected(dest: Path) -> dict:
        keep_float = float_layers_for_correction(job, calibration)
        source, correction = job.ctx.bias_corrected_saved_model(size, keep_float)
        return _convert(job, dest, calibration, validation, source, correction)

    builds = candidates_for(job.settings["bias_correction"],
                            lambda dest: _convert(job, dest, calibration, validation), corrected)
    job.details["quantization"] = build_best(job, "tflite", builds)
