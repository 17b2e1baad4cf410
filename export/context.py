"""Shared state of one export: the run, scratch space and lazily built, cached inputs.

Formats share expensive things (the Keras model, calibration pixels, the fp32 ONNX graph that the
int8 and fp16 ONNX variants start from) through this object instead of recomputing them.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np

from export.config import ExportConfig
from export.dataset import calibration_items, load_pixels
from export.errors import ExportError
from export.evaluate import EvalData, Predictions, keras_predictions, load_eval_data
from export.metadata import build_metadata, embed_metadata, read_metadata
from export.run_dir import RunInfo

log = logging.getLogger("export")


def _tag(*key) -> str:
    """A short stable file-name tag for a cache key."""
    return hashlib.sha1(repr(key).encode()).hexdigest()[:10]


class VerificationError(ExportError):
    """A converted artifact does not load, or does not have the expected interface."""


class ExportContext:
    """Run + config + a scratch folder; caches calibration images, the Keras model and fp32 ONNX.

    ``data`` are the gate's test and val pixels when the caller decoded them already.
    """

    def __init__(self, run: RunInfo, config: ExportConfig, workdir: Path, data: EvalData | None = None):
        self.run = run
        self.config = config
        self.workdir = workdir
        self._data = data
        self._reference: Predictions | None = None
        self._calibration: dict[int, np.ndarray] = {}
        self._keras_model = None
        self._onnx: dict[int, Path] = {}
        self._corrected: dict[tuple, tuple[object, dict]] = {}
        self._worker = None

    def __enter__(self) -> ExportContext:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop the converter worker process, if one was started."""
        if self._worker is not None:
            self._worker.close()
            self._worker = None

    def worker(self):
        """The converter worker process (started on first use, restarted after a crash)."""
        if self._worker is None:
            from export.worker import ConverterWorker

            self._worker = ConverterWorker(self.workdir / "converter.log")
        return self._worker

    def calibration_images(self, size: int) -> np.ndarray:
        """``(N,H,W,3) uint8`` calibration images from the train split (stratified, seeded)."""
        if size not in self._calibration:
            items = calibration_items(self.run.nonempty_split("train"), size, self.config.seed)
            self._calibration[size] = load_pixels(self.run, items)[0]
            log.info("calibration: %d train images", len(items))
        return self._calibration[size]

    def calibration_file(self, size: int) -> Path:
        """The calibration images saved as ``.npy`` for the converter worker."""
        path = self.workdir / f"calibration_{size}.npy"
        if not path.exists():
            np.save(path, self.calibration_images(size))
        return path

    def eval_data(self) -> EvalData:
        """The test and val pixels (decoded once)."""
        if self._data is None:
            self._data = load_eval_data(self.run)
        return self._data

    def reference(self) -> Predictions:
        """The Keras reference's probabilities on the test and val images (computed once)."""
        if self._reference is None:
            self._reference = keras_predictions(self.keras_model(), self.eval_data())
        return self._reference

    def validation_file(self) -> Path:
        """The val images, labels and the reference's probabilities, as ``.npz`` for the converter worker."""
        path = self.workdir / "validation.npz"
        if not path.exists():
            data = self.eval_data()
            np.savez(path, images=data.x_val, y=data.y_val, probs=self.reference().val,
                     labels=np.array(self.run.labels))
        return path

    def keras_model(self):
        """The run's Keras model (the reference), loaded once."""
        if self._keras_model is None:
            import keras

            self._keras_model = keras.models.load_model(self.run.file("keras_model"), compile=False)
        return self._keras_model

    def bias_corrected_model(self, calibration_size: int, keep_float: tuple[str, ...] = (),
                             qmax_of: tuple[tuple[str, int], ...] = ()) -> tuple[object, dict]:
        """A copy of the reference with int8 bias correction (:mod:`export.bias_correction`), and its record.

        Layers in ``keep_float`` (the int8 float fallback's) are not corrected: their weights are not
        rounded; ``qmax_of`` names layers rounded to fewer steps (ONNX Runtime's 7-bit first conv).
        Made once per setting from a fresh copy of the Keras model, so the reference the gate compares
        with stays the model as trained.
        """
        key = (calibration_size, tuple(sorted(keep_float)), tuple(sorted(qmax_of)))
        if key not in self._corrected:
            import keras

            from export.bias_correction import correct_biases

            model = keras.models.load_model(self.run.file("keras_model"), compile=False)
            record = correct_biases(model, self.calibration_images(calibration_size), frozenset(keep_float),
                                    qmax_of=dict(qmax_of))
            log.info("bias correction: %d layers, means on %s", record["layers_corrected"],
                     record["measured_on"])
            self._corrected[key] = (model, record)
        return self._corrected[key]

    def bias_corrected_saved_model(self, calibration_size: int,
                                   keep_float: tuple[str, ...] = ()) -> tuple[Path, dict]:
        """The bias-corrected copy (:meth:`bias_corrected_model`) as a SavedModel, for TFLite."""
        model, record = self.bias_corrected_model(calibration_size, keep_float)
        path = self.workdir / f"saved_model_bias_corrected_{_tag(calibration_size, keep_float)}"
        if not path.exists():
            model.export(str(path), verbose=False)
        return path, record

    def bias_corrected_onnx(self, opset: int, calibration_size: int, keep_float: tuple[str, ...],
                            qmax_of: tuple[tuple[str, int], ...]) -> tuple[Path, dict]:
        """The bias-corrected copy (:meth:`bias_corrected_model`) as fp32 ONNX, for ONNX Runtime int8."""
        from export.onnx_convert import keras_to_onnx

        model, record = self.bias_corrected_model(calibration_size, keep_float, qmax_of)
        tag = _tag(calibration_size, keep_float, qmax_of)
        path = self.workdir / f"fp32_opset{opset}_bias_corrected_{tag}.onnx"
        if not path.exists():
            keras_to_onnx(model, path, self.run.contract, opset)
        return path, record

    def onnx_fp32(self, opset: int) -> Path:
        """Path of the fp32 ONNX graph (converted once per opset, then reused)."""
        if opset not in self._onnx:
            from export.onnx_convert import keras_to_onnx

            path = self.workdir / f"fp32_opset{opset}.onnx"
            keras_to_onnx(self.keras_model(), path, self.run.contract, opset)
            self._onnx[opset] = path
        return self._onnx[opset]

    def metadata_for(self, spec) -> dict:
        """The metadata document embedded in ``spec``'s artifact."""
        m = self.run.manifest
        return build_metadata(artifact=spec.name, fmt=spec.fmt, precision=spec.precision,
                              labels=self.run.labels, ok_label=self.run.ok_label,
                              contract=self.run.contract.to_dict(), run=self.run.name,
                              config_hash=m.get("config_hash"))

    def finish_artifact(self, spec, path: Path) -> None:
        """Embed metadata, then prove the file loads on its runtime backend with the right interface."""
        meta = self.metadata_for(spec)
        embed_metadata(path, meta)
        if read_metadata(path) != meta:
            raise VerificationError(f"{path.name}: metadata did not read back identically")
        from runtime.backends import open_backend

        c = self.run.contract
        with open_backend(path, backend=spec.backends[0], threads=self.config.threads) as backend:
            if tuple(backend.input_shape) != (c.height, c.width):
                raise VerificationError(f"{path.name}: input {backend.input_shape}, contract says "
                                        f"{(c.height, c.width)}")
            probs = backend.run_one(np.zeros((c.height, c.width, 3), np.uint8))
        finite = bool(np.all(np.isfinite(probs)))
        if probs.shape != (len(self.run.labels),) or not finite:
            raise VerificationError(f"{path.name}: output {probs.shape} (finite={finite}), "
                                    f"expected {len(self.run.labels)} finite class probabilities")
