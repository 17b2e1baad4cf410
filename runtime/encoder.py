"""A belt encoder: the belt's travel counted in pulses, with the time of each recent pulse.

A rotary encoder on the belt gives a fixed number of pulses per millimetre, so a count of pulses is
a distance whatever the belt's speed (or if it stops). The reject output (:mod:`runtime.reject`)
times its gate by it: a part is due when the belt has moved ``COUNT`` pulses since the part's
reference time. That reference (a trigger, or a first frame's capture) is usually earlier than the
verdict, so the encoder keeps the times of its recent pulses and can say what the count *was* at a
past moment (:meth:`BeltEncoder.count_at`).

One channel is counted (one pulse per activation); direction is not tracked, so a belt run
backwards still counts forwards. Each pulse is a Python callback through gpiozero: choose an
encoder resolution that keeps the pulse rate in the hundreds per second, not tens of thousands.
"""

from __future__ import annotations

import threading
import time
from collections import deque

HISTORY = 65536  # pulse times kept: a minute at 1 kHz, far longer than a camera-to-verdict latency


class BeltEncoder:
    """Counts pulses (:meth:`pulse`, safe from any thread) and notifies ``changed`` on each one.

    ``changed`` is a :class:`threading.Condition`: a waiter (the reject scheduler) sleeps on it
    until the belt moves, instead of polling the count.
    """

    name = "encoder"

    def __init__(self, history: int = HISTORY, clock=time.monotonic):
        if history < 1:
            raise ValueError(f"encoder history must keep at least 1 pulse time, got {history}")
        self.clock = clock
        self.count = 0
        self._times: deque[float] = deque(maxlen=history)  # monotonic times of the latest pulses
        self.changed = threading.Condition()

    def pulse(self) -> None:
        """The belt moved one pulse, now."""
        with self.changed:
            # The time is read under the lock, so the history stays in time order whoever calls.
            self._times.append(self.clock())
            self.count += 1
            self.changed.notify_all()

    def count_at(self, when: float) -> int:
        """The count at the monotonic time ``when`` (pulses at or before it).

        A time older than the whole history gives the count before the oldest pulse kept: a gate
        timed from it fires late, never early (the history holds :data:`HISTORY` pulses).
        """
        with self.changed:
            # Scan from the newest: a reference is recent, so only the last few pulses are read.
            after = 0
            for t in reversed(self._times):
                if t <= when:
                    break
                after += 1
            return self.count - after

    def time_of(self, n: int) -> float | None:
        """When the count reached ``n``; None if it has not yet (the oldest time kept if ``n`` is older)."""
        with self.changed:
            if n > self.count:
                return None
            back = self.count - n
            if not self._times:
                return float("-inf")  # n <= 0 before any pulse: due since the start
            return self._times[0] if back >= len(self._times) else self._times[-back - 1]

    def close(self) -> None:
        """Release the input."""


class GpioEncoder(BeltEncoder):
    """An encoder channel on a GPIO input through gpiozero: each activation is a pulse."""

    def __init__(self, pin: int | str, active_low: bool = False, history: int = HISTORY):
        super().__init__(history)
        from runtime.sinks.gpio import gpiozero_device

        self.name = f"encoder:{pin}"
        # No debounce, unlike a photo-eye: an encoder's edges are clean and a bounce time would cap
        # the pulse rate. Open-collector (NPN) outputs pull low: they need the pull-up.
        self.device = gpiozero_device("DigitalInputDevice", pin, pull_up=active_low, bounce_time=None)
        self.device.when_activated = lambda *_: self.pulse()

    def close(self) -> None:
        self.device.close()
