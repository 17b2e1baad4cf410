"""The kinds of artifact a bundle can hold: file formats and numeric precisions, by name.

These names are part of the bundle contract (``format`` and ``precision`` in ``bundle.json``):
export registers its formats with them (and refuses any other), the camera program offers them as
``--format``/``--precision`` choices. No imports, so that ``python -m runtime.camera --help`` stays
instant.
"""

from __future__ import annotations

# Format -> file suffix; the device default (TFLite) first, which is also the order of --list.
FORMAT_SUFFIXES = {"tflite": ".tflite", "onnx": ".onnx"}

PRECISIONS = ("fp32", "fp16", "dynamic", "int8")

# 8-bit numerics: a few borderline images flipping against float32 is their expected price, so the
# accuracy gate holds them to a looser agreement floor than the float precisions.
QUANTIZED_PRECISIONS = ("int8", "dynamic")
