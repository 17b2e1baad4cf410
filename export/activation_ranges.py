"""Activation ranges for TFLite int8 that minimise each activation's quantization error.

TFLite's converter quantizes every activation tensor over the min and max it saw on the calibration
images. One extreme value then sets the step for all the others: measured on the hard steel
variant's model, the fine-tuned MobileNetV2's pooled features came out of the int8 model 27% off
(relative RMS, median over test photos), and a test photo whose class margin was thin flipped.

Here each range is narrowed to where rounding plus clipping error is least (the "MSE" range setting
of Nagel et al., *A White Paper on Neural Network Quantization*, 2021, section 3.3): a histogram of
the tensor's values on calibration images, the error of every candidate range computed from it, the
least kept. The converter's calibrated model carries each tensor's range as ``min``/``max``; they are
rewritten there, and the quantizer then computes scales and zero points from them as it always does.

Measured on validation splits with the first depthwise convolution kept float (the float fallback's
usual choice): the hard variant's output error 0.0120 -> 0.0084, casting's 0.0121 -> 0.0080; fully
integer it was no better (casting 0.0157 -> 0.0161), so :mod:`export.formats_tflite` builds both
and keeps the narrowed ranges only where validation prefers them.
"""

from __future__ import annotations

import numpy as np

BINS = 2048  # histogram bins over the calibrated [min, max]: 8 to an int8 step
RANGE_IMAGES = 64  # calibration images the histograms are taken on
_SHRINK = np.linspace(1.0, 0.2, 41)  # candidate fractions of the calibrated max (and, coarser, of min)
_LEVELS = 255


def _ranged(graph) -> list[int]:
    """Indices of the tensors the calibrator gave one (per-tensor) range: the activations."""
    return [i for i, t in enumerate(graph.tensors)
            if t.quantization is not None and t.quantization.min is not None
            and len(t.quantization.min) == 1 and float(t.quantization.max[0]) > float(t.quantization.min[0])]


def _bounds(tensor) -> tuple[float, float]:
    """The calibrated range widened to hold 0 (int8's zero point must be exact)."""
    return min(float(tensor.quantization.min[0]), 0.0), max(float(tensor.quantization.max[0]), 0.0)


def histograms(calibrated: bytes, images: np.ndarray,
               bounds: dict[int, tuple[float, float]]) -> dict[int, np.ndarray]:
    """Per tensor index in ``bounds``, a :data:`BINS` histogram of its values over ``images``.

    ``calibrated`` is a float model; its intermediate tensors are kept to be read.
    """
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=calibrated, experimental_preserve_all_tensors=True)
    it.allocate_tensors()
    index = it.get_input_details()[0]["index"]
    hists = {i: np.zeros(BINS, np.int64) for i in bounds}
    for image in images:
        it.set_tensor(index, image[None].astype(np.float32))
        it.invoke()
        for i, (lo, hi) in bounds.items():
            hists[i] += np.histogram(it.get_tensor(i), bins=BINS, range=(lo, hi))[0]
    return hists


def mse_range(hist: np.ndarray, lo: float, hi: float) -> tuple[float, float]:
    """The ``(min, max)`` within ``[lo, hi]`` whose 8-bit quantization of ``hist``'s values errs least.

    ``hist`` counts values in :data:`BINS` equal bins over ``[lo, hi]`` (each taken at its centre).
    Candidates shrink ``hi`` and, where the tensor goes negative, ``lo``; the full range is one of them,
    so the result is never worse than min/max on these values.
    """
    centres = lo + (np.arange(len(hist)) + 0.5) * (hi - lo) / len(hist)
    lows = _SHRINK[::4] * lo if lo < 0 else np.zeros(1)
    clo, chi = np.meshgrid(lows, _SHRINK * hi, indexing="ij")
    clo, chi = clo.ravel()[:, None], chi.ravel()[:, None]
    scale = (chi - clo) / _LEVELS
    zero = np.round(-clo / scale)
    quantized = (np.clip(np.round(centres / scale) + zero, 0, _LEVELS) - zero) * scale
    error = (hist * (quantized - centres) ** 2).sum(axis=1)
    best = int(np.argmin(error))  # the first (widest) of equal errors
    return float(clo[best, 0]), float(chi[best, 0])


def with_mse_ranges(calibrated: bytes, images: np.ndarray) -> tuple[bytes, dict]:
    """``calibrated`` (the converter's calibrated float model) with every activation range narrowed by
    :func:`mse_range` on the first :data:`RANGE_IMAGES` of ``images``; returns it and what changed.
    """
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(calibrated)
    graph = model.subgraphs[0]
    bounds = {i: _bounds(graph.tensors[i]) for i in _ranged(graph)}
    shown = images[:RANGE_IMAGES]
    narrowed = []
    for i, hist in histograms(calibrated, shown, bounds).items():
        lo, hi = bounds[i]
        new_lo, new_hi = mse_range(hist, lo, hi)
        q = graph.tensors[i].quantization
        q.min, q.max = np.array([new_lo], np.float32), np.array([new_hi], np.float32)
        narrowed.append((new_hi - new_lo) / (hi - lo))
    record = {"activation_ranges": "mse", "tensors": len(narrowed),
              "tensors_narrowed": sum(1 for f in narrowed if f < 0.999),
              "median_range_kept": round(float(np.median(narrowed)), 3) if narrowed else 1.0,
              "ranges_measured_on": f"{len(shown)} calibration images"}
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)), record


def ranges_notes(artifacts: list[dict]) -> list[str]:
    """One line per artifact for which ``activation_ranges = "auto"`` chose: what each gave, the choice."""
    from export.int8_fallback import choices_made

    return [f"{name} was built over min/max and MSE activation ranges and keeps the {choice['chosen']} "
            f"ranges, judged on the validation split ({said}). To force one: --option "
            f"{name}.activation_ranges=minmax (or =mse)"
            for name, choice, said in choices_made(artifacts, "activation_ranges_choice")]
