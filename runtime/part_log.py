"""The part records at the end of an event log, read backwards (the counters' journal).

The production counters are checkpointed about once a second, off the inference thread; the event
log is the journal that fills the gap after a crash: every ``part`` record logged after the
checkpoint's last part id is counted again on restart. Part ids rise by one per part, so reading
stops at the first record at or below that id, and only the log's tail is read however long the
log has grown. A torn last line (``kill -9`` mid-write) and any other unparseable line are skipped.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

_BLOCK = 64 * 1024


def parts_after(log: str | Path, last_id: int, floor: int = 0) -> list[dict]:
    """``part`` records of ``log`` with ids above ``last_id``, oldest first.

    Only bytes from ``floor`` on are read (where this count began; earlier records belong to an
    earlier count). A log shorter than ``floor`` was replaced, and is read from its start.
    """
    try:
        size = os.path.getsize(log)
    except FileNotFoundError:
        return []
    floor = floor if 0 <= floor <= size else 0
    found: list[dict] = []
    with open(log, "rb") as f:
        for line in _lines_backwards(f, size, floor):
            record = _part(line)
            if record is None:
                continue
            if record["part_id"] <= last_id:
                break
            found.append(record)
    return found[::-1]


def logged_time(record: dict, default: float) -> float:
    """The record's wall-clock ``time`` as a Unix time (``default`` when missing or malformed)."""
    try:
        return datetime.fromisoformat(record["time"]).timestamp()
    except (KeyError, TypeError, ValueError):
        return default


def _lines_backwards(f, end: int, floor: int):
    """The lines of ``f`` between ``floor`` and ``end``, last first (bytes, without newline)."""
    tail = b""
    pos = end
    while pos > floor:
        start = max(floor, pos - _BLOCK)
        f.seek(start)
        chunk = f.read(pos - start) + tail
        pos = start
        lines = chunk.split(b"\n")
        tail = lines.pop(0)  # may continue in the block before this one
        yield from reversed(lines)
    if tail:
        yield tail


def _part(line: bytes) -> dict | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if isinstance(record, dict) and record.get("type") == "part" and isinstance(record.get("part_id"), int):
        return record
    return None
