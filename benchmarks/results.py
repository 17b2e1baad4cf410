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
    """One short terminal table: ok cases with their figures, skipped ones with the reason."""
    m = doc["machine"]
    lines = [
        f"{m['cpu']} ({m['machine']}, {m['cores']} cores; {' '.join(m['isa']) or 'no int8 ISA flags'})",
        f"{'case':42s} {'p50':>8s} {'p90':>8s} {'p99':>8s} {'fps':>8s} {'load s':>7s} {'rss MB':>7s} "
        f"{'top1':>6s} check",
    ]
    for c in doc["cases"]:
        if c["status"] != "ok":
            lines.append(f"{c['id']:42s} {c['status']}: {c.get('reason', '')}")
            continue
        lat, cold = c["latency_ms"], c.get("cold", {})
        check = {True: "ok", False: "FAILED", None: "n/a"}[c.get("check", {}).get("passed")]
        lines.append(
            f"{c['id']:42s} {_f(lat['p50'])} {_f(lat['p90'])} {_f(lat['p99'])} "
            f"{_f(lat['throughput_fps'], '8.1f')} {_f(cold.get('load_s'), '7.2f')} "
            f"{_f(cold.get('peak_rss_mb'), '7.0f')} {_f(c.get('gate_top1'), '6.3f')} {check}"
        )
    lines.append("(ms per query; fps = 1000 / mean; load and rss from a cold process; top1 = gate accuracy)")
    return "\n".join(lines)
