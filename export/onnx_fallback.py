"""ONNX int8 with the ops int8 cannot carry kept float, as TFLite int8 does (:mod:`export.int8_fallback`).

ONNX Runtime's static QDQ quantization and TFLite's full-integer conversion use the same scheme
(per-channel symmetric int8 weights, asymmetric int8 activations, min/max calibration on the same
train images), so the op that int8 cannot carry is the same op in both: on the hard steel variant
MobileNetV2's first depthwise convolution, 1.38 quantization steps RMS in TFLite's debugger. Fully
integer, ONNX int8 flipped 19 of the variant's 643 photos against fp32; with that op float, 14; with
the next one too, 10. So the ops are ranked by TFLite's QuantizationDebugger (measured on the run's
SavedModel, calibration images only), mapped to the ONNX graph by Keras layer name, left out of
quantization (``nodes_to_exclude``) and checked on the validation split by the same rule as TFLite
(:func:`export.int8_fallback.checked_on_validation`).

The float ops only stay float if ONNX Runtime's ``WeightBiasQuantization`` optimizer is off (it
quantizes their weights back, per tensor: 60 of 66 validation images flipped). The runtime turns it
off (:data:`runtime.backends.onnxrt.DISABLED_OPTIMIZERS`); the bundle says so for other users.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from export import int8_fallback as fb

QUANTIZED_OPS = ("Conv", "Gemm", "MatMul", "Add")  # the ops ORT quantizes whose exclusion keeps them float
_OP_PART = re.compile(r"^(depthwise|convolution|MatMul.*|BiasAdd|Add|add)$")


def node_layer(name: str, weight: str = "") -> str | None:
    """The Keras layer behind an ONNX node, from its name or its weight's (tf2onnx keeps TF scopes).

    ``.../expanded_conv_depthwise_1/depthwise`` -> ``expanded_conv_depthwise``;
    ``Conv__1162`` with weight ``.../block_1_project_1/convolution/merged_input:0`` -> ``block_1_project``.
    """
    for text in (name, weight):
        parts = text.split("/")
        for i in range(len(parts) - 1, 0, -1):
            if _OP_PART.match(parts[i]):
                return re.sub(r"_\d+$", "", parts[i - 1])
    return None


def node_layers(model_path: Path) -> dict[str, list[str]]:
    """Keras layer -> the names of its quantizable nodes in the ONNX graph at ``model_path``."""
    import onnx

    layers: dict[str, list[str]] = {}
    for node in onnx.load(str(model_path), load_external_data=False).graph.node:
        if node.op_type in QUANTIZED_OPS:
            layer = node_layer(node.name, node.input[1] if len(node.input) > 1 else "")
            if layer:
                layers.setdefault(layer, []).append(node.name)
    return layers


def candidates(errors: list[dict], layers: dict[str, list[str]]) -> list[dict]:
    """``errors`` (TFLite's, worst first) found in the ONNX graph, each with its ``nodes`` for its tensor."""
    out = []
    for e in errors:
        if e["layer"] in layers:
            out.append({"layer": e["layer"], "op": e["op"], "steps": e["steps"], "nodes": layers[e["layer"]]})
    return out


def quantize_with_fallback(errors: list[dict], model_path: Path, build: Callable[[list[str]], bytes],
                           judge) -> tuple[bytes, dict]:
    """The int8 model with the ops int8 cannot carry left float, and the record the bundle keeps.

    ``errors`` are TFLite's per-op errors (:func:`export.formats_tflite.int8_op_errors`),
    ``model_path`` the graph being quantized, ``build(node_names)`` quantizes it leaving those nodes
    float, ``judge`` is :func:`export.int8_fallback.validation_judge` for ONNX.
    """
    from runtime.backends.onnxrt import DISABLED_OPTIMIZERS

    ranked = candidates(errors, node_layers(model_path))
    model, ops, tries = fb.checked_on_validation(lambda o: build([n for e in o for n in e["nodes"]]),
                                                 ranked, judge)
    record = {"float_fallback": "auto", "op_error_limit_steps": fb.OP_ERROR_LIMIT,
              "measured_on": f"{fb.DEBUG_IMAGES} calibration images, by TFLite's QuantizationDebugger",
              "validation_tries": tries, "float_ops": ops,
              "worst_int8_ops": [e for e in ranked if e not in ops][:3]}
    if ops:
        record["ort_disabled_optimizers"] = list(DISABLED_OPTIMIZERS)
    return model, record
