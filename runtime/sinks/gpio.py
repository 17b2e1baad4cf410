"""A GPIO output pulsed on each flagged part (reject actuator, stack light), through gpiozero."""

from __future__ import annotations

import time

import numpy as np

from runtime.sinks.base import Sink, SinkError

GPIOZERO_MISSING = ("the gpio sink needs gpiozero: `pip install gpiozero lgpio` in the venv (Raspberry Pi "
                    "OS ships it as python3-gpiozero), or `pip install 'edgeflag[sinks]'`")


def _import_gpiozero():
    try:
        import gpiozero
    except ImportError as exc:
        raise SinkError(f"{GPIOZERO_MISSING} (import failed: {exc})") from exc
    return gpiozero


def gpiozero_device(kind: str, pin: int | str, **options):
    """``gpiozero.<kind>(pin, **options)``, with errors that say how to fix them."""
    gpiozero = _import_gpiozero()
    try:
        return getattr(gpiozero, kind)(pin, **options)
    except gpiozero.BadPinFactory as exc:
        raise SinkError(f"gpio: gpiozero found no GPIO library on this machine ({exc}). Fix: on a "
                        "Raspberry Pi `pip install lgpio` in the venv (Pi 5 needs lgpio)") from exc
    except gpiozero.GPIOZeroError as exc:
        raise SinkError(f"gpio: cannot use pin {pin!r} ({exc}); pins are BCM numbers (17) or "
                        "names like GPIO17 / BOARD11") from exc


class GpioSink(Sink):
    """Drives ``pin`` high for ``pulse_ms`` on each event whose type is in ``events``."""

    def __init__(self, pin: int | str, pulse_ms: int = 200,
                 events: tuple[str, ...] = ("defect_start", "part"), active_high: bool = True):
        self.pin, self.pulse_s, self.events = pin, pulse_ms / 1000.0, events
        self.name = f"gpio:{pin}"
        self.device = gpiozero_device("DigitalOutputDevice", pin, active_high=active_high,
                                      initial_value=False)
        self._pulse_until = 0.0

    @classmethod
    def from_spec(cls, arg: str) -> GpioSink:
        """``PIN[:pulse_ms]``, e.g. ``17`` or ``GPIO17:500``."""
        pin, _, pulse = arg.partition(":")
        if not pin or (pulse and not pulse.isdigit()):
            raise SinkError(f"gpio sink {arg!r}: expected gpio:PIN[:pulse_ms], e.g. gpio:17:250")
        return cls(int(pin) if pin.isdigit() else pin, **({"pulse_ms": int(pulse)} if pulse else {}))

    def handle(self, event: dict, frame: np.ndarray | None) -> None:
        if event.get("type") not in self.events or event.get("verdict", "defect") != "defect":
            return  # line mode: only defective parts (the timed reject output is runtime.reject)
        self._pulse_until = time.monotonic() + self.pulse_s
        self.device.blink(on_time=self.pulse_s, off_time=0, n=1, background=True)

    def close(self) -> None:
        # Let a pulse in progress finish: cutting it short could leave a reject gate half-moved.
        time.sleep(max(0.0, self._pulse_until - time.monotonic()))
        self.device.off()
        self.device.close()
