"""The data report: what was found, what was skipped and why, duplicates, imbalance, split sizes.

Written as ``data_report.json`` (for tools) and ``data_report.md`` (for people) in the run folder.
"""

from __future__ import annotations

from pathlib import Path

from runtime.fsutil import atomic_write_json, atomic_write_text


def class_weights(train_counts: dict[str, int], labels: list[str], mode: str,
                  ok_label: str | None = None) -> dict[str, float]:
    """Loss weight per class from the training split's counts.

    ``line`` (the default): the good class weighs as much in the loss as all defect types together,
    and the types weigh the same among themselves: ``n / (2 n_ok)`` and ``n / (2 k n_c)`` for ``k``
    defect types. The line decides good against defective, so that is the balance that matters.
    ``balanced`` gives every class ``n / (classes n_c)``: with one good class and five rare defect
    types the good parts then carry a sixth of the loss, and the model learns to call good parts
    defects (measured in the README: stage 2 took val accuracy from 68% to 26% in one epoch). With
    two classes, or without a good class (sorting), ``line`` is ``balanced``.
    ``oversample`` balances the classes by repeating photos instead (train.data.oversample), so its
    loss weights are all 1, as with ``none``.
    """
    if mode in ("none", "oversample"):
        return {lab: 1.0 for lab in labels}
    total = sum(train_counts.values())

    def n(lab: str) -> int:
        return max(1, train_counts.get(lab, 0))

    if mode == "line" and ok_label in labels and len(labels) > 2:
        types = len(labels) - 1
        return {lab: round(total / (2 * n(lab)) if lab == ok_label else total / (2 * types * n(lab)), 4)
                for lab in labels}
    return {lab: round(total / (len(labels) * n(lab)), 4) for lab in labels}


_REMEDY = {"line": "class weights balance the good parts against the defects (and the defect types "
                   "among themselves)",
           "balanced": "balanced class weights are applied",
           "oversample": "the smaller classes' photos are repeated in training (--class-weights oversample)",
           "none": "nothing balances the classes (--class-weights none)"}


def imbalance(counts: dict[str, int], warn_ratio: float, mode: str = "line") -> dict:
    """Largest/smallest class ratio and, when it reaches ``warn_ratio``, a warning text."""
    big, small = max(counts, key=counts.get), min(counts, key=counts.get)
    ratio = counts[big] / max(1, counts[small])
    warning = None
    if ratio >= warn_ratio:
        warning = (f"class imbalance: {big!r} has {counts[big]} images, {small!r} only {counts[small]} "
                   f"({ratio:.1f}x); {_REMEDY[mode]} and the test recall of "
                   f"{small!r} rests on few images: collect more if you can")
    return {"largest": big, "smallest": small, "ratio": round(ratio, 3), "warning": warning}


def write_report(run_dir: Path, report: dict) -> None:
    """Write ``data_report.json`` and a readable ``data_report.md``."""
    atomic_write_json(run_dir / "data_report.json", report)
    atomic_write_text(run_dir / "data_report.md", render_markdown(report))


def render_markdown(r: dict) -> str:
    """A short human summary of the report dict."""
    lines = [f"# Data report: {r['data_dir']}", "",
             f"Good class: `{r['ok_label'] or 'none'}` ({r['ok_label_rule']}). "
             f"Dataset fingerprint `{r['fingerprint']}`."
             + (f" The set comes split: {r['given_split']}." if r.get("given_split") else ""), "",
             "| class | files | used | train | val | test | class weight |", "|---|---|---|---|---|---|---|"]
    for lab, c in r["classes"].items():
        s = r["splits"]
        counts = " | ".join(str(s[x].get(lab, 0)) for x in ("train", "val", "test"))
        lines.append(f"| {lab} | {c['files']} | {c['used']} | {counts} | {r['class_weights'][lab]} |")
    for warning in (r["imbalance"]["warning"], r.get("validation_warning")):
        if warning:
            lines += ["", f"**Warning:** {warning}"]
    lines += ["", f"## Skipped files ({len(r['skipped'])})", ""]
    lines += [f"- `{s['path']}`: {s['reason']}" for s in r["skipped"]] or ["none"]
    dups = r["duplicates"]
    lines += ["", f"## Duplicate groups ({len(dups['groups'])}; kept in one split each)", ""]
    lines += [f"- {g['kind']}: " + ", ".join(f"`{p}`" for p in g["paths"]) + f" -> {g['split']}"
              for g in dups["groups"]] or ["none"]
    if dups["label_conflicts"]:
        lines += ["", "**Same picture in several classes** (check the labels):", ""]
        lines += ["- " + ", ".join(f"`{p}`" for p in g["paths"]) for g in dups["label_conflicts"]]
    if r["ignored"]:
        lines += ["", "## Ignored", ""] + [f"- `{i['path']}`: {i['reason']}" for i in r["ignored"]]
    if r.get("previous_split", {}).get("missing"):
        miss = r["previous_split"]["missing"]
        lines += ["", f"## Listed in the reused split lists but gone ({len(miss)})", ""]
        lines += [f"- `{p}`" for p in miss]
    return "\n".join(lines) + "\n"
