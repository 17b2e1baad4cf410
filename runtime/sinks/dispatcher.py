"""Fan events out to sinks without ever blocking the inference loop.

Each sink gets its own bounded queue and worker thread: a webhook retrying against a dead
server, or a slow SD card under the snapshot sink, only fills *its* queue. A full queue drops
the event for that sink and counts it; ``emit`` itself never waits. That is acceptable for local
sinks (stdout, snapshots, a GPIO pulse that is moot a minute later); remote receivers (webhook,
MQTT) are *followers* of the durable event log instead (:mod:`runtime.sinks.follower`), which
lose nothing. Every event gets a stable ``id`` here, the one place all events pass.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field

import numpy as np

from runtime.sinks.base import Sink

log = logging.getLogger(__name__)

_POLL_S = 0.1  # how often an idle worker checks for shutdown
# Queued events handed at once to a group-commit sink (the event log: one fsync per batch).
_BATCH_MAX = 64


@dataclass
class _Lane:
    sink: Sink
    name: str
    queue: queue.Queue
    abandon: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    delivered: int = 0
    dropped: int = 0
    failed: int = 0


class SinkDispatcher:
    """``emit(event, frame)`` to every sink; ``close()`` drains and closes them (call on SIGTERM)."""

    def __init__(self, sinks: list[Sink], queue_size: int = 256, followers: list | None = None):
        self._lock = threading.Lock()
        self._followers = list(followers or [])  # LogFollower: remote sinks reading the event log
        # Unique across restarts (a new prefix per run), so a receiver can drop repeats by id.
        self._run_id, self._seq = uuid.uuid4().hex[:12], 0
        self._closing = threading.Event()
        self._closed = False
        self._lanes = [_Lane(sink, name, queue.Queue(maxsize=queue_size))
                       for sink, name in zip(sinks, _unique_names(sinks), strict=True)]
        for lane in self._lanes:
            lane.thread = threading.Thread(target=self._work, args=(lane,), daemon=True,
                                           name=f"sink-{lane.name}")
            lane.thread.start()

    @property
    def sinks(self) -> list[Sink]:
        return [lane.sink for lane in self._lanes] + [f.sink for f in self._followers]

    def emit(self, event: dict, frame: np.ndarray | None = None) -> None:
        """Queue ``event`` (and the frame, copied once) for every sink; never blocks.

        The event gets an ``id`` (``<run>-<seq>``) unless it has one.
        """
        if self._closed:
            self._count_all("dropped")
            return
        if "id" not in event:
            self._seq += 1
            event = {"id": f"{self._run_id}-{self._seq:06d}", **event}
        # The loop reuses and draws on its frame buffers; sinks get a private, shared copy.
        snapshot = None if frame is None else frame.copy()
        for lane in self._lanes:
            try:
                lane.queue.put_nowait((dict(event), snapshot))
            except queue.Full:
                with self._lock:
                    lane.dropped += 1
                    n = lane.dropped
                if n == 1 or n % 100 == 0:
                    log.warning("sink %s is not keeping up: queue full, %d event(s) dropped", lane.name, n)

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued, then close every sink; sinks still busy after ``timeout`` seconds
        are interrupted and their remaining events counted as dropped."""
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        deadline = time.monotonic() + timeout
        for lane in self._lanes:
            lane.thread.join(max(0.0, deadline - time.monotonic()))
        for lane in self._lanes:
            if lane.thread.is_alive():
                log.warning("sink %s still busy after %.1f s at shutdown: interrupting it",
                            lane.name, timeout)
                lane.abandon.set()
                lane.sink.interrupt()
        for lane in self._lanes:
            lane.thread.join(1.0)
            if lane.thread.is_alive():
                log.error("sink %s did not stop; its queued events are lost", lane.name)
        # Followers last: the event log is complete now, and what they cannot deliver in the time
        # left stays in it for the next start.
        for follower in self._followers:
            follower.close(max(0.0, deadline - time.monotonic()))

    @property
    def stats(self) -> dict:
        """Per sink: delivered, dropped (queue full or abandoned at shutdown), failed, pending; for
        the log followers: delivered, pending, oldest pending age, failed attempts (nothing is dropped)."""
        with self._lock:
            out = {lane.name: {"delivered": lane.delivered, "dropped": lane.dropped, "failed": lane.failed,
                               "pending": lane.queue.qsize()} for lane in self._lanes}
        out.update({f.name: f.stats() for f in self._followers})
        return out

    def _work(self, lane: _Lane) -> None:
        while not lane.abandon.is_set():
            try:
                batch = [lane.queue.get(timeout=_POLL_S)]
            except queue.Empty:
                if self._closing.is_set():
                    break
                continue
            while len(batch) < (_BATCH_MAX if lane.sink.group_commit else 1):
                try:
                    batch.append(lane.queue.get_nowait())
                except queue.Empty:
                    break
            self._deliver(lane, batch)
        self._drop_remaining(lane)
        try:
            lane.sink.close()
        except Exception as exc:  # noqa: BLE001 - one sink's close must not prevent the others'
            log.error("closing sink %s failed: %s", lane.name, exc)

    def _deliver(self, lane: _Lane, batch: list[tuple[dict, np.ndarray | None]]) -> None:
        try:
            outcomes = lane.sink.handle_batch(batch)
        except Exception as exc:  # noqa: BLE001 - counted and logged; the loop keeps running
            outcomes = [exc] * len(batch)
        for (event, _frame), exc in zip(batch, outcomes, strict=True):
            if exc is not None:
                log.warning("sink %s failed on %s event: %s", lane.name, event.get("type", "?"), exc)
        failed = sum(exc is not None for exc in outcomes)
        with self._lock:
            lane.failed += failed
            lane.delivered += len(batch) - failed

    def _drop_remaining(self, lane: _Lane) -> None:
        n = 0
        while True:
            try:
                lane.queue.get_nowait()
            except queue.Empty:
                break
            n += 1
        if n:
            with self._lock:
                lane.dropped += n

    def _count_all(self, key: str) -> None:
        with self._lock:
            for lane in self._lanes:
                setattr(lane, key, getattr(lane, key) + 1)

    def __enter__(self) -> SinkDispatcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _unique_names(sinks: list[Sink]) -> list[str]:
    seen: dict[str, int] = {}
    names = []
    for sink in sinks:
        seen[sink.name] = seen.get(sink.name, 0) + 1
        names.append(sink.name if seen[sink.name] == 1 else f"{sink.name}#{seen[sink.name]}")
    return names
