"""Production counters: kept across restarts, written off the inference thread, the event log as
their journal after a crash (nothing counted twice, no part id reused)."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from runtime.counters import ProductionCounters
from runtime.part_log import parts_after

PARTS = [("ok", "ok"), ("defect", "crack"), ("defect", "pit"), ("ok", "ok"), ("ok", "ok")]


def _log_parts(log, ids, verdict="ok", label="ok", time="2026-12-07T10:00:00.000+00:00") -> None:
    with open(log, "a") as f:
        for i in ids:
            f.write(json.dumps({"type": "part", "part_id": i, "verdict": verdict, "label": label,
                                "complete": True, "time": time}) + "\n")


def test_counters_survive_a_restart_and_a_corrupt_state_file_is_set_aside(tmp_path):
    path = tmp_path / "line.counters.json"
    first = ProductionCounters(path)
    for verdict, label in PARTS:
        first.record(verdict, label)
    first.close()  # a clean stop leaves the file current
    again = ProductionCounters(path)
    again.close()
    assert again.restored and again.to_dict()["defective_by_class"] == {"crack": 1, "pit": 1}
    assert (again.parts, again.ok, again.to_dict()["yield"], again.last_hour()["parts"]) == (5, 3, 0.6, 5)
    assert again.last_part_id == 5
    path.write_text('{"schema": "edgeflag.counters/1", "parts": 9, "ok": 1, "defective": {}}')
    logs: list[str] = []
    fresh = ProductionCounters(path, log=logs.append)
    fresh.close()
    assert fresh.parts == 0 and not fresh.restored and "do not add up" in logs[0]
    assert (tmp_path / "line.counters.json.corrupt").exists()


def test_last_hour_rates_drop_parts_older_than_an_hour():
    t = [0.0]
    counters = ProductionCounters(clock=lambda: t[0])
    counters.record("defect", "crack")
    t[0] = 1800.0
    counters.record("ok", "ok")
    t[0] = 3700.0
    assert counters.last_hour() == {"parts": 1, "defective": 0, "defect_rate": 0.0}
    assert counters.parts == 2


def test_the_state_file_keeps_the_last_hour_per_minute_whatever_the_rate(tmp_path):
    """A busy line (10,000 parts in 50 minutes) keeps a state file of a few KB, rewritten each second
    onto an SD card, and the last-hour figures survive a restart to the minute."""
    path, t = tmp_path / "events.counters.json", [0.0]
    busy = ProductionCounters(path, clock=lambda: t[0])
    for i in range(10_000):
        t[0] = 0.3 * i
        busy.record("defect" if i % 10 == 0 else "ok", "crack" if i % 10 == 0 else "ok")
    busy.close()
    assert path.stat().st_size < 8_000, path.stat().st_size
    t[0] = 3000.0
    again = ProductionCounters(path, clock=lambda: t[0])
    again.close()
    assert again.last_hour() == busy.last_hour() == {"parts": 10_000, "defective": 1_000, "defect_rate": 0.1}
    t[0] = 3600.0 + 600.0  # an hour after minute 10: the first ten minutes' parts have left the hour
    assert again.last_hour()["parts"] == busy.last_hour()["parts"] == 10_000 - 2_000


def test_a_restart_after_a_crash_counts_the_logged_parts_the_state_file_missed(tmp_path):
    log, path = tmp_path / "events.jsonl", tmp_path / "events.counters.json"
    _log_parts(log, range(1, 41))  # an earlier count's parts (its state file was deleted since)
    first = ProductionCounters(path, journal=log)  # a new count: begins at the log's current end
    for i in (1, 2):
        first.record("ok", "ok", part_id=i)
    first.close()  # the state file holds parts 1-2 ...
    _log_parts(log, [1, 2, 3])
    _log_parts(log, [4], verdict="defect", label="crack")
    with open(log, "a") as f:  # ... the log 1-4 and a line torn by the kill
        f.write('{"type": "part", "part_id": 5, "verd')
    again = ProductionCounters(path, journal=log)
    again.close()
    assert (again.parts, again.ok, dict(again.defective), again.replayed) == (4, 3, {"crack": 1}, 2)
    from runtime.status.server import _part_rows

    since = dict(_part_rows(again.to_dict()))["counting since"]  # the status page says so
    assert since.startswith(again.to_dict()["since"]) and "2 part(s) recounted from the event log" in since
    assert again.last_part_id == 4  # the next part is 5: no logged id is reused
    assert json.loads(path.read_text())["parts"] == 4  # the replayed parts are checkpointed at once
    third = ProductionCounters(path, journal=log)  # and never counted twice
    third.close()
    assert (third.parts, third.replayed) == (4, 0)


def test_state_files_without_a_last_part_id_take_it_from_the_count(tmp_path):
    log, path = tmp_path / "events.jsonl", tmp_path / "events.counters.json"
    _log_parts(log, range(1, 8))
    path.write_text(json.dumps({"schema": "edgeflag.counters/1", "parts": 5, "ok": 5, "defective": {}}))
    counters = ProductionCounters(path, journal=log)
    counters.close()
    assert (counters.parts, counters.last_part_id, counters.replayed) == (7, 7, 2)


def test_reading_the_journal_backwards_stops_at_the_last_counted_part(tmp_path):
    log = tmp_path / "events.jsonl"
    _log_parts(log, range(1, 3001))  # about 300 KB: several blocks
    with open(log, "a") as f:
        f.write('{"type": "defect_start", "label": "crack"}\nnot json\n')
    assert [r["part_id"] for r in parts_after(log, 2990)] == list(range(2991, 3001))
    assert len(parts_after(log, 0)) == 3000
    assert parts_after(log, 0, floor=os.path.getsize(log)) == []
    assert parts_after(tmp_path / "missing.jsonl", 0) == []


def test_recording_a_part_never_waits_on_the_disk(tmp_path, monkeypatch):
    """A disk that takes its time with fsync (an SD card) must not stall the inference loop: the
    parts are recorded while the state file's fsync is held, and the writes are coalesced."""
    import runtime.fsutil as fsutil

    path = tmp_path / "events.counters.json"
    counters = ProductionCounters(path, min_interval=0.0)  # its first write happens here, unblocked
    release, entered = threading.Event(), threading.Event()
    real_fsync = os.fsync

    def held_fsync(fd):
        entered.set()
        assert release.wait(60), "fsync never released"
        real_fsync(fd)

    monkeypatch.setattr(fsutil.os, "fsync", held_fsync)
    counters.record("ok", "ok")
    assert entered.wait(30), "the writer never started a write"
    recorder = threading.Thread(target=lambda: [counters.record(v, label) for v, label in PARTS * 20])
    recorder.start()
    recorder.join(30)
    done_while_held = not recorder.is_alive()
    release.set()
    recorder.join()
    counters.close()
    assert done_while_held, "record() waited for the state file's fsync"
    state = json.loads(path.read_text())
    assert (state["parts"], state["last_part_id"]) == (101, 101)
    assert counters._writer.writes <= 4  # 101 parts: the first write, the held one, the rest, close


def test_a_state_file_that_cannot_be_written_is_reported_once_and_retried(tmp_path, monkeypatch):
    import runtime.fsutil as fsutil

    path, logs = tmp_path / "events.counters.json", []
    counters = ProductionCounters(path, log=logs.append, min_interval=0.0)
    real = fsutil.atomic_write_bytes
    failing = [True]

    def flaky(p, data):
        if failing[0]:
            raise OSError(28, "No space left on device")
        real(p, data)

    monkeypatch.setattr(fsutil, "atomic_write_bytes", flaky)
    for verdict, label in PARTS:
        counters.record(verdict, label)
    deadline = time.monotonic() + 30
    while not any("cannot write" in line for line in logs) and time.monotonic() < deadline:
        time.sleep(0.01)  # the writer retries meanwhile (min_interval 0): still one warning
    time.sleep(0.05)
    failing[0] = False
    counters.close()
    warnings = [line for line in logs if "cannot write" in line]
    assert len(warnings) == 1 and "No space left" in warnings[0] and "Fix:" in warnings[0]
    assert json.loads(path.read_text())["parts"] == 5


@pytest.mark.parametrize("journal", [False, True])
def test_counters_in_memory_need_no_file(tmp_path, journal):
    counters = ProductionCounters(journal=tmp_path / "e.jsonl" if journal else None)
    counters.record("ok", "ok")
    counters.close()
    assert counters.parts == 1 and not list(tmp_path.iterdir())
