"""LiteRT (TFLite) backend: ``ai-edge-litert``, falling back to the legacy ``tflite-runtime``."""

from __future__ import annotations

import os

import cv2
import numpy as np

from runtime.backends.base import Backend
from runtime.backends.registry import register_backend
from runtime.errors import BackendError


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:  # Boards that only have the legacy wheel (Python <= 3.11, numpy 1).
            from tflite_runtime.interpreter import Interpreter
        except ImportError as exc:
            raise BackendError(
                "backend 'litert' needs the LiteRT engine, which is not installed. "
                "Fix: pip install 'ai-edge-litert>=2.3' (or the project extra: pip install '.[litert]')"
            ) from exc
    return Interpreter


def engine_available() -> bool:
    """True when a TFLite interpreter package can be imported."""
    try:
        _interpreter_class()
    except BackendError:
        return False
    return True


def quantize(values: np.ndarray, quant: tuple[float, int], dtype: np.dtype) -> np.ndarray:
    """Affine quantization ``round(v / scale + zero_point)``, clipped to ``dtype``'s range."""
    scale, zero = quant
    info = np.iinfo(dtype)
    return np.clip(np.round(values.astype(np.float32) / scale + zero), info.min, info.max).astype(dtype)


def quantization_table(quant: tuple[float, int], dtype: np.dtype) -> np.ndarray:
    """The 256-entry table of :func:`quantize` for uint8 pixels.

    A calibrated int8 model's input scale is rarely exactly 1 (0.996 when the brightest
    calibration pixel was 254), so pixels need requantizing on every frame; looking them up in this
    table (``cv2.LUT``) is the same arithmetic, 1.6-1.7x faster for a 224x224x3 input on the 2-core
    dev machine (``python -m benchmarks.preprocess_paths``: 0.11 ms instead of 0.17-0.19 ms).
    """
    return quantize(np.arange(256, dtype=np.uint8), quant, dtype)


@register_backend("litert", formats=("tflite",), available=engine_available)
class LiteRTBackend(Backend):
    """TFLite interpreter with XNNPACK; threads default to the core count (LiteRT's is 1)."""

    name = "litert"

    def __init__(self, path, threads: int | None = None, **options):
        super().__init__(path, threads or os.cpu_count() or 1, **options)
        interpreter_cls = _interpreter_class()
        try:
            self._interp = interpreter_cls(model_path=str(self.path), num_threads=self.threads)
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise BackendError(f"LiteRT cannot load {self.path}: {exc}") from exc
        inp = self._interp.get_input_details()[0]
        out = self._interp.get_output_details()[0]
        self._in_index, self._out_index = inp["index"], out["index"]
        self._in_dtype = np.dtype(inp["dtype"])
        self._in_quant = inp["quantization"]
        self._out_quant = out["quantization"]
        self._out_dtype = np.dtype(out["dtype"])
        self._shape = tuple(int(s) for s in inp["shape"][1:3])
        self._identity_in = self._in_dtype == np.uint8 and self._in_quant in ((1.0, 0), (0.0, 0))
        self._lut = None if self._in_dtype.kind == "f" else quantization_table(self._in_quant, self._in_dtype)

    @property
    def input_shape(self) -> tuple[int, int]:
        return self._shape

    def _quantize_input(self, image: np.ndarray) -> np.ndarray:
        if self._in_dtype.kind == "f":
            return image.astype(self._in_dtype)[None]
        if self._identity_in:  # int8 export with RGB 0..255 input: scale 1, zero point 0
            return image[None]
        if image.dtype == np.uint8:  # camera pixels: one table lookup instead of four float passes
            return cv2.LUT(image, self._lut)[None]
        return quantize(image, self._in_quant, self._in_dtype)[None]

    def run_one(self, image: np.ndarray) -> np.ndarray:
        self._interp.set_tensor(self._in_index, self._quantize_input(image))
        self._interp.invoke()
        out = self._interp.get_tensor(self._out_index)[0]
        if self._out_dtype.kind in "iu":
            scale, zero = self._out_quant
            return (out.astype(np.float32) - zero) * scale
        return out.astype(np.float32, copy=False)

    def invoke_only(self) -> None:
        """Bare interpreter invoke on whatever input is set (benchmark baseline)."""
        self._interp.invoke()

    def close(self) -> None:
        self._interp = None
