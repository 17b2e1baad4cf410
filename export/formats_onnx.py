"""ONNX formats: fp32 from the Keras model, int8 static QDQ and fp16 derived from it."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

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


def _first_conv_override(model_path: Path, per_channel: bool) -> dict:
    """``TensorQuantOverrides`` giving the first convolution's weights 7 bits (see Int8Preset)."""
    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph
    first = next((n for n in graph.node if n.op_type == "Conv"), None)
    if first is None:
        return {}
    override = {"reduce_range": True, **({"axis": 0} if per_channel else {})}
    return {"TensorQuantOverrides": {first.input[1]: [override]}}


@register_format("onnx-int8", "onnx", "int8",
                 options=("opset", "int8.calibration_size", "int8.calibration_method", "int8.per_channel",
                          "int8.reduce_range"))
def export_onnx_int8(job: FormatJob) -> None:
    """Static int8 QDQ (ONNX Runtime): per-channel int8 weights, int8 activations, real-image calibration.

    The first convolution's weights get 7 bits by default (``reduce_range="first_conv"``): the fix
    for int8 saturation on AVX2 CPUs, see :class:`export.presets.Int8Preset`.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    src = job.ctx.onnx_fp32(int(job.settings["opset"]))
    pre = job.ctx.workdir / "int8_preprocessed.onnx"
    # Shape inference + BN/Conv fusion first, as ORT recommends (needs sympy).
    quant_pre_process(str(src), str(pre))
    images = job.ctx.calibration_images(int(job.settings["calibration_size"]))
    per_channel, reduce = bool(job.settings["per_channel"]), job.settings["reduce_range"]
    extra = _first_conv_override(pre, per_channel) if reduce == "first_conv" else {}
    quantize_static(str(pre), str(job.dest), _reader(images), quant_format=QuantFormat.QDQ,
                    per_channel=per_channel, reduce_range=reduce == "all", weight_type=QuantType.QInt8,
                    activation_type=QuantType.QInt8, extra_options=extra,
                    calibrate_method=getattr(CalibrationMethod, _METHODS[job.settings["calibration_method"]]))


@register_format("onnx-fp16", "onnx", "fp16", options=("opset", "fp16.keep_io_types"))
def export_onnx_fp16(job: FormatJob) -> None:
    """Float16 ONNX for GPUs (CUDA/TensorRT); float32 input/output kept. Slower than fp32 on CPU."""
    import onnx
    from onnxconverter_common import float16

    model = onnx.load(str(job.ctx.onnx_fp32(int(job.settings["opset"]))))
    with warnings.catch_warnings():  # one "truncated to 1e-07" warning per tiny weight: noise
        warnings.simplefilter("ignore", UserWarning)
        half = float16.convert_float_to_float16(model, keep_io_types=bool(job.settings["keep_io_types"]))
    onnx.save(half, str(job.dest))
