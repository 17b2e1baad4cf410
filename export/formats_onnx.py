"""ONNX formats: fp32 from the Keras model, int8 static QDQ and fp16 derived from it."""

from __future__ import annotations

import shutil
import warnings
from functools import partial
from pathlib import Path

import numpy as np

from export.correction_choice import build_best, candidates_for
from export.onnx_convert import INPUT_NAME
from export.registry import FormatJob, register_format

_METHODS = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}
REDUCED_QMAX = 64  # ONNX Runtime's reduce_range rounds symmetric int8 weights to [-64, 64]


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
                          "int8.reduce_range", "int8.float_fallback", "int8.bias_correction"))
def export_onnx_int8(job: FormatJob) -> None:
    """Static int8 QDQ (ONNX Runtime): per-channel int8 weights, int8 activations, real-image calibration.

    The first convolution's weights get 7 bits by default (``reduce_range="first_conv"``): the fix
    for int8 saturation on AVX2 CPUs, see :class:`export.presets.Int8Preset`. With
    ``float_fallback = "auto"`` (the default) the ops int8 cannot carry stay float
    (:mod:`export.onnx_fallback`), named in the bundle; ``"off"`` keeps every op integer. With
    ``bias_correction = "on"`` (per-channel weights only) it quantizes a copy of the model whose
    biases cancel the weights' int8 rounding shift (:mod:`export.bias_correction`); ``"auto"`` (the
    default) quantizes both and keeps the one validation prefers (:mod:`export.correction_choice`).
    """
    mode = job.settings["bias_correction"] if job.settings["per_channel"] else "off"

    def as_trained(dest: Path) -> dict:  # converts the fp32 graph only when this build is asked for
        source = job.ctx.onnx_fp32(int(job.settings["opset"]))
        return _quantized(job, source, {"bias_correction": False}, dest)

    builds = candidates_for(mode, as_trained, lambda dest: _quantized(job, *_corrected_source(job), dest))
    job.details["quantization"] = build_best(job, "onnx", builds)


def _quantized(job: FormatJob, src: Path, correction: dict, dest: Path) -> dict:
    """``src`` (fp32 ONNX) quantized to int8 QDQ at ``dest``, ops kept float as the settings say.

    Returns the quantization record, ``correction`` (the bias correction's) merged in.
    """
    from onnxruntime.quantization.shape_inference import quant_pre_process

    pre = job.ctx.workdir / "int8_preprocessed.onnx"
    # Shape inference + BN/Conv fusion first, as ORT recommends (needs sympy).
    quant_pre_process(str(src), str(pre))
    images = job.ctx.calibration_images(int(job.settings["calibration_size"]))
    build = partial(quantize_qdq, pre, job.ctx.workdir / "int8_candidate.onnx", images, job.settings)
    if job.settings["float_fallback"] != "auto":
        dest.write_bytes(build([]))
        return {"float_fallback": "off", "float_ops": [], **correction}
    from export.formats_tflite import int8_op_errors
    from export.int8_fallback import validation_judge
    from export.onnx_fallback import quantize_with_fallback

    errors = job.ctx.worker().run(int8_op_errors, str(job.ctx.run.file("saved_model")),
                                  str(job.ctx.calibration_file(len(images))))
    judge = validation_judge(str(job.ctx.validation_file()), job.ctx.config.gate, "onnx")
    model, record = quantize_with_fallback(errors, pre, build, judge)
    dest.write_bytes(model)
    return {**record, **correction}


def _corrected_source(job: FormatJob) -> tuple[Path, dict]:
    """The bias-corrected fp32 ONNX to quantize, and the correction's record.

    The correction rounds as ONNX Runtime will: 127 steps each side, 64 where ``reduce_range`` gives
    7 bits (the first convolution, or all). Per-tensor weights (``per_channel = false``) round
    differently, so they are never corrected.
    """
    from export.bias_correction import first_conv
    from export.formats_tflite import float_layers_for_correction

    opset, size = int(job.settings["opset"]), int(job.settings["calibration_size"])
    keep_float = float_layers_for_correction(job, str(job.ctx.calibration_file(size)))
    reduce, first = job.settings["reduce_range"], first_conv(job.ctx.keras_model())
    qmax_of = ((first, REDUCED_QMAX),) if reduce == "first_conv" and first else ()
    if reduce == "all":
        qmax_of = tuple((layer, REDUCED_QMAX) for layer in _quantizable(job.ctx.keras_model()))
    return job.ctx.bias_corrected_onnx(opset, size, keep_float, qmax_of)


def _quantizable(model) -> list[str]:
    from export.bias_correction import QUANTIZED_KINDS, flat_layers

    return [layer.name for layer in flat_layers(model) if type(layer).__name__ in QUANTIZED_KINDS]


def quantize_qdq(pre: Path, out: Path, images: np.ndarray, settings: dict, float_nodes: list[str]) -> bytes:
    """``pre`` quantized to static int8 QDQ at ``out`` (returned as bytes), ``float_nodes`` left float.

    ``images`` are the calibration images, ``settings`` the onnx-int8 format's resolved settings.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    per_channel, reduce = bool(settings["per_channel"]), settings["reduce_range"]
    extra = _first_conv_override(pre, per_channel) if reduce == "first_conv" else {}
    quantize_static(str(pre), str(out), _reader(images), quant_format=QuantFormat.QDQ,
                    per_channel=per_channel, reduce_range=reduce == "all", weight_type=QuantType.QInt8,
                    activation_type=QuantType.QInt8, extra_options=extra, nodes_to_exclude=float_nodes,
                    calibrate_method=getattr(CalibrationMethod, _METHODS[settings["calibration_method"]]))
    return out.read_bytes()


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
