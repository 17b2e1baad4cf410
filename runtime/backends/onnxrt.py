"""ONNX Runtime backend: CPU, CUDA or TensorRT execution providers."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import numpy as np

from runtime.backends.base import Backend
from runtime.backends.registry import register_backend
from runtime.errors import BackendError

_ORT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(uint8)": np.uint8}
PROVIDER_ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}
# Graph optimizers that must stay off. ONNX Runtime's WeightBiasQuantization (1.21+, microsoft/
# onnxruntime#22969; widened to Conv -> activation -> Q by #25673) quantizes the float weights of a
# Conv sitting between a DequantizeLinear and a QuantizeLinear: exactly the op an int8 export keeps
# float on purpose (export.onnx_fallback). Measured on the hard steel variant with
# MobileNetV2's first depthwise conv float: 60 of 66 val images flipped against fp32 with it on, 1 with
# it off. Fully integer and float models have no such Conv, so turning it off changes nothing there;
# an ORT that does not know the name ignores it.
DISABLED_OPTIMIZERS = ("WeightBiasQuantization",)
# x86 int8 instructions that sum u8 x s8 products in 32 bits. Without them ONNX Runtime's fused int8
# kernels (QLinearConv, QGemm) multiply with vpmaddubsw, which adds pairs of products into 16 bits and
# saturates (AVX2, and AVX-512 without VNNI).
_VNNI_FLAGS = {"avx512_vnni", "avx_vnni", "amx_int8"}
_X86 = ("x86_64", "amd64", "i386", "i686")


def _ort():
    try:
        import onnxruntime
    except ImportError as exc:
        raise BackendError(
            "backend 'onnxruntime' needs ONNX Runtime, which is not installed. Fix: pip install "
            "onnxruntime (on Jetson: the JetPack-matched onnxruntime-gpu wheel, see devices/jetson)"
        ) from exc
    return onnxruntime


def engine_available() -> bool:
    """True when onnxruntime can be imported."""
    try:
        _ort()
    except BackendError:
        return False
    return True


def _providers(names: list[str], cache_dir: Path) -> list:
    """Map short provider names to ORT provider entries, TensorRT with fp16 and an engine cache."""
    out = []
    for name in names:
        full = PROVIDER_ALIASES.get(name, name)
        if full == "TensorrtExecutionProvider":
            cache_dir.mkdir(parents=True, exist_ok=True)
            out.append((full, {"trt_fp16_enable": True, "trt_engine_cache_enable": True,
                               "trt_engine_cache_path": str(cache_dir)}))
        else:
            out.append(full)
    return out


def saturating_int8_cpu(machine: str | None = None, isa: list[str] | None = None) -> bool:
    """Whether ONNX Runtime's fused int8 kernels saturate on this CPU: x86 without VNNI.

    ``machine`` and ``isa`` (:func:`runtime.detect.cpu_info`'s flags) stand in for this machine's.
    """
    machine = (machine or platform.machine()).lower()
    if machine not in _X86:
        return False  # Arm's int8 dot products (sdot/udot, or widening multiplies) do not saturate
    if isa is None:
        from runtime.detect import cpu_info

        isa = cpu_info()[1]
    return not (_VNNI_FLAGS & set(isa))


def is_qdq(path: Path) -> bool:
    """Whether the ONNX graph at ``path`` holds quantize/dequantize nodes (an int8 QDQ model).

    Looks for the op type's name in the serialized graph: protobuf stores strings as they are, and
    reading it this way needs no ``onnx`` package on a board.
    """
    return b"DequantizeLinear" in Path(path).read_bytes()


def session_options(path: Path, threads: int, saturating: bool | None = None):
    """The runtime's ``SessionOptions`` for the model at ``path``.

    An int8 QDQ model on a CPU whose fused int8 kernels saturate (``saturating``, default: this CPU,
    :func:`saturating_int8_cpu`) runs at the basic optimization level, which keeps the QDQ nodes
    unfused: each op computes in float between exact int8 (de)quantization, as the quantizer modelled
    and as Arm and VNNI CPUs compute it. Measured on the tiny test run's int8 model (2-core AMD EPYC,
    AVX2 only, ORT 1.32): fused, 203 of 210 test images agreed with the float reference; unfused, 209.
    It is slower there, where int8 buys little anyway (int8 was 0.84-0.90x of fp32 in TFLite on such a
    CPU): deploy fp32 or TFLite on x86 without VNNI.
    """
    ort = _ort()
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.log_severity_level = 3
    saturating = saturating_int8_cpu() if saturating is None else saturating
    if saturating and is_qdq(path):
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    return so


@register_backend("onnxruntime", formats=("onnx",), available=engine_available)
class OnnxRuntimeBackend(Backend):
    """ONNX Runtime session; ``providers`` like ``["tensorrt", "cuda", "cpu"]`` (default cpu)."""

    name = "onnxruntime"

    def __init__(self, path, threads: int | None = None, providers: list[str] | None = None,
                 **options):
        super().__init__(path, threads or os.cpu_count() or 1, **options)
        ort = _ort()
        so = session_options(self.path, self.threads)
        wanted = _providers(providers or ["cpu"], self.path.parent / "trt_cache")
        have = set(ort.get_available_providers())
        chosen = [p for p in wanted if (p[0] if isinstance(p, tuple) else p) in have]
        if not chosen:
            raise BackendError(f"none of the providers {providers} is available; this onnxruntime "
                               f"has {sorted(have)}")
        try:
            self._sess = ort.InferenceSession(str(self.path), so, providers=chosen,
                                              disabled_optimizers=list(DISABLED_OPTIMIZERS))
        except Exception as exc:  # ORT raises its own exception types per failure
            raise BackendError(f"ONNX Runtime cannot load {self.path}: {exc}") from exc
        inp = self._sess.get_inputs()[0]
        self._in_name = inp.name
        self._in_dtype = _ORT_TYPES.get(inp.type, np.float32)
        self._shape = (int(inp.shape[1]), int(inp.shape[2]))
        self._out_name = self._sess.get_outputs()[0].name

    @property
    def input_shape(self) -> tuple[int, int]:
        return self._shape

    @property
    def providers(self) -> list[str]:
        """Providers the session actually uses, in priority order."""
        return self._sess.get_providers()

    def run_one(self, image: np.ndarray) -> np.ndarray:
        feed = {self._in_name: image[None].astype(self._in_dtype, copy=False)}
        return self._sess.run([self._out_name], feed)[0][0].astype(np.float32, copy=False)

    def describe(self) -> dict:
        return {**super().describe(), "providers": self.providers}

    def close(self) -> None:
        self._sess = None
