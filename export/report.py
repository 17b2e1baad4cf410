"""Human-readable bundle report: report.md, report.html and a confusion-matrix PNG per artifact."""

from __future__ import annotations

import html
from pathlib import Path

from export.activation_ranges import ranges_notes
from export.correction_choice import choice_notes
from export.gate import diagnoses
from export.int8_fallback import float_ops_notes
from runtime.fitness import describe
from runtime.fsutil import atomic_write_text
from runtime.rates import format_rate

_HEADER = ("artifact", "format", "precision", "size", "top-1", "drop (pts)", "agreement",
           "defect recall @ thr", "false alarms @ thr", "status")


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.2%}"


def _size(n: int) -> str:
    return f"{n / 1024:.0f} KiB" if n < 1 << 20 else f"{n / (1 << 20):.2f} MiB"


def table_rows(doc: dict) -> list[tuple[str, ...]]:
    """One row for the reference, one per artifact (strings, in ``_HEADER`` order)."""
    ref = doc["reference"]
    rows = [("reference (Keras)", "keras", "fp32", "-", _pct(ref["top1"]), "-", "-",
             _pct(ref["defect_recall_at_threshold"]), _pct(ref["false_alarm_rate_at_threshold"]), "")]
    for a in doc["artifacts"]:
        m = a["gate"]["metrics"]
        rows.append((a["name"], a["format"], a["precision"], _size(a["size_bytes"]), _pct(m["top1"]),
                     f"{m['top1_drop']:+.2f}", _pct(m["agreement"]), _pct(m["defect_recall_at_threshold"]),
                     _pct(m["false_alarm_rate_at_threshold"]),
                     "✅ passed" if a["gate"]["status"] == "passed" else "❌ rejected"))
    for f in doc["failed_exports"]:
        rows.append((f["name"], "-", "-", "-", "-", "-", "-", "-", "-", "❌ export failed"))
    return rows


_RATE_HEADER = ("top-1", "defect recall @ thr", "false alarms @ thr", "agreement", "recall per class")


def _rates(m: dict) -> tuple[str, ...]:
    per_class = "; ".join(f"{c} {format_rate(r)}" for c, r in m.get("per_class_recall_ci", {}).items())
    return (format_rate(m.get("top1_ci")), format_rate(m.get("defect_recall_at_threshold_ci")),
            format_rate(m.get("false_alarm_rate_at_threshold_ci")), format_rate(m.get("agreement_ci")),
            per_class or "-")


def rate_rows(doc: dict) -> list[tuple[str, ...]]:
    """Every rate with its count and 95% interval: the reference, then each artifact."""
    return [("reference (Keras)", *_rates(doc["reference"]))] + [
        (a["name"], *_rates(a["gate"]["metrics"])) for a in doc["artifacts"]]


def _problems(doc: dict) -> list[str]:
    out = [f"{a['name']}: {r}" for a in doc["artifacts"] for r in a["gate"]["reasons"]]
    out += [d for a in doc["artifacts"] if a["gate"]["status"] != "passed"
            for d in diagnoses(a["name"], a["gate"]["metrics"])]
    return out + [f"{f['name']}: export failed: {f['error']}" for f in doc["failed_exports"]]


def plot_confusion(matrix: list[list[int]], labels: list[str], title: str, path: Path) -> None:
    """Save a confusion-matrix heat map (rows: true class, columns: predicted)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(labels)
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * n, 1.0 + 0.8 * n), dpi=100)
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(n), labels, rotation=45, ha="right")
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    peak = max(max(r) for r in matrix) or 1
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(matrix[i][j]), ha="center", va="center",
                    color="white" if matrix[i][j] > peak / 2 else "black")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def write_plots(doc: dict, root: Path) -> dict[str, str]:
    """Confusion PNGs for the reference and every artifact; returns name -> relative path."""
    out = {}
    items = [("reference", doc["reference"]["confusion_matrix"])]
    items += [(a["name"], a["gate"]["metrics"]["confusion_matrix"]) for a in doc["artifacts"]]
    for name, matrix in items:
        rel = f"plots/confusion_{name}.png"
        plot_confusion(matrix, doc["labels"], f"{name} (test split)", root / rel)
        out[name] = rel
    return out


def fitness_line(doc: dict) -> str:
    """The reference model against the line targets, in words (runtime.fitness)."""
    f = doc.get("fitness")
    line = describe(f)
    if f and f["fit"] is not None:
        t = f["targets"]
        line += (f". Targets: defect recall >= {t['min_defect_recall']:.0%}, good parts flagged <= "
                 f"{t['max_false_alarm_rate']:.0%} (export --min-defect-recall / --max-false-alarm-rate).")
    return line


def placement_line(doc: dict) -> str:
    """How the reference's thresholds were placed on val, in words ("" for sorting)."""
    overall = doc["reference"].get("threshold_selection", {}).get("overall", {})
    p = overall.get("placement")
    if not p:
        return ""
    if p["placement"] == "fitted":
        line = (f" No defect threshold is under {p['threshold']:.3g}: where the good parts' defect score is "
                f"expected to pass the target, fitted on {p['good_images']} good val images "
                f"({p['fitted']:.3g}; never under {p['minimum']:g} nor under the highest good val score the "
                "target admits).")
    else:
        line = f" Thresholds sit mid-way between the good val parts and the weakest val defect: {p['why']}."
    return line + guard_line(overall.get("recall_guard"))


def guard_line(g: dict | None) -> str:
    """The recall guard (runtime.decision.recall_guard) in words, when it lowered the thresholds."""
    if not g or not g["applied"]:
        return ""
    before, after = g["val_defects_caught_before"], g["val_defects_caught_after"]
    return (f" Placed so, they caught {before['k']}/{before['n']} val defects, under the line's "
            f"{g['min_defect_recall']:.0%} recall target, so every threshold above {g['cap']:.3g} was "
            f"lowered to it ({after['k']}/{after['n']} caught); never under {g['false_alarm_limit']:.3g}, "
            f"where the good parts' false alarms would pass the line's {g['max_false_alarm_rate']:.0%} "
            "(export --min-defect-recall / --max-false-alarm-rate).")


def render_markdown(doc: dict, plots: dict[str, str]) -> str:
    """report.md text."""
    rows = table_rows(doc)
    lines = [f"# Bundle {doc['name']}", "",
             f"Run `{doc['provenance']['run']}`, {doc['reference']['n_test']} test images, thresholds for a "
             f"{doc['gate_policy']['target_false_alarm_rate']:.1%} false-alarm target chosen on "
             f"{doc['reference']['n_val']} val images.{placement_line(doc)} Created {doc['created']}.", "",
             "| " + " | ".join(_HEADER) + " |", "|" + "---|" * len(_HEADER)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines += ["", "## Fitness for the line", "", fitness_line(doc)]
    problems = _problems(doc)
    lines += ["", "## Problems", ""] + [f"- {p}" for p in problems] if problems else []
    warnings = doc.get("warnings", [])
    lines += ["", "## Warnings", ""] + [f"- {w}" for w in warnings] if warnings else []
    mixed = quantization_notes(doc)
    heading = "## Quantization: ops kept in float, bias correction"
    lines += ["", heading, ""] + [f"- {m}" for m in mixed] if mixed else []
    lines += ["", "## Uncertainty (test split, 95% Wilson intervals)", "",
              "| artifact | " + " | ".join(_RATE_HEADER) + " |", "|" + "---|" * (len(_RATE_HEADER) + 1)]
    lines += ["| " + " | ".join(r) + " |" for r in rate_rows(doc)]
    lines += ["", "## Confusion matrices (test split)", ""]
    lines += [f"![{name}]({rel})" for name, rel in plots.items()]
    return "\n".join(lines) + "\n"


def render_html(doc: dict, plots: dict[str, str]) -> str:
    """report.html text (self-contained apart from the PNGs next to it)."""
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in _HEADER)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in table_rows(doc))
    problems = "".join(f"<li>{esc(p)}</li>" for p in _problems(doc))
    warnings = "".join(f"<li>{esc(w)}</li>" for w in doc.get("warnings", []))
    mixed = "".join(f"<li>{esc(m)}</li>" for m in quantization_notes(doc))
    rate_head = "".join(f"<th>{esc(h)}</th>" for h in ("artifact", *_RATE_HEADER))
    rate_body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rate_rows(doc))
    figs = "".join(f'<figure><img src="{esc(rel)}" alt="{esc(n)}"><figcaption>{esc(n)}</figcaption></figure>'
                   for n, rel in plots.items())
    style = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}figure{display:inline-block}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>Bundle {esc(doc['name'])}</title>"
            f"<style>{style}</style></head><body><h1>Bundle {esc(doc['name'])}</h1>"
            f"<p>Run {esc(str(doc['provenance']['run']))}, {doc['reference']['n_test']} test images."
            f"{esc(placement_line(doc))}</p>"
            f"<table><tr>{head}</tr>{body}</table>"
            f"<h2>Fitness for the line</h2><p>{esc(fitness_line(doc))}</p>"
            + (f"<h2>Problems</h2><ul>{problems}</ul>" if problems else "")
            + (f"<h2>Warnings</h2><ul>{warnings}</ul>" if warnings else "")
            + (f"<h2>Quantization: ops kept in float, bias correction</h2><ul>{mixed}</ul>" if mixed else "")
            + f"<h2>Uncertainty (test split, 95% Wilson intervals)</h2><table><tr>{rate_head}</tr>{rate_body}"
              "</table>"
            + f"<h2>Confusion matrices (test split)</h2>{figs}</body></html>\n")


def write_report(doc: dict, root: Path) -> None:
    """Write plots, report.md and report.html into the bundle folder ``root``."""
    plots = write_plots(doc, root)
    atomic_write_text(root / "report.md", render_markdown(doc, plots))
    atomic_write_text(root / "report.html", render_html(doc, plots))


def quantization_notes(doc: dict) -> list[str]:
    """The ops int8 artifacts keep in float, and the activation ranges and bias-correction build each kept."""
    return float_ops_notes(doc["artifacts"]) + ranges_notes(doc["artifacts"]) + choice_notes(doc["artifacts"])
