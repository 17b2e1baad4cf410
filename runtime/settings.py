"""Every setting of the camera program, defined once, and how the layers combine.

Precedence: these defaults < the device profile (``--profile devices/pi5.toml``) < a config file
(``--config FILE``, JSON or TOML) < command-line flags. The resolved settings are saved next to
the event log so that a flagged event can always be traced to the exact configuration.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from runtime import configfile
from runtime.errors import EdgeFlagError
from runtime.fsutil import atomic_write_json
from runtime.parts import check_spec
from runtime.reject import EncoderSpec, RejectError, parse_delay
from runtime.roi import parse_roi


class ConfigError(EdgeFlagError):
    """A setting is unknown or has a value of the wrong kind."""


@dataclass
class CameraConfig:
    """Settings of ``python -m runtime.camera`` / :func:`runtime.session.run` (same names)."""

    bundle: str = "bundles/latest"  # bundle folder written by `python -m export`
    source: str = "0"  # camera index, /dev/videoN, video file, rtsp://, pipeline, csi://N, folder, glob
    # Which artifact: an exact name (tflite-int8) or a precision/format; else the bundle's preference.
    artifact: str | None = None
    precision: str | None = None  # one of runtime.artifact_kinds.PRECISIONS
    format: str | None = None  # one of runtime.artifact_kinds.FORMAT_SUFFIXES
    backend: str = "auto"  # litert | onnxruntime | auto (whatever is installed for the format)
    threads: int | None = None  # None: the core count (LiteRT alone would use one)
    providers: list[str] | None = None  # onnxruntime: e.g. ["tensorrt", "cuda", "cpu"]
    allow_rejected: bool = False  # use an artifact the accuracy gate rejected (testing only)
    allow_unfit: bool = False  # run a bundle whose model export judged unfit for the line targets
    thresholds: dict[str, float] = field(default_factory=dict)  # per defect class, over the bundle's
    k: int = 3  # a defect starts when k of the last n frames are flagged
    n: int = 5
    # Line mode (runtime.parts): "frames" (continuous material: k-of-n windows), "pitch:N" (N frames per
    # part), "presence" (the runtime sees parts enter and leave the ROI), "trigger:gpio:PIN" /
    # "trigger:udp:PORT" / "trigger:stdin" (an external signal starts each part).
    parts: str = "frames"
    part_k: int = 1  # a part is defective when at least part_k of its frames are flagged
    part_frames: int = 3  # trigger mode: frames that belong to a part after its trigger
    reject: str | None = None  # line mode: "gpio:PIN[:pulse_ms]", one pulse per defective part
    # From the part's trigger (or first frame) to its reject pulse: ms (a number), or a distance in belt
    # encoder pulses, "encoder:PIN:COUNT[:low]" (COUNT pulses of an encoder on GPIO PIN).
    reject_delay: float | str = 0.0
    # Line mode's production counters, kept across restarts; None: next to the event log
    # (<events>.counters.json); "none" keeps them in memory only.
    counters: str | None = None
    realtime: bool = False  # pace files/folders at their frame rate instead of as fast as possible
    width: int | None = None  # capture size asked of a live camera
    height: int | None = None
    fps: float | None = None
    # The camera's hardware (Pi ISP, Jetson VIC) crops the ROI and scales to the model's input,
    # so the CPU does not resize (picamera2 and csi:// sources; see runtime.sources.camera_resize).
    camera_resize: bool = False
    # Where the part sits in the camera's view, as fractions x0,y0,x1,y1 (a flag, config or profile):
    # overrides the bundle's own ROI; "full" uses the whole frame. None: the bundle's.
    roi: str | list[float] | None = None
    reconnect: bool = True  # reopen a live source that disconnects, with backoff
    events: str = "events/events.jsonl"  # append-only, fsync'd event log
    snapshots: str | None = "events/snapshots"  # JPEGs of flagged parts; None: no snapshots
    snapshots_keep: int = 5000  # newest snapshots kept (older ones deleted); 0 keeps them all
    sinks: list[str] = field(default_factory=list)  # extra: stdout, webhook:URL, mqtt://h/t, gpio:PIN
    queue_size: int = 256  # per sink; a full queue drops (counted), never blocks inference
    drain_timeout: float = 5.0  # seconds the sinks get at shutdown to deliver what is queued
    # Status page, /metrics and /healthz: "PORT" (loopback) or "HOST:PORT"; None = off.
    http: str | None = None
    health_stall: float = 10.0  # /healthz unhealthy after this many seconds without a frame
    health_backlog: float = 300.0  # ... or when a remote sink's oldest undelivered event is older
    show: bool | None = None  # window with overlay; None: only when a display is available
    stats_every: float = 10.0  # seconds between stats lines; 0 disables them
    max_frames: int | None = None
    duration: float | None = None  # seconds

    def __post_init__(self) -> None:
        self.source = str(self.source)
        if self.snapshots in ("", "none", "off"):  # how a config file or flag turns snapshots off
            self.snapshots = None
        if not 1 <= int(self.k) <= int(self.n):
            raise ConfigError(f"k-of-n debouncing needs 1 <= k <= n, got k={self.k}, n={self.n}; "
                              "e.g. --k 3 --n 5")
        if int(self.snapshots_keep) < 0:
            raise ConfigError(f"snapshots_keep must be >= 0 (0 keeps every snapshot), "
                              f"got {self.snapshots_keep}; e.g. --snapshots-keep 5000")
        if self.roi is not None:
            try:
                parse_roi(self.roi)
            except ValueError as exc:
                raise ConfigError(f"{exc}; e.g. --roi 0.2,0.1,0.8,0.9, or --roi full for the whole "
                                  "frame") from None
        try:
            check_spec(self.parts)
        except (ValueError, EdgeFlagError) as exc:
            raise ConfigError(str(exc)) from None
        if self.reject and self.parts == "frames":
            raise ConfigError(f"reject={self.reject!r} needs line mode (one pulse per part): add --parts "
                              "pitch:N, presence or trigger:...; for continuous material use --sink gpio:PIN")
        if int(self.part_k) < 1 or int(self.part_frames) < 1:
            raise ConfigError(f"need part_k >= 1 and part_frames >= 1, got {self.part_k}, {self.part_frames}")
        self._check_reject_delay()
        for name in ("max_frames", "duration", "threads", "queue_size", "drain_timeout", "health_stall",
                     "health_backlog"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"{name} must be positive, got {value}")

    def _check_reject_delay(self) -> None:
        """Parse reject_delay (a number of ms, kept a float; or an encoder spec, kept as text)."""
        try:
            delay = parse_delay(self.reject_delay)
        except RejectError as exc:
            raise ConfigError(str(exc)) from None
        if not isinstance(delay, EncoderSpec):
            self.reject_delay = delay
            return
        self.reject_delay = str(self.reject_delay).strip()
        # One pin cannot be both the encoder's input and another input or the reject output.
        taken = {"reject": _gpio_pin(self.reject or "", "gpio:"),
                 "parts": _gpio_pin(self.parts, "trigger:gpio:")}
        for name, pin in taken.items():
            if pin and pin == str(delay.pin):
                raise ConfigError(f"reject_delay {self.reject_delay!r} and {name}={getattr(self, name)!r} "
                                  f"use the same pin {pin}: wire the encoder to a pin of its own, e.g. "
                                  "--reject gpio:17 --reject-delay encoder:22:400")

    @property
    def counters_path(self) -> Path | None:
        """Where line mode keeps its production counters (None: in memory only)."""
        if self.counters in ("none", "off", ""):
            return None
        return Path(self.counters) if self.counters else Path(self.events).with_suffix(".counters.json")

    def to_dict(self) -> dict:
        """JSON-ready settings."""
        return asdict(self)

    def save(self, path: str | Path, extra: dict | None = None) -> Path:
        """Write the resolved settings (plus ``extra``, e.g. the artifact used) as JSON."""
        atomic_write_json(path, {**self.to_dict(), **(extra or {})})
        return Path(path)


def _gpio_pin(spec: str, prefix: str) -> str:
    """The PIN of ``<prefix>PIN[:...]``, or "" when ``spec`` is not of that form."""
    return spec.removeprefix(prefix).partition(":")[0] if spec.startswith(prefix) else ""


FIELD_NAMES = tuple(f.name for f in fields(CameraConfig))


def check_keys(values: dict, origin: str) -> dict:
    """Refuse unknown setting names, suggesting the closest known one."""
    return configfile.check_keys(values, FIELD_NAMES, origin, ConfigError)


def read_config_file(path: str | Path) -> dict:
    """Settings from a JSON or TOML file (flat, or under a ``[camera]`` table)."""
    data = configfile.read_config_file(path, ConfigError, table="camera")
    return check_keys(data, f"config file {path}")


def resolve(*layers: dict) -> CameraConfig:
    """Merge setting dicts, later layers winning; ``None`` in a layer means "not given"."""
    merged: dict = {}
    for layer in layers:
        merged.update({k: v for k, v in layer.items() if v is not None})
    try:
        return CameraConfig(**check_keys(merged, "settings"))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid settings: {exc}") from exc
