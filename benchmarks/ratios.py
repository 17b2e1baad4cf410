"""The headline ratios of one run, computed from its cases (so the README quotes the harness, not a hand).

Each ratio is ``p50(numerator) / p50(denominator)`` of two cases measured in the same interleaved
rounds, with an interval from their bootstrap 95% intervals (low/high and high/low): on a shared,
noisy machine the ratio is what one run can say honestly, not the absolute times.
"""

from __future__ import annotations

# (name, what it answers, numerator (artifact, backend), denominator (artifact, backend)).
# ``None`` as an artifact means "the same artifact as the other side, for each artifact".
_PAIRS = (
    ("frame-vs-keras", "the runtime's whole frame vs the tutorial way (Keras predict on one frame)",
     ("tflite-fp32", "runtime-frame"), ("reference-keras", "keras")),
    ("int8-vs-fp32/litert", "int8 vs fp32 TFLite, bare invoke", ("tflite-int8", "litert-invoke"),
     ("tflite-fp32", "litert-invoke")),
    ("int8-vs-fp32/onnxruntime", "int8 vs fp32 ONNX on ONNX Runtime", ("onnx-int8", "onnxruntime"),
     ("onnx-fp32", "onnxruntime")),
    ("onnxruntime-vs-litert/fp32", "ONNX Runtime vs LiteRT, fp32, run_one", ("onnx-fp32", "onnxruntime"),
     ("tflite-fp32", "litert")),
    ("onnxruntime-vs-litert/int8", "ONNX Runtime vs LiteRT, int8, run_one", ("onnx-int8", "onnxruntime"),
     ("tflite-int8", "litert")),
    ("loop-vs-invoke", "the runtime's whole frame (640x480 in) vs the bare invoke, same artifact",
     (None, "runtime-frame"), (None, "litert-invoke")),
    ("harness-cost", "the harness timing a no-op vs the bare fp32 invoke (its own cost)",
     ("none", "noop"), ("tflite-fp32", "litert-invoke")),
)


_ONE_OFF = ("keras", "noop")


def ratio_with_ci(num: dict, den: dict) -> tuple[float, tuple[float, float]]:
    """p50 ratio of two ``latency_ms`` blocks and its interval from both bootstrap p50 intervals."""
    lo = num["p50_ci"][0] / den["p50_ci"][1]
    hi = num["p50_ci"][1] / den["p50_ci"][0]
    return num["p50"] / den["p50"], (lo, hi)


def _find(cases: list[dict], artifact: str, backend: str, threads) -> dict | None:
    for case in cases:
        if case["artifact"] == artifact and case["backend"] == backend and case.get("status") == "ok":
            # Keras and the no-op are one case each, threadless; other pairs are compared at equal threads.
            if backend in _ONE_OFF or case.get("threads") == threads:
                return case
    return None


def _entry(name: str, what: str, num: dict, den: dict, threads) -> dict:
    ratio, ci = ratio_with_ci(num["latency_ms"], den["latency_ms"])
    return {"name": name, "what": what, "numerator": num["id"], "denominator": den["id"],
            "threads": threads, "ratio": ratio, "ratio_ci": list(ci)}


def headline_ratios(doc: dict) -> list[dict]:
    """Every ratio of ``_PAIRS`` whose two cases ran in this result (per thread count and artifact)."""
    cases = [c for c in doc.get("cases", []) if c.get("status") == "ok" and "latency_ms" in c]
    out = []
    for threads in sorted({c.get("threads") for c in cases if c["backend"] not in _ONE_OFF}, key=str):
        for name, what, (na, nb), (da, db) in _PAIRS:
            artifacts = sorted({c["artifact"] for c in cases if c["backend"] == nb}) if na is None else [na]
            for artifact in artifacts:
                num = _find(cases, artifact, nb, threads)
                den = _find(cases, da or artifact, db, threads)
                if num is not None and den is not None:
                    label = f"{name}/{artifact}" if na is None else name
                    out.append(_entry(label, what, num, den, threads))
    return out


def ratios_table(ratios: list[dict]) -> str:
    """Plain-text lines for the terminal (``x`` = times the denominator's p50)."""
    if not ratios:
        return ""
    lines = ["ratios (p50, 95% interval):"]
    for r in ratios:
        lo, hi = r["ratio_ci"]
        lines.append(f"  {r['name'] + ' t' + str(r['threads']):40s} x{r['ratio']:.4g} [{lo:.4g}-{hi:.4g}]  "
                     f"{r['numerator']} / {r['denominator']}")
    return "\n".join(lines)
