"""Production counters of line mode: parts, ok, defective per class, yield, last-hour rates.

The counts are the line's production record, so they outlive the process: with a ``path``, every
part rewrites a small JSON state file atomically (temp file, fsync, rename), and a restarted
service (a crash, a reboot, ``systemctl restart``) continues from the last part it saw instead of
from zero. A state file that cannot be read is kept aside (``.corrupt``), never overwritten blindly.

The last-hour figures come from the parts' own wall-clock times, kept for one hour (at most
``max_recent`` of them), so they are right across a restart too.
"""

from __future__ import annotations

import json
import time
from collections import Counter, deque
from pathlib import Path

from runtime.fsutil import atomic_write_json

SCHEMA = "edgeflag.counters/1"
HOUR = 3600.0


class ProductionCounters:
    """Counts of parts by verdict and class; ``record`` per part, ``to_dict`` for reports."""

    def __init__(self, path: str | Path | None = None, clock=time.time, max_recent: int = 100_000,
                 log=None):
        self.path = Path(path) if path else None
        self._clock, self._log = clock, log
        self.parts = self.ok = 0
        self.defective: Counter[str] = Counter()
        self.incomplete = 0  # parts still in view when a run ended (counted, flagged as such)
        self._recent: deque[tuple[float, bool]] = deque(maxlen=max_recent)  # (time, defective)
        self.since: float = clock()
        self.restored = False
        if self.path is not None:
            self._load()

    def record(self, verdict: str, label: str, complete: bool = True) -> None:
        """One part's verdict (``"defect"`` with its class, or ``"ok"``); persisted at once."""
        self.parts += 1
        defect = verdict == "defect"
        if defect:
            self.defective[label] += 1
        else:
            self.ok += 1
        self.incomplete += not complete
        self._recent.append((self._clock(), defect))
        if self.path is not None:
            atomic_write_json(self.path, self._state())

    @property
    def defective_total(self) -> int:
        """Defective parts of every class."""
        return sum(self.defective.values())

    @property
    def yield_(self) -> float | None:
        """Share of ok parts (None before the first part)."""
        return self.ok / self.parts if self.parts else None

    def last_hour(self) -> dict:
        """Parts and defective parts in the last hour, and the defect rate among them."""
        cutoff = self._clock() - HOUR
        while self._recent and self._recent[0][0] < cutoff:
            self._recent.popleft()
        parts = len(self._recent)
        bad = sum(d for _, d in self._recent)
        return {"parts": parts, "defective": bad, "defect_rate": round(bad / parts, 4) if parts else None}

    def to_dict(self) -> dict:
        """JSON-ready counts (what the summary and the status page show)."""
        y = self.yield_
        return {"parts": self.parts, "ok": self.ok, "defective": self.defective_total,
                "defective_by_class": dict(sorted(self.defective.items())),
                "yield": round(y, 4) if y is not None else None, "incomplete": self.incomplete,
                "last_hour": self.last_hour(), "since": _iso(self.since), "restored": self.restored}

    def line(self) -> str:
        """Fields for the periodic stats line."""
        y = self.yield_
        return (f"parts={self.parts} ok={self.ok} defective={self.defective_total} "
                f"yield={'-' if y is None else f'{100 * y:.1f}%'}")

    # ------------------------------------------------------------------------------------ state file
    def _state(self) -> dict:
        return {"schema": SCHEMA, "parts": self.parts, "ok": self.ok, "defective": dict(self.defective),
                "incomplete": self.incomplete, "since": self.since, "recent": list(self._recent)}

    def _load(self) -> None:
        try:
            state = json.loads(self.path.read_text())
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            self._set_aside(f"unreadable ({exc})")
            return
        try:
            if state.get("schema") != SCHEMA:
                raise ValueError(f"schema {state.get('schema')!r}, expected {SCHEMA!r}")
            parts, ok, incomplete = int(state["parts"]), int(state["ok"]), int(state.get("incomplete", 0))
            defective = Counter({str(k): int(v) for k, v in state["defective"].items()})
            if parts != ok + sum(defective.values()) or min(ok, incomplete, *defective.values(), 0) < 0:
                raise ValueError(f"counts do not add up: parts={parts}, ok={ok}, defective={dict(defective)}")
            recent = [(float(t), bool(d)) for t, d in state.get("recent", [])]
            since = float(state.get("since", self.since))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            self._set_aside(f"malformed ({exc})")
            return
        self.parts, self.ok, self.defective, self.incomplete = parts, ok, defective, incomplete
        self._recent.extend(recent)
        self.since, self.restored = since, True

    def _set_aside(self, why: str) -> None:
        aside = self.path.with_name(self.path.name + ".corrupt")
        self.path.replace(aside)
        if self._log:
            self._log(f"[start] counters {self.path} {why}: moved to {aside}; counting from zero")


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
