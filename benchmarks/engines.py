"""What a benchmark case times: one engine instance, one query per :meth:`BenchEngine.step`.

Kinds (``--backends``):

* ``litert``, ``onnxruntime``: the runtime's own backends (set input, invoke, dequantize);
* ``litert-invoke``: the bare ``interpreter.invoke()`` with the input already set (the floor);
* ``runtime-frame``: the camera loop's whole per-frame work (``FrameLoop.process``) on 640x480
  frames: prepare, infer, thresholds, k-of-n, stats;
* ``keras``: the tutorial way, Keras ``model.predict`` on one frame (needs TensorFlow and the
  bundle's run directory);
* ``ort-cuda``, ``ort-tensorrt``: ONNX Runtime with the CUDA / TensorRT execution provider
  (``onnxruntime-gpu``); the provider actually used is asserted;
* ``torch-cuda``, ``torch-cuda-fp16``: the ONNX model in PyTorch via ``onnx2torch`` on CUDA, with
  GPU compute timed by CUDA events apart from the host-to-decision time;
* ``noop``: does nothing; measures the harness's own cost per query.

Each kind says why it cannot run here (:func:`unavailable`) instead of failing.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import numpy as np

from runtime.bundle import Artifact, Bundle

CPU_KINDS = ("litert", "onnxruntime")
BASELINE_KINDS = ("litert-invoke", "runtime-frame", "keras", "noop")
GPU_KINDS = ("ort-cuda", "ort-tensorrt", "torch-cuda", "torch-cuda-fp16")
ALL_KINDS = CPU_KINDS + BASELINE_KINDS + GPU_KINDS
_FORMATS = {
    "litert": "tflite",
    "litert-invoke": "tflite",
    "onnxruntime": "onnx",
    "ort-cuda": "onnx",
    "ort-tensorrt": "onnx",
    "torch-cuda": "onnx",
    "torch-cuda-fp16": "onnx",
}
_PROVIDERS = {"ort-cuda": "CUDAExecutionProvider", "ort-tensorrt": "TensorrtExecutionProvider"}
CAMERA = (480, 640)  # runtime-frame input: what a camera delivers without --camera-resize


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def unavailable(kind: str, artifact: Artifact | None) -> str | None:
    """Why ``kind`` cannot run ``artifact`` on this machine (None: it can)."""
    fmt = _FORMATS.get(kind)
    if artifact is not None and fmt is not None and artifact.format != fmt:
        return f"{kind} runs {fmt} artifacts"
    if kind in ("litert", "litert-invoke") and not _has("ai_edge_litert"):
        return "ai-edge-litert is not installed (pip install ai-edge-litert)"
    if kind in ("onnxruntime", "ort-cuda", "ort-tensorrt") and not _has("onnxruntime"):
        return "onnxruntime is not installed"
    if kind in _PROVIDERS:
        import onnxruntime

        if _PROVIDERS[kind] not in onnxruntime.get_available_providers():
            return (
                f"no GPU provider: this onnxruntime has {onnxruntime.get_available_providers()}; "
                "a desktop GPU needs pip install onnxruntime-gpu and an NVIDIA driver"
            )
    if kind.startswith("torch-cuda"):
        return _torch_cuda_missing(artifact)
    if kind == "keras" and not _has("tensorflow"):
        return "TensorFlow is not installed (the runtime does not need it; the train extra has it)"
    return None


def _torch_cuda_missing(artifact: Artifact | None) -> str | None:
    if not (_has("torch") and _has("onnx2torch")):
        return "needs PyTorch and onnx2torch (pip install onnx2torch)"
    import torch

    if not torch.cuda.is_available():
        return "no CUDA GPU visible to PyTorch"
    if artifact is not None and artifact.precision not in ("fp32", "fp16"):
        return "onnx2torch converts float models; quantized ONNX ops have no PyTorch CUDA kernels"
    return None


class BenchEngine:
    """One open engine. ``step()`` is one timed query; ``predict(rgb)`` serves the top-1 check."""

    kind = "base"
    compute_ms: float | None = None  # device-side time of the last step, where the engine knows it

    def step(self) -> None:
        raise NotImplementedError

    def predict(self, rgb: np.ndarray) -> np.ndarray | None:
        """Probabilities for one contract-sized RGB uint8 image (None: the kind cannot say)."""
        return None

    def describe(self) -> dict:
        return {"kind": self.kind}

    def close(self) -> None:
        pass


class RuntimeEngine(BenchEngine):
    """A runtime backend (``litert``/``onnxruntime``/the ORT GPU providers) on contract inputs."""

    def __init__(
        self, bundle: Bundle, artifact: Artifact, kind: str, threads: int | None, inputs: list[np.ndarray]
    ):
        self.kind = kind
        backend = "litert" if kind in ("litert", "litert-invoke") else "onnxruntime"
        options = {}
        if kind in _PROVIDERS:
            options["providers"] = [kind.removeprefix("ort-"), "cpu"]
        self.backend = bundle.open(artifact, backend=backend, threads=threads, **options)
        if kind in _PROVIDERS and self.backend.providers[0] != _PROVIDERS[kind]:
            used = self.backend.providers
            self.close()
            raise RuntimeError(
                f"{kind}: ONNX Runtime fell back to {used}; the GPU provider did not take "
                "the model, so its latency would be a CPU figure"
            )
        self.inputs, self.i = inputs, 0

    def step(self) -> None:
        self.i = (self.i + 1) % len(self.inputs)
        self.backend.run_one(self.inputs[self.i])

    def predict(self, rgb):
        return self.backend.run_one(rgb)

    def describe(self) -> dict:
        return {"kind": self.kind, **self.backend.describe()}

    def close(self) -> None:
        self.backend.close()


class InvokeEngine(RuntimeEngine):
    """The bare interpreter invoke with a real input already set: the floor the runtime adds to."""

    def __init__(self, *args):
        super().__init__(*args)
        self.backend.run_one(self.inputs[0])

    def step(self) -> None:
        self.backend.invoke_only()


class FrameEngine(BenchEngine):
    """The camera loop's per-frame work on camera-sized BGR frames, as ``runtime.camera`` runs it."""

    kind = "runtime-frame"

    def __init__(self, bundle: Bundle, artifact: Artifact, threads: int | None, frames: list[np.ndarray]):
        from runtime.debounce import KofN
        from runtime.frame_loop import FrameLoop
        from runtime.sources.base import Frame
        from runtime.stats import RunStats

        self.backend = bundle.open(artifact, threads=threads)
        self.loop = FrameLoop(
            self.backend,
            bundle.contract,
            bundle.decider(artifact),
            KofN(3, 5),
            lambda event, picture: None,
            RunStats(),
        )
        self.frames = [Frame(f, i, time.monotonic()) for i, f in enumerate(frames)]
        self.i = 0

    def step(self) -> None:
        self.i = (self.i + 1) % len(self.frames)
        self.loop.process(self.frames[self.i])

    def predict(self, rgb):
        return self.backend.run_one(rgb)

    def describe(self) -> dict:
        return {"kind": self.kind, "frame": f"{CAMERA[1]}x{CAMERA[0]}", **self.backend.describe()}

    def close(self) -> None:
        self.backend.close()


class KerasEngine(BenchEngine):
    """``model.predict`` on one frame: what a tutorial does, and what the runtime replaces."""

    kind = "keras"

    def __init__(self, model_path: Path, inputs: list[np.ndarray]):
        from runtime.tf_logs import quiet_tensorflow

        quiet_tensorflow()
        import keras

        self.model = keras.models.load_model(model_path, compile=False)
        self.inputs, self.i = inputs, 0
        self.path = model_path

    def step(self) -> None:
        self.i = (self.i + 1) % len(self.inputs)
        self.model.predict(self.inputs[self.i][None].astype(np.float32), verbose=0)

    def predict(self, rgb):
        return np.asarray(self.model.predict(rgb[None].astype(np.float32), verbose=0)[0], np.float32)

    def describe(self) -> dict:
        import keras

        return {"kind": self.kind, "path": str(self.path), "keras": keras.__version__}


class TorchCudaEngine(BenchEngine):
    """The bundle's ONNX model converted by onnx2torch, on CUDA; CUDA events time the GPU part.

    ``step`` is host to decision: upload the uint8 image, run, copy the probabilities back. At batch
    1 on a large GPU the launch cost dominates that, so ``compute_ms`` (kernel time between two
    CUDA events) is reported apart.
    """

    def __init__(self, path: Path, inputs: list[np.ndarray], half: bool, cuda_graphs: bool = False):
        import onnx2torch
        import torch

        self.kind = "torch-cuda-fp16" if half else "torch-cuda"
        self.torch, self.half = torch, half
        self.model = onnx2torch.convert(str(path)).eval().cuda()
        if half:
            self.model = self.model.half()
        self.inputs, self.i = inputs, 0
        self.start, self.end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        self.graph = self._capture() if cuda_graphs else None

    def _tensor(self, rgb: np.ndarray):
        x = self.torch.from_numpy(rgb[None]).cuda(non_blocking=True)
        return x.half() if self.half else x.float()

    def _capture(self):
        torch = self.torch
        self.static_in = self._tensor(self.inputs[0])
        with torch.no_grad():
            for _ in range(3):
                self.model(self.static_in)
            torch.cuda.synchronize()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                self.static_out = self.model(self.static_in)
        return graph

    def _run(self, rgb: np.ndarray) -> np.ndarray:
        torch = self.torch
        with torch.no_grad():
            x = self._tensor(rgb)
            self.start.record()
            if self.graph is not None:
                self.static_in.copy_(x)
                self.graph.replay()
                y = self.static_out
            else:
                y = self.model(x)
            self.end.record()
            out = y.float().cpu().numpy()[0]
        self.compute_ms = float(self.start.elapsed_time(self.end))
        return out

    def step(self) -> None:
        self.i = (self.i + 1) % len(self.inputs)
        self._run(self.inputs[self.i])

    def predict(self, rgb):
        return self._run(rgb)

    def describe(self) -> dict:
        torch = self.torch
        return {
            "kind": self.kind,
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "gpu": torch.cuda.get_device_name(0),
            "cuda_graphs": self.graph is not None,
        }


class NoopEngine(BenchEngine):
    """Does nothing: the per-query cost of the harness itself (timer, bookkeeping)."""

    kind = "noop"

    def step(self) -> None:
        pass


def open_engine(
    kind: str,
    bundle: Bundle,
    artifact: Artifact,
    threads: int | None,
    inputs: list[np.ndarray],
    frames: list[np.ndarray],
    cuda_graphs: bool = False,
) -> BenchEngine:
    """Open one engine instance for a case (load time is the caller's to measure)."""
    if kind in ("litert", "onnxruntime") or kind in _PROVIDERS:
        return RuntimeEngine(bundle, artifact, kind, threads, inputs)
    if kind == "litert-invoke":
        return InvokeEngine(bundle, artifact, kind, threads, inputs)
    if kind == "runtime-frame":
        return FrameEngine(bundle, artifact, threads, frames)
    if kind.startswith("torch-cuda"):
        return TorchCudaEngine(
            bundle.verify(artifact), inputs, half=kind.endswith("fp16"), cuda_graphs=cuda_graphs
        )
    if kind == "noop":
        return NoopEngine()
    raise ValueError(f"unknown backend kind {kind!r}; choose from {', '.join(ALL_KINDS)}")
