"""Full-integer TFLite, except the few ops whose int8 error is far beyond rounding.

Post-training int8 quantization rounds every op's weights and output to 8 bits. For almost every op
of a MobileNet that costs well under one quantization step of its output (rounding alone is
1/sqrt(12) = 0.29 steps RMS). A few ops lose far more: measured on the NEU steel photos, MobileNetV2's
first depthwise convolution (BatchNorm folded into a 3x3 kernel whose large weights mostly cancel on
smooth grey texture) was off by 1.35 steps RMS while every other op stayed at or under 0.75. That one
op flipped 3 of 270 test images; kept in float, the model agreed with the reference on all 270.

TFLite's QuantizationDebugger measures each op's own error (the quantized op against the float op on
the same quantized input) on calibration images, i.e. training photos, never the gate's test split.
Ops above :data:`OP_ERROR_LIMIT` are left in float (dequantize -> float op -> quantize); the model
keeps uint8 input and output, so the runtime feeds it as any int8 model. The cost is a float island:
fine on CPUs (XNNPACK runs it), but an int8-only accelerator (Edge TPU, most NPUs) cannot run it, so
``float_fallback = "off"`` keeps the model fully integer, and the bundle names the float ops.

Per-op error is a proxy. An op under the limit can still tip images whose classes are close, so
the model is then judged on the validation split (never the gate's test split), against the
reference, and the next-worst op stays float too, up to :data:`MAX_EXTRA_FLOAT_OPS` more:

- while the export gate would reject the model there;
- and, once it passes, while the op just added cuts the model's output error on validation (the
  mean over images of the largest class-probability change against the reference) by at least
  :data:`MIN_ERROR_CUT`. Flips alone are weak evidence on a small validation split: on the hard
  steel variant the model with one float op flipped 1 of 66 validation images, which the gate
  passes, and 2 of 66 test images, which it rejects; its output error said more (0.020 with one
  float op, 0.014 with two, 0.015 with three) and the two-op model flipped none of the 132
  validation and test images and 9 of 643 photos in all, where the one-op model flipped 13.
  A 20% cut is well above what the next op gives once the rest is rounding: on neu_det
  0.0041 -> 0.0039, at the 1/255 step of the uint8 output.

Without a pass within the cap, the model agreeing most is kept (fewest float ops on a tie). The
gate, not "any flip", decides: chasing one flip in a small validation split on the tiny test run
kept an op float that made the test split worse (3 of 210 more wrong).
"""

from __future__ import annotations

import csv
import io
import math
import re

import numpy as np

OP_ERROR_LIMIT = 1.0  # RMS error in quantization steps of the op's output above which it stays float
DEBUG_IMAGES = 32  # calibration images the per-op error is measured on
MAX_EXTRA_FLOAT_OPS = 3  # ops under the limit that validation may keep float too
MIN_ERROR_CUT = 0.2  # a passing model takes one more float op only if it cuts the val output error by this


def op_errors(rows: list[dict]) -> list[dict]:
    """Per-op error in quantization steps from the debugger's layer statistics, worst first.

    ``rows`` are ``layer_statistics_dump`` CSV rows (``mean_squared_error``, ``scale``, names).
    """
    out = []
    for r in rows:
        scale = float(r["scale"])
        if scale > 0 and math.isfinite(float(r["mean_squared_error"])):
            out.append({"layer": layer_name(r["tensor_name"]), "op": r["op_name"],
                        "steps": round(math.sqrt(float(r["mean_squared_error"])) / scale, 3),
                        "tensor": r["tensor_name"]})
    return sorted(out, key=lambda e: -e["steps"])


def layer_name(tensor: str) -> str:
    """The Keras layer behind a fused TFLite tensor name (``.../expanded_conv_depthwise_1/depthwise;...``).

    The converter names a fused op's output after every graph node folded into it; the layer is the
    one holding the convolution or matmul. Falls back to the first node's parent scope.
    """
    nodes = [n.split("/") for n in tensor.split(";")]
    for parts in nodes:
        if len(parts) >= 2 and parts[-1] in ("depthwise", "convolution", "MatMul", "BiasAdd"):
            return re.sub(r"_\d+$", "", parts[-2])
    parts = nodes[0]
    return re.sub(r"_\d+$", "", parts[-2] if len(parts) >= 2 else parts[-1])


def measure(converter, images: np.ndarray):
    """Calibrate ``converter`` on its representative data and measure every op's int8 error on ``images``.

    Returns ``(calibrated_model, errors)``, ``errors`` as :func:`op_errors` gives them.
    """
    import tensorflow as tf

    def debug_dataset():
        for image in images:
            yield [image[None].astype(np.float32)]

    debugger = tf.lite.experimental.QuantizationDebugger(converter=converter, debug_dataset=debug_dataset)
    debugger.run()
    buf = io.StringIO()
    debugger.layer_statistics_dump(buf)
    # The ops writing the model's outputs are no candidates: their int8 output *is* the uint8 interface.
    outputs = set(_io_types(debugger.calibrated_model)["output_names"])
    errors = op_errors(list(csv.DictReader(io.StringIO(buf.getvalue()))))
    return debugger.calibrated_model, [e for e in errors if e["tensor"] not in outputs]


def _io_types(model: bytes) -> dict:
    """The input/output dtypes and output tensor names of a TFLite model."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=model)
    return {"inputs": [d["dtype"] for d in it.get_input_details()],
            "outputs": [d["dtype"] for d in it.get_output_details()],
            "output_names": [d["name"] for d in it.get_output_details()]}


def quantize_except(calibrated_model: bytes, float_tensors: list[str]) -> bytes:
    """The calibrated model fully quantized (uint8 in/out) but for the ops writing ``float_tensors``."""
    import tensorflow as tf
    from tensorflow.lite.python import convert, util  # what the converter and the debugger both call

    # The body quantized with float in/out (a quantize op at the input, a dequantize at the output);
    # then those end ops become the uint8 interface. (Quantizing the in/out too gives int8 ones, which
    # the io rewrite then leaves alone.)
    mixed = convert.mlir_quantize(calibrated_model, fully_quantize=False, denylisted_nodes=float_tensors)
    model = util.modify_model_io_type(mixed, tf.uint8, tf.uint8)
    io_types = _io_types(model)
    if any(t != np.uint8 for t in io_types["inputs"] + io_types["outputs"]):
        raise RuntimeError(f"int8 with float ops {float_tensors}: got input/output types "
                           f"{io_types['inputs']}/{io_types['outputs']}, expected uint8; export with "
                           "--option tflite-int8.float_fallback=off for a fully integer model")
    return model


def above_limit(errors: list[dict], limit: float | None = None) -> list[dict]:
    """The ops whose error exceeds ``limit`` steps (default :data:`OP_ERROR_LIMIT`)."""
    limit = OP_ERROR_LIMIT if limit is None else limit
    return [e for e in errors if e["steps"] > limit]


def float_ops_notes(artifacts: list[dict]) -> list[str]:
    """One line per artifact that keeps ops in float: which, how far off int8 was, and the way out."""
    notes = []
    for a in artifacts:
        ops = (a.get("quantization") or {}).get("float_ops") or []
        if ops:
            named = ", ".join(f"{o['layer']} ({o['op']}, int8 off by {o['steps']:.2f} steps RMS)"
                              for o in ops)
            notes.append(f"{a['name']} keeps {len(ops)} op(s) in float, measured on calibration images: "
                         f"{named}; {_validation_note(a['quantization'])}{_rest_note(a['quantization'])} "
                         f"For an int8-only accelerator export with --option {a['name']}.float_fallback=off")
    return notes


def _rest_note(record: dict) -> str:
    """What the rest of the model is, and what an engine must do to keep the float ops float."""
    off = record.get("ort_disabled_optimizers")
    if not off:
        return "the rest is int8 with uint8 input and output."
    return (f"the rest is int8 (QDQ). Outside this runtime, load it in ONNX Runtime with the optimizer(s) "
            f"{', '.join(off)} disabled (InferenceSession(..., disabled_optimizers={list(off)})), as the "
            "runtime does: ORT 1.21+ otherwise quantizes the float ops' weights back to int8.")


def _validation_note(record: dict) -> str:
    """What the validation check added, if anything ("" when it kept the ops above the limit only)."""
    tries = record.get("validation_tries") or []
    if not tries or len(record["float_ops"]) == tries[0]["float_ops"]:  # none added (tried or not)
        return ""
    said = ", ".join(f"{t['float_ops']} float: {t['agree']}/{t['of']} agree, {t['gate']}"
                     + (f", output error {t['error']:.4f}" if "error" in t else "") for t in tries)
    return (f"ops under the {record['op_error_limit_steps']} step limit are float too because, without "
            f"them, the gate rejected the model on the validation split or its output error there was "
            f"at least {MIN_ERROR_CUT:.0%} higher ({said}); ")


_ENGINES = {"tflite": ("litert", ".tflite"), "onnx": ("onnxruntime", ".onnx")}


def validation_judge(validation: str, policy, fmt: str = "tflite"):
    """The export gate on the validation split, as ``judge(model) -> {"gate", "agree", "of", "error"}``.

    ``error`` is the model's output error against the reference: the mean over images of the
    largest class-probability change (:func:`output_error`).

    ``validation`` is an ``.npz`` of ``images`` (uint8), the reference's ``probs`` on them, their
    labels ``y`` and the class ``labels``; ``policy`` is the export's :class:`GatePolicy`. The model
    (``fmt`` "tflite" or "onnx", given as bytes) runs through ``runtime.backends``, as in the gate.
    """
    import tempfile
    from pathlib import Path

    from export.gate import classification_summary, gate_metrics, verdict
    from runtime.backends import open_backend

    with np.load(validation) as v:
        images, ref, y, labels = v["images"], v["probs"], v["y"], [str(c) for c in v["labels"]]
    reference = classification_summary(ref, y, labels)
    backend, suffix = _ENGINES[fmt]

    def judge(model: bytes) -> dict:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"candidate{suffix}"
            path.write_bytes(model)
            with open_backend(path, backend=backend, threads=None) as engine:
                probs = engine.run(images)
        metrics = gate_metrics(probs, ref, y, labels, policy.tie_tolerance)
        status, _ = verdict(metrics, reference, "int8", policy)
        return {"gate": status, "agree": metrics["agreement_ci"]["k"], "of": len(y),
                "error": output_error(probs, ref)}

    return judge


def output_error(probs: np.ndarray, ref: np.ndarray) -> float:
    """Mean over images of the largest class-probability change from ``ref`` to ``probs``.

    Continuous where agreement counts flips: it sees a margin shrinking before the image flips. Its
    floor is the uint8 output's step (1/255 = 0.0039).
    """
    if len(ref) == 0:
        return 0.0
    return round(float(np.abs(np.asarray(probs, np.float64) - ref).max(axis=1).mean()), 5)


def checked_on_validation(build, errors: list[dict], judge,
                          max_extra: int = MAX_EXTRA_FLOAT_OPS) -> tuple[bytes, list[dict], list[dict]]:
    """The op set to keep float: those above the limit, then more while validation says they help.

    ``build(ops)`` returns the model with ``ops`` float (``errors`` are worst first); ``judge(model)``
    returns ``{"gate", "agree", "of", "error"}`` (:func:`validation_judge`). The next-worst op is added
    while the gate rejects, and after a pass while each op cuts ``error`` by :data:`MIN_ERROR_CUT`, up
    to ``max_extra`` ops. Returns ``(model, float_ops, tries)``: the last model so taken; with no pass,
    the one agreeing most (fewest float ops on a tie); ``tries`` says what each op count gave.
    """
    start = len(above_limit(errors))
    passed, best, tries = None, None, []
    for n in range(start, min(start + max_extra, len(errors)) + 1):
        model = build(errors[:n])
        t = {"float_ops": n, **judge(model)}
        tries.append(t)
        if passed is not None and not _cuts_error(t, passed[2]):
            break  # the op just added bought too little: keep the model before it
        if t["gate"] == "passed":
            passed = (model, errors[:n], t)
        if best is None or t["agree"] > best[2]["agree"]:
            best = (model, errors[:n], t)
    model, ops, _ = passed or best
    return model, ops, tries


def prefers(incumbent: dict, challenger: dict) -> bool:
    """Whether validation prefers the ``challenger`` build to the ``incumbent`` (both judge verdicts).

    The one the gate passes; when it passes both or neither, the challenger only if it cuts the output
    error by :data:`MIN_ERROR_CUT`: smaller differences are noise on a small validation split.
    """
    if (incumbent["gate"] == "passed") != (challenger["gate"] == "passed"):
        return challenger["gate"] == "passed"
    return cuts_error(challenger["error"], incumbent["error"])


def choices_made(artifacts: list[dict], key: str) -> list[tuple[str, dict, str]]:
    """``(artifact name, choice, verdicts said)`` for each artifact whose quantization record holds a
    validation choice under ``key`` (``"bias_correction_choice"``, ``"activation_ranges_choice"``)."""
    out = []
    for a in artifacts:
        choice = (a.get("quantization") or {}).get(key)
        if choice:
            said = "; ".join(f"{n}: {v['gate']}, {v['agree']}/{v['of']} agree, output error {v['error']:.4f}"
                             for n, v in choice["validation"].items())
            out.append((a["name"], choice, said))
    return out


def _cuts_error(t: dict, before: dict) -> bool:
    """Whether try ``t`` passes the gate with an output error at least MIN_ERROR_CUT under ``before``'s."""
    return t["gate"] == "passed" and cuts_error(t["error"], before["error"])


def cuts_error(error: float, before: float) -> bool:
    """Whether ``error`` is at least :data:`MIN_ERROR_CUT` under ``before`` (an output error of 0 has
    nothing left to cut)."""
    return error < before and error <= (1 - MIN_ERROR_CUT) * before
