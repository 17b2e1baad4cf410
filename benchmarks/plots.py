"""Inline SVG plots for the comparison report: no plotting library, the HTML stays self-contained."""

from __future__ import annotations

import html

W, H, PAD = 640, 300, 48
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#17becf")


def _svg(title: str, body: str, xlabel: str, ylabel: str) -> str:
    return (
        f"<h2>{html.escape(title)}</h2><svg xmlns='http://www.w3.org/2000/svg' width='{W}' height='{H}'>"
        f"<rect x='{PAD}' y='8' width='{W - PAD - 8}' height='{H - PAD - 8}' fill='none' stroke='#999'/>"
        f"{body}"
        f"<text x='{W / 2}' y='{H - 8}' text-anchor='middle' font-size='12'>{html.escape(xlabel)}</text>"
        f"<text x='12' y='{H / 2}' font-size='12' transform='rotate(-90 12 {H / 2})' text-anchor='middle'>"
        f"{html.escape(ylabel)}</text></svg>"
    )


def _scale(lo: float, hi: float, a: float, b: float):
    span = (hi - lo) or 1.0
    return lambda v: a + (v - lo) / span * (b - a)


def cdf(docs: list[dict], names: list[str]) -> str:
    """Latency CDF per case (from the 101-point sketch each result keeps)."""
    curves = [
        (f"{n}: {c['id']}", c["latency_ms"]["cdf_ms"])
        for d, n in zip(docs, names, strict=True)
        for c in d["cases"]
        if c["status"] == "ok" and c.get("latency_ms", {}).get("cdf_ms")
    ]
    if not curves:
        return ""
    hi = max(max(v) for _, v in curves)
    x, y = _scale(0, hi, PAD, W - 8), _scale(0, 100, H - PAD, 8)
    body = ""
    for i, (label, values) in enumerate(curves):
        colour = COLOURS[i % len(COLOURS)]
        points = " ".join(f"{x(v):.1f},{y(q):.1f}" for q, v in enumerate(values))
        body += (
            f"<polyline fill='none' stroke='{colour}' points='{points}'><title>{html.escape(label)}</title>"
            f"</polyline><text x='{W - 12}' y='{24 + 12 * i}' font-size='10' text-anchor='end' "
            f"fill='{colour}'>{html.escape(label)}</text>"
        )
    return _svg("Latency CDF per case", body, f"latency (ms), 0 to {hi:.2f}", "percent of queries")


def bars(table: list) -> str:
    """p50 per case, one bar each, grouped by device."""
    if not table:
        return ""
    hi = max(r.case["latency_ms"]["p50"] for r in table)
    height = 16 * len(table) + 16
    body = ""
    for i, r in enumerate(table):
        w = (W - 300) * r.case["latency_ms"]["p50"] / hi
        label = f"{r.device} {r.case['id']}"
        body += (
            f"<text x='0' y='{12 + 16 * i}' font-size='10'>{html.escape(label[:48])}</text>"
            f"<rect x='290' y='{3 + 16 * i}' width='{w:.1f}' height='12' fill='{COLOURS[i % len(COLOURS)]}'/>"
            f"<text x='{294 + w:.1f}' y='{12 + 16 * i}' font-size='10'>{r.case['latency_ms']['p50']:.3f} ms"
            "</text>"
        )
    svg = f"<svg xmlns='http://www.w3.org/2000/svg' width='{W}' height='{height}'>{body}</svg>"
    return f"<h2>p50 per device and case</h2>{svg}"


def sustained(doc: dict, name: str) -> str:
    """p50 per window over time, with the temperature beside it."""
    windows = doc["sustained"]["windows"]
    if not windows:
        return ""
    t_hi = max(w["t"] for w in windows)
    p_hi = max(w["p50"] for w in windows)
    temps = [w["state"].get("temp_c") for w in windows]
    known = [v for v in temps if isinstance(v, (int, float))]
    x, y = _scale(0, t_hi, PAD, W - 8), _scale(0, p_hi, H - PAD, 8)
    body = (
        "<polyline fill='none' stroke='#1f77b4' points='"
        + " ".join(f"{x(w['t']):.1f},{y(w['p50']):.1f}" for w in windows)
        + "'/>"
    )
    if known:
        yt = _scale(min(known) - 1, max(known) + 1, H - PAD, 8)
        body += (
            "<polyline fill='none' stroke='#d62728' points='"
            + " ".join(
                f"{x(w['t']):.1f},{yt(v):.1f}"
                for w, v in zip(windows, temps, strict=True)
                if isinstance(v, (int, float))
            )
            + "'/>"
        )
        body += (
            f"<text x='{W - 12}' y='24' font-size='10' text-anchor='end' fill='#d62728'>temperature "
            f"{min(known):.1f}-{max(known):.1f} C</text>"
        )
    flag = " (THROTTLED)" if doc["sustained"]["throttled"] else ""
    return _svg(
        f"Sustained run {name}{flag}: p50 per window (blue), temperature (red)",
        body,
        f"time (s), 0 to {t_hi:.0f}",
        f"p50 (ms), 0 to {p_hi:.2f}",
    )
