"""TFLite formats, all converted from the run's inference SavedModel.

The conversion itself runs in :class:`export.worker.ConverterWorker` (a spawned process), because
the TFLite quantizer can segfault instead of raising; everything here is picklable plain data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from export.registry import FormatJob, register_format


def convert_tflite(saved_model: str, dest: str, precision: str, calibration: str | None = None) -> int:
    """Convert ``saved_model`` to ``dest`` at ``precision``; returns the size. Runs in the worker.

    ``calibration`` is an ``.npy`` of ``(N,H,W,3) uint8`` images (int8 only).
    """
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
        # INT8 builtins only (no float fallback): an unquantizable op fails loudly instead of
        # leaving a float island inside an "int8" model.
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
    try:
        data = converter.convert()
    except Exception as exc:  # TF's ConverterError may not pickle back to the parent
        raise RuntimeError(f"{type(exc).__name__}: {exc}") from None
    Path(dest).write_bytes(data)
    return len(data)


def _convert(job: FormatJob, calibration: str | None = None) -> None:
    job.ctx.worker().run(convert_tflite, str(job.ctx.run.file("saved_model")), str(job.dest),
                         job.spec.precision, calibration)


@register_format("tflite-fp32", "tflite", "fp32")
def export_tflite_fp32(job: FormatJob) -> None:
    """Float32 TFLite: the reference numerics, runs everywhere."""
    _convert(job)


@register_format("tflite-fp16", "tflite", "fp16")
def export_tflite_fp16(job: FormatJob) -> None:
    """Float16 weights (half the size); float32 input/output, computed in fp32 on CPUs."""
    _convert(job)


@register_format("tflite-dynamic", "tflite", "dynamic")
def export_tflite_dynamic(job: FormatJob) -> None:
    """Dynamic-range: int8 weights, float activations; no calibration data needed."""
    _convert(job)


@register_format("tflite-int8", "tflite", "int8", options=("int8.calibration_size",))
def export_tflite_int8(job: FormatJob) -> None:
    """Full integer: uint8 in/out, int8-only builtin ops, calibrated on real train images."""
    _convert(job, str(job.ctx.calibration_file(int(job.settings["calibration_size"]))))
