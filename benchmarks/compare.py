"""``python -m benchmarks compare RESULT... --baseline FILE``: one table across devices, Markdown and HTML.

Rows are device x artifact x backend x threads with p50, p90, p99, FPS, the ratio of p50 to the
baseline's (with an interval from both bootstrap intervals), gate accuracy and size. A case is
matched in the baseline by (artifact, backend, threads), else by the artifact's fastest baseline
case (marked ``~``: another backend, e.g. a board's LiteRT against a desktop GPU). Results of
different bundles (sha256 of ``bundle.json``) are refused unless ``--allow-different-bundles``:
their latencies are of different models. ``--fail-if-slower PCT`` turns it into a regression
check: it fails when a matched case is slower than the baseline by more than PCT percent even at
the favourable end of its interval.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

from benchmarks import plots
from benchmarks.ratios import ratio_with_ci
from benchmarks.results import load


class CompareError(ValueError):
    """Results that cannot be compared as asked."""


@dataclass(frozen=True)
class Row:
    device: str
    case: dict
    ratio: float | None
    ratio_ci: tuple[float, float] | None
    # "same" (same case), "*" (same artifact and backend, other threads: the fastest of them),
    # "~" (the artifact's fastest baseline case on any backend: a board vs the desktop GPU), "" (none)
    matched: str


def device_name(doc: dict) -> str:
    m = doc["machine"]
    gpu = f", {m['gpus'][0]['name']}" if m.get("gpus") else ""
    board = m.get("board", {}).get("model")
    return f"{m['host']} ({board or m['cpu']}{gpu})"


def check_bundles(docs: list[dict], names: list[str], allow: bool) -> None:
    """Refuse results of different bundles unless ``allow``."""
    shas = {d["bundle"]["sha256"] for d in docs}
    if len(shas) > 1 and not allow:
        pairs = ", ".join(
            f"{n}: {d['bundle']['name']} {d['bundle']['sha256'][:12]}"
            for n, d in zip(names, docs, strict=True)
        )
        raise CompareError(
            f"these results timed different bundles ({pairs}); their latencies are of different "
            "models. Re-run on the same bundle, or pass --allow-different-bundles"
        )


def _ok(doc: dict) -> list[dict]:
    return [c for c in doc["cases"] if c["status"] == "ok" and c.get("latency_ms", {}).get("n")]


def match(case: dict, baseline: dict) -> tuple[dict | None, str]:
    """The baseline case to compare ``case`` with, and how it was matched."""
    base = _ok(baseline)
    for b in base:
        if (b["artifact"], b["backend"], b["threads"]) == (
            case["artifact"],
            case["backend"],
            case["threads"],
        ):
            return b, "same"
    same_artifact = [b for b in base if b["artifact"] == case["artifact"]]
    same_backend = [b for b in same_artifact if b["backend"] == case["backend"]]
    if same_backend:
        return min(same_backend, key=lambda b: b["latency_ms"]["p50"]), "*"
    if same_artifact:
        return min(same_artifact, key=lambda b: b["latency_ms"]["p50"]), "~"
    return None, ""


def rows(docs: list[dict], baseline: dict) -> list[Row]:
    out = []
    for doc in docs:
        for case in _ok(doc):
            b, how = match(case, baseline)
            if b is None:
                out.append(Row(device_name(doc), case, None, None, ""))
                continue
            ratio, ci = ratio_with_ci(case["latency_ms"], b["latency_ms"])
            out.append(Row(device_name(doc), case, ratio, ci, how))
    return out


def regressions(table: list[Row], pct: float) -> list[str]:
    """Cases slower than their baseline by more than ``pct`` percent at the low end of the interval."""
    return [
        f"{r.device} {r.case['id']}: p50 x{r.ratio:.2f} (interval {r.ratio_ci[0]:.2f}-{r.ratio_ci[1]:.2f}) "
        f"vs baseline, limit x{1 + pct / 100:.2f}"
        for r in table
        if r.matched == "same" and r.ratio_ci and r.ratio_ci[0] > 1 + pct / 100
    ]


def _fmt(x, spec: str = ".3f") -> str:
    return format(x, spec) if isinstance(x, (int, float)) else "-"


def _cells(r: Row) -> list[str]:
    c, lat = r.case, r.case["latency_ms"]
    ratio = (
        f"{r.ratio:.2f} [{r.ratio_ci[0]:.2f}-{r.ratio_ci[1]:.2f}]{r.matched if r.matched != 'same' else ''}"
        if r.ratio is not None
        else "-"
    )
    size = f"{c['size_bytes'] / 2**20:.2f} MB" if c.get("size_bytes") else "-"
    return [
        r.device,
        c["artifact"],
        c["backend"],
        str(c["threads"] or "auto"),
        _fmt(lat["p50"]),
        _fmt(lat["p90"]),
        _fmt(lat["p99"]),
        _fmt(lat.get("throughput_fps"), ".1f"),
        ratio,
        _fmt(c.get("gate_top1"), ".3f"),
        size,
    ]


HEADER = [
    "device",
    "artifact",
    "backend",
    "threads",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "FPS",
    "x baseline p50",
    "gate top-1",
    "size",
]


def markdown(docs: list[dict], names: list[str], baseline: dict, baseline_name: str, table: list[Row]) -> str:
    lines = [f"# Latency comparison ({len(docs)} results, baseline {baseline_name})", ""]
    for name, d in zip(names, docs, strict=True):
        m = d["machine"]
        lines.append(
            f"- `{name}`: {device_name(d)}; {m['cpu']}, {m['cores']} cores, ISA {' '.join(m['isa']) or '-'}; "
            f"bundle {d['bundle']['name']} `{d['bundle']['sha256'][:12]}`; {d['created']}"
        )
    lines += ["", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in table]
    lines += [
        "",
        "x baseline p50: ratio with its interval (from both bootstrap 95% intervals); * = matched to the "
        "same artifact and backend at other threads, ~ = to the artifact's fastest baseline case on another "
        "backend. FPS = 1000 / mean latency, one query at a time.",
    ]
    return "\n".join(lines) + "\n"


def html_report(docs: list[dict], names: list[str], baseline_name: str, table: list[Row]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in HEADER)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in _cells(r)) + "</tr>" for r in table)
    figures = [plots.cdf(docs, names), plots.bars(table)]
    figures += [plots.sustained(d, n) for d, n in zip(docs, names, strict=True) if d.get("sustained")]
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>edgeflag latency comparison</title><style>"
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
        "padding:2px 6px;text-align:right}td:nth-child(-n+3){text-align:left}</style></head><body>"
        f"<h1>Latency comparison</h1><p>baseline: {html.escape(baseline_name)}</p>"
        f"<table><tr>{head}</tr>{body}</table>" + "".join(figures) + "</body></html>\n"
    )


def compare(
    results: list[str],
    baseline: str,
    out: str | None,
    allow_different_bundles: bool = False,
    fail_if_slower: float | None = None,
) -> tuple[str, list[str]]:
    """Render the comparison; returns the Markdown and the regressions (empty without the check)."""
    names = [Path(p).name for p in results]
    docs = [load(p) for p in results]
    base = load(baseline)
    check_bundles(docs + [base], names + [Path(baseline).name], allow_different_bundles)
    table = rows(docs, base)
    md = markdown(docs, names, base, Path(baseline).name, table)
    if out:
        stem = Path(out)
        stem.parent.mkdir(parents=True, exist_ok=True)
        stem.with_suffix(".md").write_text(md)
        stem.with_suffix(".html").write_text(html_report(docs, names, Path(baseline).name, table))
    return md, regressions(table, fail_if_slower) if fail_if_slower is not None else []
