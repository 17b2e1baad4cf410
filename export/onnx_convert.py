"""Keras -> fp32 ONNX (opset 17, batch 1, input "image", output "probabilities")."""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

from runtime.contract import InputContract

INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"


def keras_to_onnx(model, path: Path, contract: InputContract, opset: int = 17) -> Path:
    """Convert with Keras' own exporter (it patches tf2onnx for numpy 2), then check the graph.

    ``tf2onnx.convert.from_keras`` fails on Sequential models (onnx/tensorflow-onnx#2448), which
    is why this goes through ``model.export(format="onnx")``. Batch is fixed to 1: TensorRT and
    the device loop want static shapes.
    """
    import keras
    import onnx

    spec = keras.InputSpec(shape=(1, contract.height, contract.width, 3), dtype="float32", name=INPUT_NAME)
    # Keras prints "Saved artifact at ..." and its tf2onnx shim warns about np.object: noise here.
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        model.export(str(path), format="onnx", opset_version=opset, input_signature=[spec])
    graph = onnx.load(str(path))
    _rename_output(graph, OUTPUT_NAME)
    onnx.checker.check_model(graph)
    onnx.save(graph, str(path))
    return path


def _rename_output(model, new: str) -> None:
    """Give the (single) output a readable name instead of tf2onnx's ``Identity:0``."""
    old = model.graph.output[0].name
    if old == new:
        return
    for node in model.graph.node:
        node.output[:] = [new if o == old else o for o in node.output]
        node.input[:] = [new if i == old else i for i in node.input]
    model.graph.output[0].name = new
