"""At-least-once delivery for remote sinks: follow the durable event log with a durable cursor.

A webhook or MQTT receiver can be down for minutes; the JSONL event log (fsynced as events come) is
the source of truth, so a remote sink does not get events from a bounded in-memory queue that
would drop them: its own thread reads the log line by line after a cursor (a byte offset kept in
a small file beside the log, replaced atomically after each delivery), delivers each event in
order with retry and backoff until the receiver takes it, and only then moves the cursor. A
runtime killed at any point resumes from the cursor on its next start: an event may arrive twice
(the one in flight when it died), never not at all; each event carries a stable ``id`` so the
receiver can drop a repeat. Memory holds one line, whatever the backlog; the backlog lives on
disk, in the log.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from pathlib import Path

from runtime.fsutil import atomic_write_json
from runtime.part_log import logged_time
from runtime.sinks.base import Sink

log = logging.getLogger(__name__)

_POLL_S = 0.05  # how often an idle follower looks for a new line in the log
_MAX_LINE = 1 << 20  # an event line is a few hundred bytes; anything longer is not one of ours


class Backoff:
    """Retry delays: ``initial`` doubling up to ``maximum``; ``reset`` after a success."""

    def __init__(self, initial: float = 0.25, maximum: float = 30.0):
        self.initial, self.maximum = initial, maximum
        self.delay = initial

    def next(self) -> float:
        delay, self.delay = self.delay, min(self.delay * 2, self.maximum)
        return delay

    def reset(self) -> None:
        self.delay = self.initial


def cursor_path(log_path: str | Path, sink_name: str) -> Path:
    """The cursor file of ``sink_name`` following ``log_path`` (one per receiver, beside the log)."""
    log_path = Path(log_path)
    slug = re.sub(r"[^A-Za-z0-9]+", "-", sink_name).strip("-")[:40]
    digest = hashlib.sha1(sink_name.encode("utf-8")).hexdigest()[:8]  # noqa: S324 - a name, not security
    return log_path.with_name(f"{log_path.name}.cursor.{slug}.{digest}.json")


class LogFollower:
    """Delivers every event of the log after the cursor to ``sink``, in order, until closed.

    On the first start for a receiver (no cursor file) delivery begins at the log's current end:
    an event log kept for a year is not replayed into a newly added webhook. Lines that are not
    JSON (the torn tail of a ``kill -9`` mid-write, terminated by the event log on reopen) are
    skipped and counted.
    """

    def __init__(self, sink: Sink, log_path: str | Path, *, name: str | None = None,
                 backoff: Backoff | None = None):
        self.sink, self.log_path = sink, Path(log_path)
        self.name = name or sink.name
        self.cursor_file = cursor_path(self.log_path, self.name)
        self.backoff = backoff or Backoff()
        self._lock = threading.Lock()
        self._scan_lock = threading.Lock()  # one pending-line count at a time (stats vs delivery)
        self._stop = threading.Event()  # wakes the thread from a backoff wait
        self._drain_until: float | None = None  # set by close(): stop at the log's end or this time
        self.offset, self.delivered_total = self._load_cursor()
        self.delivered = self.failed_attempts = self.skipped = 0
        self._head_time: float | None = None  # wall time of the oldest undelivered event
        self._ahead, self._scanned_to = 0, self.offset  # pending-line count, kept incrementally
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"follow-{self.name}")
        self._thread.start()

    # -- the cursor -------------------------------------------------------------------------
    def _load_cursor(self) -> tuple[int, int]:
        size = self.log_path.stat().st_size if self.log_path.exists() else 0
        try:
            saved = json.loads(self.cursor_file.read_text())
            offset, total = int(saved["offset"]), int(saved.get("delivered_total", 0))
        except FileNotFoundError:
            log.info("%s: new receiver, delivering the events logged from now on", self.name)
            self._save_cursor(size, 0)
            return size, 0
        except (ValueError, KeyError, TypeError) as exc:
            # A cursor is replaced atomically, so this is damage from outside: redeliver everything
            # (receivers drop repeats by id) rather than guess and lose events.
            log.error("%s: cursor %s unreadable (%s): redelivering the whole log", self.name,
                      self.cursor_file, exc)
            return 0, 0
        if offset > size:
            log.warning("%s: event log %s is shorter than its cursor (replaced or truncated?): "
                        "delivering it from the start", self.name, self.log_path)
            return 0, total
        return offset, total

    def _save_cursor(self, offset: int, total: int) -> None:
        atomic_write_json(self.cursor_file, {"sink": self.name, "log": str(self.log_path), "offset": offset,
                                             "delivered_total": total})

    # -- the delivery thread ----------------------------------------------------------------
    def _run(self) -> None:
        try:
            with _LogReader(self.log_path) as reader:
                while not self._stop.is_set():
                    line, end = reader.line_at(self.offset)
                    if line is None:
                        if self._drain_until is not None:
                            break  # everything written has been delivered
                        self._stop.wait(_POLL_S)
                        continue
                    self._deliver_line(line, end)
        finally:
            try:
                self.sink.close()
            except Exception as exc:  # noqa: BLE001 - shutdown goes on for the other sinks
                log.error("closing sink %s failed: %s", self.name, exc)

    def _deliver_line(self, line: bytes, end: int) -> None:
        try:
            event = json.loads(line)
            if not isinstance(event, dict):
                raise ValueError("not an object")
        except ValueError:
            log.warning("%s: skipping a line of %s that is not an event (torn by a crash?)", self.name,
                        self.log_path)
            self._advance(end, skipped=True)
            return
        with self._lock:
            self._head_time = logged_time(event, time.time())
        while not self._stop.is_set():
            if self._past_deadline():
                self._stop.set()
                return
            try:
                self.sink.handle(event, None)
            except Exception as exc:  # noqa: BLE001 - any failure is retried: the event must get there
                self._failed(event, exc)
                continue
            self._advance(end)
            return

    def _failed(self, event: dict, exc: Exception) -> None:
        with self._lock:
            self.failed_attempts += 1
            n = self.failed_attempts
        delay = self.backoff.next()
        if n == 1 or delay >= self.backoff.maximum or n % 20 == 0:
            log.warning("%s: event %s not delivered (%s); retrying in %.1f s, events wait in %s", self.name,
                        event.get("id", "?"), exc, delay, self.log_path)
        self._stop.wait(delay if self._drain_until is None else min(delay, self._time_left()))

    def _advance(self, end: int, skipped: bool = False) -> None:
        self._count_new_lines()  # the line taken off must have been counted onto the backlog
        total = self.delivered_total + (0 if skipped else 1)
        self._save_cursor(end, total)  # durable before counting: a crash now redelivers nothing twice
        with self._lock:
            self.offset, self.delivered_total = end, total
            self._head_time = None
            self._ahead = max(0, self._ahead - 1)
            self.backoff.reset()
            if skipped:
                self.skipped += 1
            else:
                self.delivered += 1

    def _past_deadline(self) -> bool:
        return self._drain_until is not None and time.monotonic() >= self._drain_until

    def _time_left(self) -> float:
        return max(0.0, (self._drain_until or 0.0) - time.monotonic())

    # -- what the dispatcher asks -----------------------------------------------------------
    def close(self, timeout: float) -> None:
        """Deliver what is in the log for up to ``timeout`` seconds, then stop; the rest stays
        pending in the log and goes out on the next start."""
        self._drain_until = time.monotonic() + timeout
        self._thread.join(timeout + 0.5)
        if self._thread.is_alive():
            self._stop.set()
            self.sink.interrupt()
            self._thread.join(2.0)
        pending = self.stats()["pending"]
        if pending:
            log.warning("%s: %d event(s) not delivered yet; they stay in %s and are delivered on the next "
                        "start", self.name, pending, self.log_path)

    def stats(self) -> dict:
        """delivered (this run), pending (logged, not yet taken by the receiver), oldest pending age."""
        self._count_new_lines()
        with self._lock:
            age = None if self._head_time is None else max(0.0, time.time() - self._head_time)
            return {"delivered": self.delivered, "pending": self._ahead,
                    "oldest_pending_s": None if age is None or not self._ahead else round(age, 1),
                    "failed_attempts": self.failed_attempts, "skipped": self.skipped}

    def _count_new_lines(self) -> None:
        # Counting is incremental (only bytes not seen before), so a long backlog costs once.
        with self._scan_lock:
            if not self.log_path.exists():
                return
            with open(self.log_path, "rb") as f:
                start = self._scanned_to
                f.seek(start)
                added = 0
                while block := f.read(1 << 20):
                    added += block.count(b"\n")
                    start += len(block)
            with self._lock:
                self._ahead += added
                self._scanned_to = start


class _LogReader:
    """Reads complete lines of a growing file by offset (a line without its newline is not yet one)."""

    def __init__(self, path: Path):
        self.path = path
        self._file = None

    def __enter__(self) -> _LogReader:
        return self

    def __exit__(self, *exc) -> None:
        if self._file is not None:
            self._file.close()

    def line_at(self, offset: int) -> tuple[bytes | None, int]:
        if self._file is None:
            if not self.path.exists():
                return None, offset
            self._file = open(self.path, "rb")  # noqa: SIM115 - kept open while following
        self._file.seek(offset)
        line = self._file.readline(_MAX_LINE)
        if not line.endswith(b"\n") and len(line) < _MAX_LINE:
            return None, offset  # still being written, or nothing new
        return line.rstrip(b"\r\n"), offset + len(line)


