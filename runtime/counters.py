"""Production counters of line mode: parts, ok, defective per class, yield, last-hour rates.

The counts are the line's production record, so they outlive the process: with a ``path``, a small
JSON state file is rewritten atomically (temp file, fsync, rename) by a background thread, about
once a second and at a clean stop (:mod:`runtime.checkpoint`: the inference loop never waits on the
disk). The event log is the journal: a restarted service (a crash, a reboot, ``systemctl
restart``) loads the state file, then counts again every part the log holds after the file's last
part id (:mod:`runtime.part_log`), so it continues from the last part logged, and part ids never
repeat. A state file that cannot be read is kept aside (``.corrupt``), never overwritten blindly.

The last-hour figures come from the parts' own wall-clock times, kept for one hour (at most
``max_recent`` of them); the state file keeps them per minute (a few KB on a busy line), so across a
restart they are right to the minute.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter, deque
from pathlib import Path

from runtime.checkpoint import CheckpointWriter
from runtime.part_log import logged_time, parts_after

SCHEMA = "edgeflag.counters/1"
HOUR = 3600.0


class ProductionCounters:
    """Counts of parts by verdict and class; ``record`` per part, ``to_dict`` for reports."""

    def __init__(self, path: str | Path | None = None, clock=time.time, max_recent: int = 100_000,
                 log=None, journal: str | Path | None = None, min_interval: float = 1.0):
        """``path``: the state file (None: in memory only); ``journal``: the event log whose part
        records fill in what the state file lacks after a crash; ``min_interval``: seconds
        between state-file writes."""
        self.path = Path(path) if path else None
        self._clock, self._log = clock, log
        self._lock = threading.Lock()  # the loop records, the status page and the writer read
        self.parts = self.ok = 0
        self.last_part_id = 0  # part ids go on from here after a restart
        self.defective: Counter[str] = Counter()
        self.incomplete = 0  # parts still in view when a run ended (counted, flagged as such)
        self._recent: deque[tuple[float, bool]] = deque(maxlen=max_recent)  # (time, defective)
        self.since: float = clock()
        self.restored = False
        self.replayed = 0  # parts counted again from the journal at start-up
        self._floor = 0  # the journal's size when this count began (earlier records are not ours)
        self._writer: CheckpointWriter | None = None
        if self.path is not None:
            self._open(Path(journal) if journal else None, min_interval)

    def record(self, verdict: str, label: str, complete: bool = True, part_id: int | None = None,
               at: float | None = None) -> None:
        """One part's verdict (``"defect"`` with its class, or ``"ok"``); persisted soon after."""
        with self._lock:
            self._count(verdict, label, complete, part_id, self._clock() if at is None else at)
        if self._writer is not None:
            self._writer.touch()

    def close(self) -> None:
        """Write the final state and stop the writer (the file is current after a clean stop)."""
        if self._writer is not None:
            self._writer.close()

    def _count(self, verdict: str, label: str, complete: bool, part_id: int | None, at: float) -> None:
        self.parts += 1
        self.last_part_id = part_id if part_id is not None else self.last_part_id + 1
        defect = verdict == "defect"
        if defect:
            self.defective[label] += 1
        else:
            self.ok += 1
        self.incomplete += not complete
        self._recent.append((at, defect))

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
        with self._lock:
            return self._last_hour()

    def _last_hour(self) -> dict:
        cutoff = self._clock() - HOUR
        while self._recent and self._recent[0][0] < cutoff:
            self._recent.popleft()
        parts = len(self._recent)
        bad = sum(d for _, d in self._recent)
        return {"parts": parts, "defective": bad, "defect_rate": round(bad / parts, 4) if parts else None}

    def to_dict(self) -> dict:
        """JSON-ready counts (what the summary and the status page show)."""
        with self._lock:
            y = self.yield_
            return {"parts": self.parts, "ok": self.ok, "defective": self.defective_total,
                    "defective_by_class": dict(sorted(self.defective.items())),
                    "yield": round(y, 4) if y is not None else None, "incomplete": self.incomplete,
                    "last_hour": self._last_hour(), "since": _iso(self.since), "restored": self.restored,
                    "replayed": self.replayed}

    def line(self) -> str:
        """Fields for the periodic stats line."""
        y = self.yield_
        return (f"parts={self.parts} ok={self.ok} defective={self.defective_total} "
                f"yield={'-' if y is None else f'{100 * y:.1f}%'}")

    # ------------------------------------------------------------------------------------ state file
    def _state(self) -> dict:
        with self._lock:  # copies only: the loop's record() waits while this lock is held
            state = {"schema": SCHEMA, "parts": self.parts, "ok": self.ok, "defective": dict(self.defective),
                     "incomplete": self.incomplete, "since": self.since, "last_part_id": self.last_part_id,
                     "journal_floor": self._floor}
            recent = list(self._recent)
        return {**state, "recent_minutes": _by_minute(recent)}

    def _open(self, journal: Path | None, min_interval: float) -> None:
        """Restore (state file, then the journal's later parts) and start the background writer."""
        self._floor = _size(journal)
        self._load()
        if journal is not None and self.restored:
            for record in parts_after(journal, self.last_part_id, self._floor):
                self._count(record.get("verdict", "defect"), str(record.get("label", "")),
                            bool(record.get("complete", True)), record["part_id"],
                            logged_time(record, self._clock()))
                self.replayed += 1
        self._writer = CheckpointWriter(self.path, self._state, min_interval, self._log)
        # Written at once, so that a crash before the first part's write still finds where this
        # count's records begin in the journal (and no earlier run's records are counted twice).
        self._writer.write_now()

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
            recent = [(float(t), bool(d)) for t, d in state.get("recent", [])]  # before 2026-12-07
            recent += _from_minutes(state.get("recent_minutes", []))
            since = float(state.get("since", self.since))
            last_id = int(state.get("last_part_id", parts))  # files before 2026-12-07: ids = counts
            floor = int(state.get("journal_floor", 0))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            self._set_aside(f"malformed ({exc})")
            return
        self.parts, self.ok, self.defective, self.incomplete = parts, ok, defective, incomplete
        self.last_part_id, self._floor = last_id, floor
        self._recent.extend(recent)
        self.since, self.restored = since, True

    def _set_aside(self, why: str) -> None:
        aside = self.path.with_name(self.path.name + ".corrupt")
        self.path.replace(aside)
        if self._log:
            self._log(f"[start] counters {self.path} {why}: moved to {aside}; counting from zero")


def _by_minute(recent) -> list[list]:
    """The last hour's parts as ``[latest time, parts, defective]`` per minute: about 60 rows
    whatever the line's rate (a row per part made the file megabytes on a busy line, rewritten
    every second onto an SD card)."""
    rows: dict[int, list] = {}
    for t, defect in recent:
        row = rows.setdefault(int(t // 60), [t, 0, 0])
        row[0], row[1], row[2] = max(row[0], t), row[1] + 1, row[2] + int(defect)
    return [rows[k] for k in sorted(rows)]


def _from_minutes(rows) -> list[tuple[float, bool]]:
    """Per-part entries again from :func:`_by_minute`'s rows, each at its minute's latest time."""
    out: list[tuple[float, bool]] = []
    for t, parts, bad in rows:
        parts, bad = int(parts), int(bad)
        if not 0 <= bad <= parts:
            raise ValueError(f"recent_minutes row {[t, parts, bad]}: defective must be 0..parts")
        out += [(float(t), True)] * bad + [(float(t), False)] * (parts - bad)
    return out


def _size(path: Path | None) -> int:
    try:
        return os.path.getsize(path) if path is not None else 0
    except OSError:
        return 0


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
