"""ONNX formats: fp32 from the Keras model, int8 static QDQ and fp16 derived from it."""

from __future__ import annotations

import shutil

import numpy as np

from export.onnx_convert import INPUT_NAME
from export.registry import FormatJob, register_format

_METHODS = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}


@register_format("onnx-fp32", "onnx", "fp32", options=("opset",))
def export_onnx_fp32(job: FormatJob) -> None:
    """Float32 ONNX, opset 17, batch 1, input "image" (RGB 0..255 float32, NHWC)."""
    shutil.copyfile(job.ctx.onnx_fp32(int(job.settings["opset"])), job.dest)


def _reader(images: np.ndarray):
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter(images)

        def get_next(self):
            image = next(self._it, None)
            return None if image is None else {INPUT_NAME: image[None].astype(np.float32)}

    return Reader()


@register_format("onnx-int8", "onnx", "int8",
                 options=("opset", "calibration_size", "calibration_method", "per_channel", "reduce_range"))
def export_onnx_int8(job: FormatJob) -> None:
    """Static int8 QDQ (ONNX Runtime): per-channel int8 weights, int8 activations, real-image calibration.

    Weights use 7 bits by default (``reduce_range``, see :class:`export.presets.Int8Preset`).
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    src = job.ctx.onnx_fp32(int(job.settings["opset"]))
    pre = job.ctx.workdir / "int8_preprocessed.onnx"
    # Shape inference + BN/Conv fusion first, as ORT recommends (needs sympy).
    quant_pre_process(str(src), str(pre))
    images = job.ctx.calibration_images(int(job.settings["calibration_size"]))
    quantize_static(str(pre), str(job.dest), _reader(images), quant_format=QuantFormat.QDQ,
                    per_channel=bool(job.settings["per_channel"]),
                    reduce_range=bool(job.settings["reduce_range"]), weight_type=QuantType.QInt8,
                    activation_type=QuantType.QInt8,
                    calibrate_method=getattr(CalibrationMethod, _METHODS[job.settings["calibration_method"]]))


@register_format("onnx-fp16", "onnx", "fp16", options=("opset", "keep_io_types"))
def export_onnx_fp16(job: FormatJob) -> None:
    """Float16 ONNX for GPUs (CUDA/TensorRT); float32 input/output kept. Slower than fp32 on CPU."""
    import onnx
    from onnxconverter_common import float16

    model = onnx.load(str(job.ctx.onnx_fp32(int(job.settings["opset"]))))
    half = float16.convert_float_to_float16(model, keep_io_types=bool(job.settings["keep_io_types"]))
    onnx.save(half, str(job.dest))
