"""The reject output of line mode: one pulse per defective part, timed to the reject gate.

The camera sees a part some distance before the reject gate; the gate must fire when the part
reaches it, not when the verdict happens to be ready. How far the part still has to go is measured
from its reference time (its trigger, or the capture of its first frame in pitch and presence
modes), in one of two ways (``--reject-delay``):

* ``MS`` — a time: the part is due ``MS`` milliseconds after its reference time (a belt at a
  constant speed);
* ``encoder:PIN:COUNT[:low]`` — a distance: the part is due when a belt encoder on GPIO ``PIN``
  (:mod:`runtime.encoder`) has counted ``COUNT`` pulses since its reference time, so a belt that
  slows down or stops delays the pulse with it.

The frame loop hands each defective part to :class:`RejectScheduler` directly (not through the
sinks' queues, which may drop), and one thread of its own drives the output when each part comes
due: two defective parts in a row give two pulses, whatever the sinks are doing.

A verdict that arrives after its part's due point is pulsed at once and counted as ``late`` (the
delay is shorter than the camera-to-decision latency: move the camera upstream or lengthen the
delay). Pulses closer together than the pulse width are counted as ``overlapped`` and the later
one starts when the earlier one ends (a gate cannot fire twice at once).
"""

from __future__ import annotations

import heapq
import math
import threading
import time
from dataclasses import dataclass

from runtime.encoder import BeltEncoder
from runtime.errors import EdgeFlagError

DELAY_FORMS = "MS (milliseconds, a number >= 0) or encoder:PIN:COUNT[:low] (COUNT >= 1 encoder pulses)"
JITTER_S = 0.005  # a pulse this much after its due point is scheduling jitter, not lateness


class RejectError(EdgeFlagError):
    """A reject spec is malformed."""


@dataclass(frozen=True)
class EncoderSpec:
    """``encoder:PIN:COUNT[:low]``: due ``count`` pulses of the encoder on ``pin`` after the reference."""

    pin: int | str
    count: int
    active_low: bool = False


def parse_delay(value: float | int | str) -> float | EncoderSpec:
    """``--reject-delay``: milliseconds (a number, or a string of one) or an :class:`EncoderSpec`."""
    text = str(value).strip()
    if isinstance(value, str) and text.startswith("encoder:"):
        return _parse_encoder(text)
    try:
        ms = float(text) if not isinstance(value, bool) else math.nan
    except ValueError:
        ms = math.nan
    if not (math.isfinite(ms) and ms >= 0):
        raise RejectError(f"reject_delay {value!r}: expected {DELAY_FORMS}, e.g. --reject-delay 800, or "
                          "--reject-delay encoder:22:400 for 400 pulses of a belt encoder on GPIO22")
    return ms


def _parse_encoder(text: str) -> EncoderSpec:
    fields = text.split(":")[1:]  # PIN, COUNT[, low|high]
    pin, count, level = (fields + ["", "", ""])[:3]
    well_formed = len(fields) in (2, 3) and pin and count.isdecimal() and level in ("", "low", "high")
    if not well_formed or int(count) < 1:
        raise RejectError(f"reject_delay {text!r}: expected encoder:PIN:COUNT[:low] with COUNT >= 1 pulses "
                          "from the camera's view to the gate, e.g. --reject-delay encoder:22:400 (add "
                          ":low for an open-collector encoder that pulls the line low)")
    return EncoderSpec(int(pin) if pin.isdigit() else pin, int(count), level == "low")


def describe_delay(value: float | int | str) -> str:
    """The delay in words, for the start line: ``800 ms`` or ``400 pulses of encoder:22``."""
    delay = parse_delay(value)
    if isinstance(delay, EncoderSpec):
        return f"{delay.count} pulses of encoder:{delay.pin}"
    return f"{delay:g} ms"


class TimeDelay:
    """A part is due ``delay_s`` seconds after its reference time."""

    close_wait_s: float | None = None  # time always comes: close() fires every owed part at its time

    def __init__(self, delay_s: float, clock=time.monotonic):
        self.delay_s, self.clock = delay_s, clock
        self.condition = threading.Condition()

    def target(self, reference: float) -> float:
        """The heap key of a part seen at ``reference``: its due time."""
        return reference + self.delay_s

    def due_time(self, target: float) -> float | None:
        """The monotonic time at which ``target`` is (or was) reached; None while unknown."""
        return target

    def until(self, target: float) -> dict:
        """How far the part is from the gate, for its event record."""
        return {"reject_in_ms": round((target - self.clock()) * 1e3, 1)}

    def readings(self) -> dict:
        """Live values for the scheduler's stats."""
        return {}

    def close(self) -> None:
        """Release what the delay holds (nothing)."""


class EncoderDelay:
    """A part is due when ``encoder`` has counted ``count`` pulses since its reference time."""

    def __init__(self, encoder: BeltEncoder, count: int, close_wait_s: float = 5.0):
        if count < 1 or close_wait_s < 0:
            raise RejectError(f"encoder delay: need count >= 1 pulse and close_wait_s >= 0, got {count}, "
                              f"{close_wait_s}; e.g. --reject-delay encoder:22:400")
        self.encoder, self.count = encoder, count
        # A stopped belt never brings owed parts to the gate: close() waits this long, no longer.
        self.close_wait_s = close_wait_s
        self.condition = encoder.changed  # notified on each pulse: the scheduler wakes as the belt moves

    def target(self, reference: float) -> int:
        """The heap key of a part seen at ``reference``: the encoder count at which it is due."""
        return self.encoder.count_at(reference) + self.count

    def due_time(self, target: int) -> float | None:
        """When the count reached ``target``; None while the belt has not moved that far."""
        return self.encoder.time_of(target)

    def until(self, target: int) -> dict:
        """Pulses still to go (negative: the part is already past the gate), for its event record."""
        return {"reject_in_pulses": target - self.encoder.count}

    def readings(self) -> dict:
        """The encoder's count, for the scheduler's stats."""
        return {"encoder_count": self.encoder.count}

    def close(self) -> None:
        """Release the encoder input."""
        self.encoder.close()


class RejectScheduler:
    """Pulses ``device`` (anything with ``on()``/``off()``, e.g. a gpiozero output) as parts come due.

    When a part is due is the ``delay``'s business (:class:`TimeDelay` or :class:`EncoderDelay`);
    ``delay_s`` is the shorthand for a :class:`TimeDelay`. One thread waits on the delay's
    condition, woken by each new part and, for an encoder, by each pulse.
    """

    def __init__(self, device, delay_s: float = 0.0, pulse_s: float = 0.2, clock=time.monotonic,
                 name: str = "reject", delay: TimeDelay | EncoderDelay | None = None):
        if delay_s < 0 or pulse_s <= 0:
            raise RejectError(f"reject: need delay >= 0 and pulse width > 0, got {delay_s} s, {pulse_s} s")
        if delay is not None and delay_s:
            raise RejectError(f"reject: got both delay_s={delay_s} and delay={delay!r}; give one of them")
        self.device, self.pulse_s, self.clock, self.name = device, pulse_s, clock, name
        self.delay = delay or TimeDelay(delay_s, clock)
        self._due: list[tuple[float, int]] = []  # (target: due time or encoder count, part id), a heap
        self._wake = self.delay.condition
        self._closing = False
        self._give_up_at: float | None = None  # at close, for a delay that may never come
        self._counts = {"scheduled": 0, "pulsed": 0, "late": 0, "overlapped": 0}
        if self.delay.close_wait_s is not None:
            self._counts["unfired"] = 0  # owed at close, never due within close_wait_s (belt stopped)
        self.pulses: list[tuple[int, float, float]] = []  # (part id, on, off) of the last 1000 pulses
        self._thread = threading.Thread(target=self._run, name="reject", daemon=True)
        self._thread.start()

    @property
    def stats(self) -> dict:
        """Counts (scheduled, pulsed, late, overlapped[, unfired]) and, for an encoder, its count."""
        return {**self._counts, **self.delay.readings()}

    def schedule(self, part_id: int, reference: float) -> float:
        """A defective part seen at ``reference`` (monotonic): pulse it when due. Returns its target
        (the due time; for an encoder delay, the count at which it is due)."""
        with self._wake:
            target = self.delay.target(reference)
            heapq.heappush(self._due, (target, part_id))
            self._counts["scheduled"] += 1
            self._wake.notify_all()
        return target

    def until(self, target: float) -> dict:
        """How far a scheduled part is from the gate (ms or pulses), for its event record."""
        return self.delay.until(target)

    def _run(self) -> None:
        free_at = 0.0  # when the previous pulse ends
        while (ready := self._next_due()) is not None:
            free_at = self._pulse(ready[1], ready[0], free_at)

    def _next_due(self) -> tuple[float, int] | None:
        """Wait for the earliest part to come due: (its due time, its id); None when closed."""
        with self._wake:
            while True:
                now = self.clock()
                if self._finished(now):
                    self._give_up()
                    return None
                due = self.delay.due_time(self._due[0][0]) if self._due else None
                if due is not None and due <= now:
                    return due, heapq.heappop(self._due)[1]
                self._wake.wait(self._wait_s(due, now))

    def _finished(self, now: float) -> bool:
        """Closing, and nothing is owed any more or the wait for the belt is over."""
        gave_up = self._give_up_at is not None and now >= self._give_up_at
        return self._closing and (not self._due or gave_up)

    def _wait_s(self, due: float | None, now: float) -> float | None:
        """Sleep until the due time or the close deadline; None: until notified (a part, a pulse)."""
        ends = [t for t in (due, self._give_up_at if self._closing else None) if t is not None]
        return max(0.0, min(ends) - now) if ends else None

    def _give_up(self) -> None:
        if self._due:  # counted, not silently dropped: these parts passed the gate unrejected
            self._counts["unfired"] = self._counts.get("unfired", 0) + len(self._due)
            self._due.clear()

    def _pulse(self, part_id: int, due: float, free_at: float) -> float:
        now = self.clock()
        if now > due + JITTER_S:
            self._counts["late"] += 1
        if now < free_at:
            self._counts["overlapped"] += 1
            time.sleep(free_at - now)
        on = self.clock()
        self.device.on()
        time.sleep(self.pulse_s)
        self.device.off()
        off = self.clock()
        self._counts["pulsed"] += 1
        self.pulses = [*self.pulses[-999:], (part_id, on, off)]
        return off

    def close(self) -> None:
        """Fire what is still owed (parts already past the camera must still be rejected), then
        release the output. A time delay fires each part at its time. An encoder delay waits at most
        ``close_wait_s`` for the belt to bring its parts to the gate; those it does not are counted
        ``unfired`` in :attr:`stats` (a stopped belt must not hold the shutdown forever)."""
        with self._wake:
            self._closing = True
            now = self.clock()
            if self.delay.close_wait_s is not None:
                self._give_up_at = last = now + self.delay.close_wait_s
            else:
                last = max((self.delay.due_time(t) for t, _ in self._due), default=now)
            pending = len(self._due)
            self._wake.notify_all()
        self._thread.join(max(0.0, last - now) + (pending + 1) * self.pulse_s + 1.0)
        self.delay.close()
        close = getattr(self.device, "close", None)
        if close:
            close()

    def summary(self) -> str:
        """The stats in one line, for the log at shutdown."""
        return ", ".join(f"{key.replace('_', ' ')} {value}" for key, value in self.stats.items())


def open_reject(spec: str, delay: float | int | str = 0.0) -> RejectScheduler:
    """``gpio:PIN[:pulse_ms]`` -> a scheduler driving that output through gpiozero, ``delay`` (see
    :func:`parse_delay`) after each part's reference time."""
    kind, _, arg = spec.partition(":")
    pin, _, pulse = arg.partition(":")
    if kind != "gpio" or not pin or (pulse and not pulse.isdigit()):
        raise RejectError(f"--reject {spec!r}: expected gpio:PIN[:pulse_ms], e.g. --reject gpio:17:150")
    parsed = parse_delay(delay)
    from runtime.sinks.gpio import gpiozero_device

    device = gpiozero_device("DigitalOutputDevice", int(pin) if pin.isdigit() else pin, initial_value=False)
    try:
        timing = _open_delay(parsed)
    except BaseException:
        device.close()  # the output is not left claimed when the encoder input cannot be opened
        raise
    return RejectScheduler(device, pulse_s=int(pulse or 200) / 1000.0, name=f"gpio:{pin}", delay=timing)


def _open_delay(delay: float | EncoderSpec) -> TimeDelay | EncoderDelay:
    if isinstance(delay, EncoderSpec):
        from runtime.encoder import GpioEncoder

        return EncoderDelay(GpioEncoder(delay.pin, delay.active_low), delay.count)
    return TimeDelay(delay / 1000.0)
