"""External part triggers for ``--parts trigger:...``: a photo-eye, a PLC, an operator.

Each trigger is one part arriving. Inputs push the ``time.monotonic()`` of each trigger onto a
thread-safe queue; the frame loop takes them before each frame (:class:`runtime.parts.TriggerParts`).

* ``trigger:gpio:PIN[:low]`` — a photo-eye on a GPIO input through gpiozero (``low``: the sensor
  pulls the line low when it sees a part; the default is active-high with the pull-down);
* ``trigger:udp:[HOST:]PORT`` — each datagram on a local UDP socket (a PLC, or
  ``echo > /dev/udp/127.0.0.1/5700`` from a shell); loopback unless a host is given;
* ``trigger:stdin`` — each line on standard input.
"""

from __future__ import annotations

import queue
import socket
import sys
import threading
import time

from runtime.errors import EdgeFlagError

TRIGGER_FORMS = "trigger:gpio:PIN[:low], trigger:udp:[HOST:]PORT or trigger:stdin"


class TriggerError(EdgeFlagError):
    """A trigger spec is malformed or its input cannot be opened."""


class TriggerInput:
    """A queue of trigger times; subclasses feed it from a device, a socket or stdin."""

    name = "trigger"

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[float] = queue.SimpleQueue()
        self.count = 0

    def fire(self, when: float | None = None) -> None:
        """One part arrived (now, or at the monotonic time ``when``); safe from any thread."""
        self.count += 1
        self._queue.put(time.monotonic() if when is None else when)

    def take(self) -> list[float]:
        """The trigger times received since the last call, oldest first."""
        times = []
        while True:
            try:
                times.append(self._queue.get_nowait())
            except queue.Empty:
                return times

    def close(self) -> None:
        """Release the input (a daemon reader thread ends with the process)."""


class GpioTrigger(TriggerInput):
    """A photo-eye on a GPIO input: each activation (debounced by ``bounce_ms``) is a trigger."""

    def __init__(self, pin: int | str, active_low: bool = False, bounce_ms: float = 5.0):
        super().__init__()
        from runtime.sinks.gpio import gpiozero_device

        self.name = f"gpio:{pin}"
        # Active-low sensors (NPN, open collector) need the pull-up; active-high ones the pull-down.
        self.device = gpiozero_device("DigitalInputDevice", pin, pull_up=active_low,
                                      bounce_time=bounce_ms / 1000.0 if bounce_ms else None)
        self.device.when_activated = lambda *_: self.fire()

    def close(self) -> None:
        self.device.close()


class UdpTrigger(TriggerInput):
    """Each datagram received on ``host:port`` is a trigger."""

    def __init__(self, host: str, port: int):
        super().__init__()
        self.name = f"udp:{host}:{port}"
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.bind((host, port))
        except OSError as exc:
            self.sock.close()
            raise TriggerError(f"trigger {self.name}: cannot listen ({exc.strerror or exc}). Fix: choose a "
                               "free port, e.g. --parts trigger:udp:5700") from exc
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._read, name="trigger-udp", daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                self.sock.recv(64)
            except OSError:  # closed
                return
            self.fire()

    def close(self) -> None:
        self.sock.close()


class StdinTrigger(TriggerInput):
    """Each line on standard input is a trigger."""

    name = "stdin"

    def __init__(self, stream=None):
        super().__init__()
        self.stream = stream or sys.stdin
        threading.Thread(target=self._read, name="trigger-stdin", daemon=True).start()

    def _read(self) -> None:
        for _ in self.stream:
            self.fire()


def _parse(spec: str) -> tuple[str, tuple]:
    kind, _, arg = spec.partition(":")
    if kind == "stdin" and not arg:
        return kind, ()
    if kind == "udp":
        host, _, port = arg.rpartition(":")
        if port.isdigit():
            return kind, (host or "127.0.0.1", int(port))
    if kind == "gpio":
        pin, _, level = arg.partition(":")
        if pin and level in ("", "low", "high"):
            return kind, (int(pin) if pin.isdigit() else pin, level == "low")
    raise TriggerError(f"--parts trigger:{spec}: expected {TRIGGER_FORMS}, e.g. --parts trigger:gpio:27")


def check_trigger_spec(spec: str) -> None:
    """Raise :class:`TriggerError` unless ``spec`` (after ``trigger:``) is well formed."""
    _parse(spec)


def open_trigger(spec: str) -> TriggerInput:
    """The input named by ``spec`` (the part after ``trigger:``)."""
    kind, args = _parse(spec)
    return {"stdin": StdinTrigger, "udp": UdpTrigger, "gpio": GpioTrigger}[kind](*args)
