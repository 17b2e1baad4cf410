"""Fitness for the line: is the model itself good enough, not only its artifacts as good as it?

The export gate compares each artifact with the reference model; a reference that misses one
defect in ten passes that comparison. Train and export therefore also judge the reference against
line targets (defect recall and false-alarm rate, with their 95% intervals), and the camera
program refuses a bundle judged unfit unless told to run it anyway (``--allow-unfit``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from runtime.rates import format_rate

# A floor for a first model, not a measured optimum: at most 1 defect in 20 passing unflagged and
# at most 1 good part in 20 flagged (export's thresholds aim at 1% false alarms, so a model over 5%
# is far off its own target). Each line sets its own in train and export.
DEFAULT_MIN_DEFECT_RECALL = 0.95
DEFAULT_MAX_FALSE_ALARM_RATE = 0.05


@dataclass(frozen=True)
class LineTargets:
    """The fitness targets: fractions, judged on the point values (intervals are reported beside)."""

    min_defect_recall: float = DEFAULT_MIN_DEFECT_RECALL
    max_false_alarm_rate: float = DEFAULT_MAX_FALSE_ALARM_RATE

    def __post_init__(self) -> None:
        for name, v in asdict(self).items():
            if not 0 <= v <= 1:
                raise ValueError(f"line target {name} must be a fraction in [0, 1], got {v}")


def _check(name: str, r: dict | None, target: float, at_least: bool) -> dict:
    value = None if r is None else r.get("value")
    passed = None if value is None else (value >= target if at_least else value <= target)
    return {"name": name, "rate": r, "target": target, "rule": ">=" if at_least else "<=", "passed": passed}


def judge(defect_recall: dict | None, false_alarm_rate: dict | None, targets: LineTargets,
          where: str) -> dict:
    """The fitness record: each check with its rate (k of n, interval), the verdict, reasons in words.

    ``fit`` is None when a check has nothing to count (no defects or no good parts in the split).
    """
    checks = [_check("defect_recall", defect_recall, targets.min_defect_recall, True),
              _check("false_alarm_rate", false_alarm_rate, targets.max_false_alarm_rate, False)]
    verdicts = [c["passed"] for c in checks]
    fit = None if None in verdicts else all(verdicts)
    reasons = [f"{c['name'].replace('_', ' ')} {format_rate(c['rate'])} is not {c['rule']} the target "
               f"{c['target']:.0%}" for c in checks if c["passed"] is False]
    return {"fit": fit, "judged_on": where, "targets": asdict(targets), "checks": checks, "reasons": reasons}


SORTING_NOTE = "sorting by class (no good class): the line targets of good parts and defects do not apply"


def not_applicable(targets: LineTargets) -> dict:
    """The fitness record of a sorting model (no good class)."""
    return {"fit": None, "judged_on": SORTING_NOTE, "targets": asdict(targets), "checks": [], "reasons": []}


def describe(fitness: dict | None) -> str:
    """One line for a summary or a start-up log."""
    if not fitness:
        return "fitness not judged (bundle from an older export)"
    if fitness["fit"] is None:
        if fitness["judged_on"] == SORTING_NOTE:
            return f"fitness not judged: {SORTING_NOTE}"
        return f"fitness unknown: {fitness['judged_on']} lacks defects or good parts to count"
    if fitness["fit"]:
        return f"fit for the line on {fitness['judged_on']} (" + "; ".join(
            f"{c['name'].replace('_', ' ')} {format_rate(c['rate'])}" for c in fitness["checks"]) + ")"
    return f"NOT FIT for the line on {fitness['judged_on']}: " + "; ".join(fitness["reasons"])
