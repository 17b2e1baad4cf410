"""Result files: ``results/<host>-<UTC time>.json`` (versioned schema) with a CSV beside it, and the table.

Schema ``edgeflag.bench/1``: ``{schema, created, mode, machine, bundle, protocol, cases: [...], ...}``;
each case has its identity (artifact, backend, threads), ``status`` (ok, skipped, failed) and, when
ok, ``latency_ms`` (n, p50, p90, p95, p99, min, max, mean, std, p50_ci, p90_ci, throughput_fps,
cdf_ms), ``cold`` (import_s, load_s, first_ms, peak_rss_mb), ``warmup``, ``check``, size and gate
accuracy. ``compare`` refuses files of another schema.
"""

from __future__ import annotations

import csv
import json
import socket
from datetime import UTC, datetime
from pathlib import Path

from runtime.fsutil import atomic_write_json

SCHEMA = "edgeflag.bench/1"
CSV_FIELDS = (
    "id",
    "artifact",
    "backend",
    "threads",
    "precision",
    "status",
    "p50",
    "p90",
    "p95",
    "p99",
    "max",
    "mean",
    "std",
    "p50_lo",
    "p50_hi",
    "throughput_fps",
    "load_s",
    "first_ms",
    "peak_rss_mb",
    "size_bytes",
    "gate_top1",
    "check",
    "reason",
)


def new_result(mode: str, machine: dict, bundle: dict, protocol: dict) -> dict:
    """The document a run fills in."""
    return {
        "schema": SCHEMA,
        "created": datetime.now(UTC).isoformat(),
        "mode": mode,
        "machine": machine,
        "bundle": bundle,
        "protocol": protocol,
        "cases": [],
    }


def write(doc: dict, out_dir: str | Path = "results") -> Path:
    """``<out>/<host>-<UTC time>.json`` and ``.csv``, each written atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = out / f"{socket.gethostname()}-{stamp}.json"
    n = 1
    while path.exists():  # two runs in one second (tests): never overwrite a result
        n += 1
        path = out / f"{socket.gethostname()}-{stamp}-{n}.json"
    atomic_write_json(path, doc)
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, CSV_FIELDS)
        writer.writeheader()
        writer.writerows(csv_row(c) for c in doc["cases"])
    tmp.replace(path.with_suffix(".csv"))
    return path


def csv_row(case: dict) -> dict:
    lat, cold = case.get("latency_ms", {}), case.get("cold", {})
    ci = lat.get("p50_ci", [None, None])
    check = case.get("check", {}).get("passed")
    return {
        **{
            k: case.get(k)
            for k in (
                "id",
                "artifact",
                "backend",
                "threads",
                "precision",
                "status",
                "size_bytes",
                "gate_top1",
                "reason",
            )
        },
        **{k: lat.get(k) for k in ("p50", "p90", "p95", "p99", "max", "mean", "std", "throughput_fps")},
        "p50_lo": ci[0],
        "p50_hi": ci[1],
        "load_s": cold.get("load_s"),
        "first_ms": cold.get("first_ms"),
        "peak_rss_mb": cold.get("peak_rss_mb"),
        "check": {True: "ok", False: "FAILED"}.get(check, ""),
    }


def load(path: str | Path) -> dict:
    """A result file, refused if it is not this schema."""
    doc = json.loads(Path(path).read_text())
    if doc.get("schema") != SCHEMA:
        raise ValueError(
            f"{path}: schema {doc.get('schema')!r}, expected {SCHEMA!r}; re-run "
            "`python -m benchmarks run` with this version"
        )
    return doc


def _f(x, fmt: str = "8.3f") -> str:
    return format(x, fmt) if isinstance(x, (int, float)) else f"{'-':>{fmt.split('.')[0]}}"


def table(doc: dict) -> str:
    """One short terminal table: ok cases with their figures; skipped ones one line per reason."""
    m = doc["machine"]
    lines = [
        f"{m['cpu']} ({m['machine']}, {m['cores']} cores; {' '.join(m['isa']) or 'no int8 ISA flags'})",
        f"{'case':42s} {'p50':>8s} {'p90':>8s} {'p99':>8s} {'fps':>8s} {'load s':>7s} {'rss MB':>7s} "
        f"{'top1':>6s} check",
    ]
    not_run: dict[tuple[str, str], list[str]] = {}
    for c in doc["cases"]:
        if c["status"] != "ok":
            # Six GPU cases skipped for one missing provider are one line, not six.
            not_run.setdefault((c["status"], c.get("reason", "")), []).append(c["id"])
            continue
        lat, cold = c["latency_ms"], c.get("cold", {})
        check = {True: "ok", False: "FAILED", None: "n/a"}[c.get("check", {}).get("passed")]
        lines.append(
            f"{c['id']:42s} {_f(lat['p50'])} {_f(lat['p90'])} {_f(lat['p99'])} "
            f"{_f(lat['throughput_fps'], '8.1f')} {_f(cold.get('load_s'), '7.2f')} "
            f"{_f(cold.get('peak_rss_mb'), '7.0f')} {_f(c.get('gate_top1'), '6.3f')} {check}"
        )
    for (status, reason), ids in not_run.items():
        lines.append(f"{status} {len(ids)} ({', '.join(ids)}): {reason}")
    lines.append("(ms per query; fps = 1000 / mean; load and rss from a cold process; top1 = gate accuracy)")
    if "pipeline" in doc:
        lines += _pipeline_lines(doc["pipeline"])
    if "sustained" in doc:
        lines += _sustained_lines(doc["sustained"])
    return "\n".join(lines)


def _pipeline_lines(p: dict) -> list[str]:
    """Per-stage p50/p90 of the runtime's own loop, then frame-to-decision and drops."""
    pace = (f"paced at {p['fps']:g} fps: decode includes the wait for the next frame" if p.get("fps")
            else "as fast as it goes")
    lines = [f"pipeline: {p['artifact']} on {p['engine'].get('backend')}, {p['frames']} frames of "
             f"{p['video']} ({pace}; {p['fps_achieved']:.1f} fps achieved)",
             f"  {'stage':10s} {'p50':>8s} {'p90':>8s} {'p99':>8s}"]
    stages = {**p["stages_ms"], "capture->decision": p["frame_to_decision_ms"]}
    for name, lat in stages.items():
        lines.append(f"  {name:10s} " + " ".join(_f(lat.get(q)) for q in ("p50", "p90", "p99")))
    dropped = p.get("source", {}).get("dropped_stale", 0)
    lines.append(f"  dropped by the latest-frame reader: {dropped}; events: {p['events']}")
    return lines


def _sustained_lines(s: dict) -> list[str]:
    """One line per window: p50 and the thermal state next to it; the throttling verdict."""
    lines = [f"sustained: {s['case']}, {len(s['windows'])} windows of {s['window_s']:g} s "
             f"(state from {s['state_source']})"]
    for w in s["windows"]:
        st = w["state"]
        mark = "  THROTTLED" if st.get("throttled") else ""
        lines.append(f"  t={w['t']:7.1f} s  p50 {_f(w['p50'])}  p99 {_f(w['p99'])}"
                     f"  temp {st.get('temp_c', '-')} C  clock {st.get('clock_mhz', '-')} MHz{mark}")
    drift = s.get("drift_p50")
    lines.append(f"  last/first window p50: {_f(drift, '.3f')}; throttled: {s['throttled']}; "
                 f"under-voltage: {s['under_voltage']}")
    return lines
