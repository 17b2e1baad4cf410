"""Labels and input contract inside each artifact file, so a lone file is self-describing.

TFLite: a model metadata entry named ``edgeflag`` whose buffer holds UTF-8 JSON (the same
mechanism the TFLite converter uses for its own ``CONVERSION_METADATA``). ONNX: ``metadata_props``
with ``labels``, ``ok_label``, ``input_contract`` and ``precision`` as separate readable keys plus
the full JSON under ``edgeflag``.

Reading needs only the device engines (``ai-edge-litert`` / ``onnxruntime``), never TensorFlow.
"""

from __future__ import annotations

import json
from pathlib import Path

from export.errors import ExportError
from runtime.fsutil import atomic_write_bytes

METADATA_KEY = "edgeflag"
METADATA_VERSION = 1


class MetadataError(ExportError):
    """An artifact carries no (or unreadable) edgeflag metadata."""


def build_metadata(*, artifact: str, fmt: str, precision: str, labels: list[str], ok_label: str,
                   contract: dict, run: str, config_hash: str | None) -> dict:
    """The JSON document stored in every artifact."""
    return {"edgeflag_metadata_version": METADATA_VERSION, "artifact": artifact, "format": fmt,
            "precision": precision, "labels": list(labels), "ok_label": ok_label, "input": contract,
            "run": run, "config_hash": config_hash}


def embed_metadata(path: str | Path, meta: dict) -> None:
    """Write ``meta`` into the artifact at ``path`` (replacing an earlier edgeflag entry)."""
    path = Path(path)
    if path.suffix == ".tflite":
        _embed_tflite(path, meta)
    elif path.suffix == ".onnx":
        _embed_onnx(path, meta)
    else:
        raise MetadataError(f"{path}: cannot embed metadata in a {path.suffix!r} file; "
                            "expected .tflite or .onnx")


def _embed_tflite(path: Path, meta: dict) -> None:
    import numpy as np
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(path))
    model.buffers = model.buffers or []
    model.metadata = [m for m in (model.metadata or []) if _name(m.name) != METADATA_KEY]
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_KEY
    entry.buffer = len(model.buffers) - 1
    model.metadata.append(entry)
    atomic_write_bytes(path, bytes(flatbuffer_utils.convert_object_to_bytearray(model)))


def _name(raw) -> str:
    return raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)


def _embed_onnx(path: Path, meta: dict) -> None:
    import onnx

    model = onnx.load(str(path))
    # ONNX props are strings: a sorting model (no good class) stores "" here; METADATA_KEY holds null.
    props = {"labels": json.dumps(meta["labels"]), "ok_label": meta["ok_label"] or "",
             "input_contract": json.dumps(meta["input"]), "precision": meta["precision"],
             METADATA_KEY: json.dumps(meta)}
    keep = [p for p in model.metadata_props if p.key not in props]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    onnx.helper.set_model_props(model, {**{p.key: p.value for p in keep}, **props})
    atomic_write_bytes(path, model.SerializeToString())


def read_metadata(path: str | Path) -> dict:
    """The edgeflag metadata stored inside a ``.tflite`` or ``.onnx`` file.

    Returns the dict written at export: ``labels``, ``ok_label``, ``input`` (an
    ``InputContract.to_dict()``), ``precision``, ``format``, ``artifact``, ``run``.
    """
    path = Path(path)
    if not path.is_file():
        raise MetadataError(f"{path}: no such file")
    readers = {".tflite": _read_tflite, ".onnx": _read_onnx}
    raw = readers[path.suffix](path) if path.suffix in readers else None
    if raw is None:
        raise MetadataError(f"{path}: no edgeflag metadata in this file (expected a .tflite/.onnx "
                            "written by `python -m export`)")
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise MetadataError(f"{path}: edgeflag metadata is not valid JSON ({exc})") from exc


def _read_tflite(path: Path) -> str | None:
    from ai_edge_litert import schema_py_generated as schema

    data = path.read_bytes()
    model = schema.Model.GetRootAs(data, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if _name(entry.Name()) == METADATA_KEY:
            return model.Buffers(entry.Buffer()).DataAsNumpy().tobytes().decode("utf-8")
    return None


def _read_onnx(path: Path) -> str | None:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
