"""Quantization presets: named, documented settings instead of loose flags.

``ExportConfig.int8`` and ``ExportConfig.fp16`` hold one of each; a format takes the fields it needs
by naming them when it is registered (``options=("int8.calibration_size",)``), and a per-format
option (``ExportConfig.options``) may override a single field for that format alone. As in
MediaPipe Model Maker's ``QuantizationConfig``, each preset is a documented dataclass; fp32 and
dynamic-range quantization have nothing to set, so they have none.
"""

from __future__ import annotations

from dataclasses import dataclass

CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
REDUCE_RANGE = ("none", "first_conv", "all")
FLOAT_FALLBACK = ("auto", "off")
BIAS_CORRECTION = ("auto", "on", "off")
ACTIVATION_RANGES = ("auto", "mse", "minmax")


@dataclass(frozen=True)
class Float16Preset:
    """Weights (and, for ONNX, compute) in float16; inputs/outputs stay float32.

    ``keep_io_types`` keeps the float32 interface so the same uint8->float feeding code works;
    fp16 only pays off on GPUs (on x86 CPUs ONNX Runtime upcasts and gets slower).
    """

    keep_io_types: bool = True


@dataclass(frozen=True)
class Int8Preset:
    """Full-integer post-training quantization, calibrated on real training images.

    ``calibration_size`` images are drawn from the run's train split, stratified by class and
    decoded exactly as the device decodes them. ``calibration_method`` applies to ONNX Runtime
    (TFLite's converter always calibrates with min/max). Weights are quantized per channel.

    ``reduce_range`` (ONNX only) says which weights get 7 bits instead of 8. On x86 CPUs without
    VNNI (AVX2 only) ONNX Runtime's int8 kernels multiply with VPMADDUBSW, whose 16-bit
    intermediate sums saturate; it bites where inputs span the full 8-bit range and weights are
    large, i.e. the first convolution on raw pixels (OpenVINO's "saturation fix" targets the same
    layer). Measured on this project's casting run (MobileNetV2 1.0, 160 px, 240 test images):
    8-bit everywhere agreed 99.2% with fp32 in ORT's reference (unfused) mode but only 94% once
    fused into AVX2 kernels; 7 bits everywhere ("all") avoids that but costs precision (90%);
    7 bits on the first convolution only ("first_conv") agreed 99.2% fused and unfused. ARM and
    VNNI CPUs do not saturate; "none" is fine there.

    ``float_fallback``: ``"auto"`` keeps in float the few ops whose own int8 error on calibration
    images is far beyond rounding (``export.int8_fallback``, ``export.onnx_fallback``; named in the
    bundle), ``"off"`` keeps every op integer, for int8-only accelerators.

    ``bias_correction``: ``"on"`` converts the int8 formats (TFLite int8 and dynamic range, ONNX int8)
    from a copy of the model whose biases cancel the mean shift that rounding its weights to int8 gives
    each channel (``export.bias_correction``; means from calibration images); ``"off"`` converts the
    model as trained; ``"auto"`` (the default) builds both and keeps the one the validation split
    prefers (``export.correction_choice``). Not always on because it is not always better: measured, it
    turned the hard steel variant's rejected int8 TFLite into a pass, and one neu_det model's pass into
    a rejection.

    ``activation_ranges`` (TFLite int8 with ``float_fallback = "auto"``): ``"minmax"`` quantizes each
    activation over the min and max it reached on the calibration images (the converter's own way),
    ``"mse"`` over the narrower range that errs least on them (``export.activation_ranges``),
    ``"auto"`` (the default) builds both with the same float ops and keeps the one validation prefers.
    With ``float_fallback = "off"`` the converter's min/max is used.
    """

    calibration_size: int = 200
    calibration_method: str = "minmax"
    per_channel: bool = True
    reduce_range: str = "first_conv"
    float_fallback: str = "auto"
    bias_correction: str = "auto"
    activation_ranges: str = "auto"

    def __post_init__(self) -> None:
        if self.calibration_method not in CALIBRATION_METHODS:
            raise ValueError(f"calibration_method must be one of {CALIBRATION_METHODS}, "
                             f"got {self.calibration_method!r}")
        if self.reduce_range not in REDUCE_RANGE:
            raise ValueError(f"reduce_range must be one of {REDUCE_RANGE}, got {self.reduce_range!r}")
        if self.float_fallback not in FLOAT_FALLBACK:
            raise ValueError(f"float_fallback must be one of {FLOAT_FALLBACK}, got {self.float_fallback!r}")
        if self.bias_correction not in BIAS_CORRECTION:
            raise ValueError(f"bias_correction must be one of {BIAS_CORRECTION}, "
                             f"got {self.bias_correction!r}")
        if self.activation_ranges not in ACTIVATION_RANGES:
            raise ValueError(f"activation_ranges must be one of {ACTIVATION_RANGES}, "
                             f"got {self.activation_ranges!r}")
        if self.activation_ranges == "mse" and self.float_fallback == "off":
            raise ValueError("activation_ranges = 'mse' needs float_fallback = 'auto' (the fully integer "
                             "build is the converter's own, over min/max ranges); set one of them back")
        if int(self.calibration_size) < 1:
            raise ValueError(f"calibration_size must be >= 1, got {self.calibration_size}")
