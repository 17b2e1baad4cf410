"""The benchmark harness on the tiny bundle: every figure per case, the top-1 check, modes, compare.

Nothing here depends on timing: the figures are checked for presence and consistency (p50 <= p90
<= p99 <= max, intervals around their estimate), never for their size.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.__main__ import main
from benchmarks.engines import BenchEngine
from benchmarks.protocol import top1_check
from benchmarks.results import load, table

ARTIFACTS = "tflite-int8,tflite-fp32,onnx-fp32"
KINDS = "litert,onnxruntime,litert-invoke,runtime-frame,keras,noop,ort-cuda,ort-tensorrt,torch-cuda"


def _passed(bundle: Path, names: str) -> str:
    doc = json.loads((bundle / "bundle.json").read_text())
    status = {a["name"]: a["gate"]["status"] for a in doc["artifacts"]}
    keep = [n for n in names.split(",") if status.get(n) == "passed"]
    if not keep:
        pytest.skip(f"none of {names} passed the gate on this CPU: {status}")
    return ",".join(keep)


def _run(tmp_path: Path, *args: str) -> dict:
    out = tmp_path / "results"
    before = set(out.glob("*.json")) if out.is_dir() else set()
    assert main(["run", "--quick", "--out", str(out), *args]) == 0
    (path,) = set(out.glob("*.json")) - before
    assert path.with_suffix(".csv").is_file()
    return {"path": path, **load(path)}


@pytest.fixture(scope="module")
def latency_result(tiny_bundle, tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("bench")
    return _run(tmp, "--bundle", str(tiny_bundle), "--artifacts", _passed(tiny_bundle, ARTIFACTS),
                "--backends", KINDS, "--threads", "1,2")


def test_every_case_has_every_figure(latency_result):
    ok = [c for c in latency_result["cases"] if c["status"] == "ok"]
    cap = latency_result["protocol"]["max_queries"]  # only a sub-10-us engine (the no-op) reaches it
    kinds = {c["backend"] for c in ok}
    assert {"litert", "onnxruntime", "litert-invoke", "runtime-frame", "noop", "keras"} <= kinds
    assert {c["threads"] for c in ok if c["backend"] == "litert"} == {1, 2}
    for c in ok:
        lat = c["latency_ms"]
        assert lat["n"] >= 48 and (c["timed_seconds"] >= 0.4 or lat["n"] >= cap), c["id"]
        assert lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p95"] <= lat["p99"] <= lat["max"], c["id"]
        assert lat["p50_ci"][0] <= lat["p50"] <= lat["p50_ci"][1], c["id"]
        assert lat["p90_ci"][0] <= lat["p90"] <= lat["p90_ci"][1], c["id"]
        assert len(lat["cdf_ms"]) == 101 and lat["throughput_fps"] > 0 and lat["std"] >= 0
        assert c["cold"]["load_s"] >= 0 and c["cold"]["peak_rss_mb"] > 0, c
        assert c["warmup"]["warmup_calls"] >= 1 and c["warmup"]["first_ms"] > 0
        if c["backend"] not in ("noop", "keras"):
            assert c["size_bytes"] > 0 and 0 < c["gate_top1"] <= 1, c["id"]
        if c["backend"] != "noop":  # the check ran on real test photos of the run and agreed with fp32
            assert c["check"]["passed"] is True and c["check"]["inputs"] == "run test split", c


def test_the_headline_ratios_come_from_the_cases_of_the_run(latency_result):
    ratios = {(r["name"], r["threads"]): r for r in latency_result["ratios"]}
    cases = {c["id"]: c for c in latency_result["cases"]}
    for threads in (1, 2):  # each pair at equal threads; Keras (its own threads) against both
        for name in ("frame-vs-keras", "loop-vs-invoke/tflite-fp32", "onnxruntime-vs-litert/fp32",
                     "harness-cost"):
            r = ratios[(name, threads)]
            num, den = cases[r["numerator"]]["latency_ms"], cases[r["denominator"]]["latency_ms"]
            assert r["ratio"] == pytest.approx(num["p50"] / den["p50"])
            assert r["ratio_ci"][0] <= r["ratio"] <= r["ratio_ci"][1], r
        assert cases[ratios[("harness-cost", threads)]["numerator"]]["backend"] == "noop"


def test_gpu_cases_are_skipped_with_a_reason_without_a_gpu(latency_result):
    gpu = [c for c in latency_result["cases"] if c["backend"] in ("ort-cuda", "ort-tensorrt", "torch-cuda")]
    assert gpu, "GPU cases must appear in the plan"
    for c in gpu:
        assert c["status"] in ("skipped", "ok"), c
        if c["status"] == "skipped":
            assert c["reason"] and "\n" not in c["reason"]


def test_result_has_the_fingerprint(latency_result, tiny_bundle):
    m, b = latency_result["machine"], latency_result["bundle"]
    assert latency_result["schema"] == "edgeflag.bench/1"
    keys = ("cpu", "isa", "cores", "memory_bytes", "governor", "os", "python", "packages", "board", "gpus")
    assert set(keys) <= set(m)
    assert "onnxruntime" in m["packages"] and m["cores"] >= 1
    doc = json.loads((tiny_bundle / "bundle.json").read_text())
    assert b["artifacts"] == {a["name"]: a["sha256"] for a in doc["artifacts"]}
    assert latency_result["rounds"] >= 1 and latency_result["protocol"]["min_queries"] == 48


def test_the_check_catches_an_engine_that_computes_something_else():
    class Swapped(BenchEngine):  # e.g. a wrong input scale that turns every answer around
        kind = "swapped"

        def predict(self, rgb):
            return np.array([0.1, 0.9], np.float32) if rgb.mean() > 100 else np.array([0.9, 0.1], np.float32)

    inputs = [np.full((8, 8, 3), v, np.uint8) for v in (10, 200, 30, 220)]
    reference = np.array([[0.1, 0.9], [0.9, 0.1], [0.2, 0.8], [0.7, 0.3]], np.float32)
    check = top1_check(Swapped(), inputs, reference, "test")
    assert check["passed"] is False and check["agreement"] == 0.0


def test_compare_renders_two_real_results_and_checks_regressions(latency_result, tiny_bundle, tmp_path,
                                                                 capsys):
    one = _run(tmp_path, "--bundle", str(tiny_bundle), "--artifacts", _passed(tiny_bundle, "tflite-int8"),
               "--backends", "litert", "--threads", "1", "--no-cold-probe")
    stem = tmp_path / "report"
    base = str(latency_result["path"])
    assert main(["compare", str(one["path"]), "--baseline", base, "--out", str(stem)]) == 0
    md, page = stem.with_suffix(".md").read_text(), stem.with_suffix(".html").read_text()
    assert "| tflite-int8 | litert | 1 |" in md and "x baseline p50" in md
    assert "<svg" in page and "Latency CDF" in page and "polyline" in page
    # A baseline 10x faster than this run: the regression check fails, naming the case.
    fast = json.loads(latency_result["path"].read_text())
    for c in fast["cases"]:
        if c["status"] == "ok":
            lat = c["latency_ms"]
            for k in ("p50", "p90", "p99"):
                lat[k] /= 10
            lat["p50_ci"] = [v / 10 for v in lat["p50_ci"]]
    fast_path = tmp_path / "fast.json"
    fast_path.write_text(json.dumps(fast))
    capsys.readouterr()
    assert main(["compare", str(one["path"]), "--baseline", str(fast_path), "--fail-if-slower", "50"]) == 1
    assert "SLOWER" in capsys.readouterr().err
    # Another bundle: refused unless asked.
    fast["bundle"]["sha256"] = "0" * 64
    fast_path.write_text(json.dumps(fast))
    assert main(["compare", str(one["path"]), "--baseline", str(fast_path)]) == 2
    assert "different bundles" in capsys.readouterr().err
    assert main(["compare", str(one["path"]), "--baseline", str(fast_path), "--allow-different-bundles"]) == 0


def test_pipeline_mode_breaks_the_frame_into_stages(tiny_bundle, tmp_path):
    doc = _run(tmp_path, "--bundle", str(tiny_bundle), "--mode", "pipeline",
               "--artifacts", _passed(tiny_bundle, "tflite-int8,tflite-fp32"), "--threads", "2")
    p = doc["pipeline"]
    assert p["frames"] == 240 and p["source"].get("corrupt_skipped", 0) == 0
    for stage in ("decode", "prepare", "infer", "decide", "sinks", "process"):
        assert p["stages_ms"][stage]["n"] == 240
    assert p["stages_ms"]["infer"]["p50"] <= p["stages_ms"]["process"]["p50"]
    assert p["frame_to_decision_ms"]["n"] == 240
    lines = table(doc).splitlines()  # the terminal shows the stages, not an empty case table
    assert any(ln.split()[:1] == ["infer"] for ln in lines) and any("capture->decision" in ln for ln in lines)


def test_pipeline_paced_like_a_camera_counts_drops(tiny_bundle, tmp_path):
    doc = _run(tmp_path, "--bundle", str(tiny_bundle), "--mode", "pipeline", "--fps", "120",
               "--artifacts", _passed(tiny_bundle, "tflite-int8,tflite-fp32"))
    src = doc["pipeline"]["source"]
    # Every frame the reader captured was either decided or dropped as stale: nothing vanishes.
    assert src["captured"] == doc["pipeline"]["frames"] + src["dropped_stale"]


def test_sustained_mode_records_windows_with_thermal_state(tiny_bundle, tmp_path):
    doc = _run(tmp_path, "--bundle", str(tiny_bundle), "--mode", "sustained", "--minutes", "0.04",
               "--window", "0.5", "--artifacts", _passed(tiny_bundle, "tflite-int8,tflite-fp32"))
    s = doc["sustained"]
    assert len(s["windows"]) >= 4 and s["state_source"] in ("sysfs", "vcgencmd", "tegrastats", "nvidia-smi")
    assert all(w["queries"] > 0 and "time" in w["state"] for w in s["windows"])
    assert s["throttled"] in (True, False) and doc["cases"][0]["latency_ms"]["n"] > 0
    assert sum(ln.strip().startswith("t=") for ln in table(doc).splitlines()) == len(s["windows"])


def test_a_missing_bundle_is_a_clear_error(tmp_path, capsys):
    assert main(["run", "--quick", "--bundle", str(tmp_path / "nope"), "--out", str(tmp_path)]) == 2
    assert "not a bundle" in capsys.readouterr().err


def test_large_runs_use_the_order_statistic_interval_which_agrees_with_the_bootstrap():
    from benchmarks.latency import bootstrap_ci, order_statistic_ci

    a = np.random.default_rng(3).lognormal(0.0, 0.5, 50_000)
    for q in (50, 90):
        boot, exact = bootstrap_ci(a, q), order_statistic_ci(a, q)
        width = boot[1] - boot[0]
        assert abs(boot[0] - exact[0]) < 0.3 * width and abs(boot[1] - exact[1]) < 0.3 * width, (boot, exact)
        assert exact[0] <= np.percentile(a, q) <= exact[1]


def test_a_no_op_case_stops_at_max_queries_instead_of_filling_memory():
    from dataclasses import replace

    from benchmarks.engines import NoopEngine
    from benchmarks.protocol import QUICK, Timed, interleave

    p = replace(QUICK, min_seconds=3600.0, max_queries=5000)
    timed = Timed({"id": "none/noop"}, NoopEngine(), [], [])
    interleave([timed], p, lambda line: None)
    assert len(timed.samples) == 5000 and timed.seconds > 0
