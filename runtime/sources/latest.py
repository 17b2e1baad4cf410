"""The latest-frame reader: a thread that keeps only the newest frame of a live device.

Cameras and streams produce frames at their own rate; if the loop is slower, a queue of old
frames would add latency without bound (``CAP_PROP_BUFFERSIZE`` is not honoured everywhere,
opencv/opencv#13145). The reader overwrites an unread frame (counted as ``dropped_stale``), and
it owns recovery: a device whose read fails is closed and reopened with capped exponential
backoff, and a device that stops delivering for ``stall_timeout`` seconds is abandoned (its
thread may be stuck inside the driver) and a fresh one is opened in a new thread.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from runtime.sources.base import Frame, as_bgr

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReconnectPolicy:
    """How a live source recovers from a lost or hung camera or stream."""

    stall_timeout: float = 5.0  # no frame for this long while streaming = hung driver/stream
    backoff_initial: float = 0.5  # wait before the first reopen attempt
    backoff_max: float = 10.0  # cap: an unplugged camera is retried every 10 s, not every hour
    backoff_factor: float = 2.0

    def delays(self) -> Iterator[float]:
        """Waits before successive reopen attempts: initial, times factor each time, capped."""
        delay = self.backoff_initial
        while True:
            yield delay
            delay = min(delay * self.backoff_factor, self.backoff_max)


class Device(ABC):
    """A live capture device as the reader thread drives it. A new instance per (re)open."""

    @abstractmethod
    def open(self) -> None:
        """Acquire the device; raise (preferably ``SourceError``) with the reason on failure."""

    @abstractmethod
    def grab(self) -> np.ndarray | None:
        """Block until the next frame; ``None`` (or an exception) means the device was lost."""

    def close(self) -> None:
        """Release the device (idempotent)."""


def close_quietly(device: Device) -> None:
    """Close a device that may already be broken; a failing close must not kill the reader."""
    try:
        device.close()
    except Exception as exc:  # noqa: BLE001 - the device is being discarded anyway
        log.debug("closing %r failed: %s", device, exc)


class LatestFrameReader:
    """Reads a live device in a background thread; ``get()`` returns the newest unseen frame."""

    def __init__(self, make_device: Callable[[], Device], policy: ReconnectPolicy | None = None,
                 reconnect: bool = True, name: str = "camera"):
        self._make_device = make_device
        self.policy = policy or ReconnectPolicy()
        self.reconnect = reconnect
        self.name = name
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._gen = 0  # bumped to abandon a thread (stall, stop); a stale thread exits on its own
        self._stopped = False
        self._ended = False
        self._last_frame: float | None = None  # None while not streaming (opening, backing off)
        self._delays = self.policy.delays()
        self._recovering = False  # a loss happened; the first good frame resets the backoff
        self._next_index = 0
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None
        self.counts = {"captured": 0, "dropped_stale": 0, "corrupt_skipped": 0, "disconnects": 0,
                       "reconnects": 0, "open_failures": 0, "stalls": 0}

    # -- consumer side -------------------------------------------------------------------------
    def start(self, device: Device) -> None:
        """Start reading from ``device``, which the caller has already opened."""
        with self._cond:
            self._last_frame = time.monotonic()
            self._launch(device)

    def get(self) -> Frame | None:
        """The newest frame not returned before; blocks until one comes, ``None`` once stopped/ended."""
        poll = min(0.25, self.policy.stall_timeout / 4)
        with self._cond:
            while True:
                if self._stopped:
                    return None
                if self._latest is not None:
                    frame, self._latest = self._latest, None
                    return frame
                if self._ended:
                    return None
                self._check_stall()
                self._cond.wait(poll)

    def stop(self) -> None:
        """Wake every waiter; ``get()`` returns ``None`` and the thread exits after its current read."""
        with self._cond:
            self._stopped = True
            self._gen += 1
            self._cond.notify_all()

    def join(self, timeout: float = 2.0) -> bool:
        """Wait for the current reader thread; False if it is stuck in the driver (it is a daemon)."""
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            return True
        thread.join(timeout)
        return not thread.is_alive()

    @property
    def stats(self) -> dict:
        with self._cond:
            return {**self.counts, "last_error": self.last_error}

    # -- reader thread -------------------------------------------------------------------------
    def _launch(self, device: Device | None) -> None:
        self._gen += 1
        self._thread = threading.Thread(target=self._run, args=(self._gen, device), daemon=True,
                                        name=f"frames-{self.name}-{self._gen}")
        self._thread.start()

    def _alive(self, gen: int) -> bool:
        return gen == self._gen and not self._stopped and not self._ended

    def _run(self, gen: int, device: Device | None) -> None:
        try:
            while self._alive(gen):
                if device is None:
                    device = self._reopen(gen)
                    continue
                raw = self._grab(device)
                if not self._alive(gen):
                    break
                if raw is None:
                    self._lose(device, "read failed (device disconnected or stream ended)")
                    device = None
                    continue
                image = as_bgr(raw)
                if image is None:
                    self._add("corrupt_skipped")
                    continue
                self._publish(gen, image, time.monotonic())
        finally:
            if device is not None:
                close_quietly(device)

    def _grab(self, device: Device) -> np.ndarray | None:
        try:
            return device.grab()
        except Exception as exc:  # noqa: BLE001 - any driver error means the device is lost
            self.last_error = f"read raised {type(exc).__name__}: {exc}"
            return None

    def _publish(self, gen: int, image: np.ndarray, captured: float) -> None:
        with self._cond:
            if gen != self._gen:
                return
            if self._latest is not None:
                self.counts["dropped_stale"] += 1
            self._latest = Frame(image=image, index=self._next_index, captured=captured)
            self._next_index += 1
            self.counts["captured"] += 1
            self._last_frame = captured
            if self._recovering:  # healthy again: the next loss starts from the short delay
                self._delays, self._recovering = self.policy.delays(), False
            self._cond.notify_all()

    def _lose(self, device: Device, reason: str) -> None:
        close_quietly(device)
        with self._cond:
            self.counts["disconnects"] += 1
            self.last_error = reason
            self._last_frame = None
            self._recovering = True
            if not self.reconnect:
                self._ended = True
                self._cond.notify_all()
        log.warning("%s: %s%s", self.name, reason, "; reopening" if self.reconnect else "; stopping")

    def _reopen(self, gen: int) -> Device | None:
        with self._cond:
            delay = next(self._delays)
            self._cond.wait_for(lambda: not self._alive(gen), timeout=delay)
        if not self._alive(gen):
            return None
        device = None
        try:
            device = self._make_device()
            device.open()
        except Exception as exc:  # noqa: BLE001 - reported in stats and retried with backoff
            if device is not None:
                close_quietly(device)
            with self._cond:
                self.counts["open_failures"] += 1
                self.last_error = f"reopen failed: {exc}"
            log.warning("%s: reopen failed (%s); retrying with backoff", self.name, exc)
            return None
        with self._cond:
            self.counts["reconnects"] += 1
            self._last_frame = time.monotonic()
        log.info("%s: reconnected", self.name)
        return device

    def _add(self, key: str) -> None:
        with self._cond:
            self.counts[key] += 1

    def _check_stall(self) -> None:
        """Called with the lock held by a waiting consumer: abandon a device that went silent."""
        if self._last_frame is None or time.monotonic() - self._last_frame <= self.policy.stall_timeout:
            return
        self.counts["stalls"] += 1
        self.counts["disconnects"] += 1
        self.last_error = f"no frame for {self.policy.stall_timeout:g} s (stalled)"
        self._last_frame = None
        self._recovering = True
        log.warning("%s: %s%s", self.name, self.last_error, "; reopening" if self.reconnect else "")
        if self.reconnect:
            self._launch(None)  # the stuck thread closes its own device if its read ever returns
        else:
            self._ended = True
            self._gen += 1
