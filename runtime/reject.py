"""The reject output of line mode: one pulse per defective part, timed to the reject gate.

The camera sees a part some distance before the reject gate; the gate must fire when the part
reaches it, ``delay`` after the part's reference time (its trigger, or the capture of its first
frame in pitch and presence modes) — not when the verdict happens to be ready. So the frame loop
hands each defective part to :class:`RejectScheduler` directly (not through the sinks' queues,
which may drop), and one thread of its own drives the output at the due times: two defective parts
in a row give two pulses, whatever the sinks are doing.

A verdict that arrives after its part's due time is pulsed at once and counted as ``late`` (the
delay is shorter than the camera-to-decision latency: move the camera upstream or lengthen the
delay). Pulses closer together than the pulse width are counted as ``overlapped`` and the later
one starts when the earlier one ends (a gate cannot fire twice at once).

``--reject gpio:PIN[:pulse_ms]`` with ``--reject-delay MS``.
"""

from __future__ import annotations

import heapq
import threading
import time

from runtime.errors import EdgeFlagError


class RejectError(EdgeFlagError):
    """A reject spec is malformed."""


class RejectScheduler:
    """Pulses ``device`` (anything with ``on()``/``off()``, e.g. a gpiozero output) at due times."""

    def __init__(self, device, delay_s: float = 0.0, pulse_s: float = 0.2, clock=time.monotonic,
                 name: str = "reject"):
        if delay_s < 0 or pulse_s <= 0:
            raise RejectError(f"reject: need delay >= 0 and pulse width > 0, got {delay_s} s, {pulse_s} s")
        self.device, self.delay_s, self.pulse_s, self.clock, self.name = device, delay_s, pulse_s, clock, name
        self._due: list[tuple[float, int]] = []  # (due time, part id), a heap
        self._wake = threading.Condition()
        self._closing = False
        self.stats = {"scheduled": 0, "pulsed": 0, "late": 0, "overlapped": 0}
        self.pulses: list[tuple[int, float, float]] = []  # (part id, on, off) of the last 1000 pulses
        self._thread = threading.Thread(target=self._run, name="reject", daemon=True)
        self._thread.start()

    def schedule(self, part_id: int, reference: float) -> float:
        """A defective part seen at ``reference`` (monotonic): pulse at ``reference + delay``."""
        due = reference + self.delay_s
        with self._wake:
            heapq.heappush(self._due, (due, part_id))
            self.stats["scheduled"] += 1
            self._wake.notify()
        return due

    def _run(self) -> None:
        free_at = 0.0  # when the previous pulse ends
        while True:
            with self._wake:
                while True:
                    if not self._due:
                        if self._closing:
                            return
                        self._wake.wait()
                        continue
                    wait = self._due[0][0] - self.clock()
                    if wait <= 0:
                        break
                    self._wake.wait(wait)
                due, part_id = heapq.heappop(self._due)
            free_at = self._pulse(part_id, due, free_at)

    def _pulse(self, part_id: int, due: float, free_at: float) -> float:
        now = self.clock()
        if now > due + 0.005:  # 5 ms: scheduling jitter is not lateness
            self.stats["late"] += 1
        if now < free_at:
            self.stats["overlapped"] += 1
            time.sleep(free_at - now)
        on = self.clock()
        self.device.on()
        time.sleep(self.pulse_s)
        self.device.off()
        off = self.clock()
        self.stats["pulsed"] += 1
        self.pulses = [*self.pulses[-999:], (part_id, on, off)]
        return off

    def close(self) -> None:
        """Fire what is still scheduled, each at its time (parts already past the camera must still
        be rejected), then release the output."""
        with self._wake:
            self._closing = True
            last = max((due for due, _ in self._due), default=self.clock())
            pending = len(self._due)
            self._wake.notify()
        self._thread.join(max(0.0, last - self.clock()) + (pending + 1) * self.pulse_s + 1.0)
        close = getattr(self.device, "close", None)
        if close:
            close()


def open_reject(spec: str, delay_ms: float = 0.0) -> RejectScheduler:
    """``gpio:PIN[:pulse_ms]`` -> a scheduler driving that output through gpiozero."""
    kind, _, arg = spec.partition(":")
    pin, _, pulse = arg.partition(":")
    if kind != "gpio" or not pin or (pulse and not pulse.isdigit()):
        raise RejectError(f"--reject {spec!r}: expected gpio:PIN[:pulse_ms], e.g. --reject gpio:17:150")
    from runtime.sinks.gpio import gpiozero_device

    device = gpiozero_device("DigitalOutputDevice", int(pin) if pin.isdigit() else pin, initial_value=False)
    return RejectScheduler(device, delay_ms / 1000.0, int(pulse or 200) / 1000.0, name=f"gpio:{pin}")
