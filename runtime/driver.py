"""Driving a :class:`runtime.frame_loop.FrameLoop` over a source until it should stop, then a summary.

Stops on: end of a file/folder, ``max_frames``, ``duration``, SIGINT/SIGTERM, or q/Esc in the
window. Whatever the reason, the shutdown is the same: close an open defect (``defect_end``),
stop the source, then drain and flush every sink, so the event log is complete.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass

from runtime.overlay import Window, display_available, draw_overlay


@dataclass
class RunSummary:
    """What a run did: totals, latency percentiles, I/O counters and why it stopped."""

    frames: int
    seconds: float
    fps: float | None
    latency_ms: dict
    compute_ms: dict
    events: int
    flagged_frames: int
    corrupt_skipped: int
    stopped_by: str
    artifact: str
    engine: dict
    source: dict
    sinks: dict
    parts: dict | None = None  # line mode: the production counters (runtime.counters)

    def to_dict(self) -> dict:
        """JSON-ready summary."""
        return asdict(self)

    def text(self) -> str:
        """The final summary printed by the camera program."""
        lat, comp = self.latency_ms, self.compute_ms
        src = ", ".join(f"{k}={v}" for k, v in self.source.items() if isinstance(v, int | float))
        return (f"[summary] stopped by {self.stopped_by}: {self.frames} frames in {self.seconds:.1f} s "
                f"({self.fps or 0:.1f} fps), {self.events} events, {self.flagged_frames} flagged frames, "
                f"{self.corrupt_skipped} corrupt skipped\n"
                f"[summary] frame-to-decision ms p50={_f(lat.get('p50'))} p95={_f(lat.get('p95'))}; "
                f"compute ms p50={_f(comp.get('p50'))} p95={_f(comp.get('p95'))}; artifact {self.artifact}\n"
                f"[summary] source: {src or '-'}\n"
                f"[summary] sinks: {_sink_text(self.sinks)}" + _parts_text(self.parts))


def _f(x) -> str:
    return "-" if x is None else f"{x:.1f}"


def _parts_text(parts: dict | None) -> str:
    if not parts:
        return ""
    y = parts["yield"]
    by_class = ", ".join(f"{k} {v}" for k, v in parts["defective_by_class"].items()) or "-"
    restored = f" (since {parts['since']}, restored from the state file)" if parts["restored"] else ""
    return (f"\n[summary] parts: {parts['parts']} ({parts['ok']} ok, {parts['defective']} defective: "
            f"{by_class}), yield {'-' if y is None else f'{100 * y:.2f}%'}{restored}")


def _sink_text(stats: dict) -> str:
    parts = []
    for name, s in stats.items():
        if not isinstance(s, dict):
            parts.append(f"{name}={s}")
            continue
        text = " ".join(f"{k}={'-' if v is None else v}" for k, v in s.items())
        if "dropped" in s:  # local sinks: a bounded queue that drops rather than stall inference
            text += " (local sink: drops when it cannot keep up)"
        elif s.get("pending"):
            text += " (still in the event log: delivered on the next start)"
        parts.append(f"{name} {text}")
    return "; ".join(parts) or "-"


class Stopper:
    """Ends a run from a signal, a timer, the window or another thread; remembers why."""

    def __init__(self, source=None):
        self.event = threading.Event()
        self.reason: str | None = None
        self.source = source  # set once opened: a stop must unblock its read()

    def request(self, reason: str) -> None:
        """Ask the loop to stop; unblocks a live source waiting for a frame."""
        if self.reason is None:
            self.reason = reason
        self.event.set()
        stop = getattr(self.source, "stop", None)
        if callable(stop):
            stop()

    @property
    def stopped(self) -> bool:
        return self.event.is_set()


@contextmanager
def handle_signals(stopper: Stopper):
    """SIGINT/SIGTERM request a clean stop; a second one interrupts the shutdown itself."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be installed from the main thread
        return
    hits = {"n": 0}

    def handler(signum, _frame):
        hits["n"] += 1
        if hits["n"] > 1:
            raise KeyboardInterrupt
        stopper.request(signal.Signals(signum).name)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _io_counters(source, dispatcher) -> dict:
    src = dict(getattr(source, "stats", {}) or {})
    sinks = dict(getattr(dispatcher, "stats", {}) or {})
    lanes = [s for s in sinks.values() if isinstance(s, dict)]
    dropped = sum(s.get("dropped", 0) for s in lanes)
    # Remote sinks never drop: what they have not delivered waits in the event log ("pending").
    pending = sum(s.get("pending", 0) for s in lanes if "oldest_pending_s" in s)
    ages = [s["oldest_pending_s"] for s in lanes if s.get("oldest_pending_s") is not None]
    counters = {"dropped_stale": src.get("dropped_stale", 0), "reconnects": src.get("reconnects", 0),
                "source_corrupt": src.get("corrupt_skipped", 0), "sink_dropped": dropped}
    if any("oldest_pending_s" in s for s in lanes):
        counters["remote_pending"] = pending
        counters["oldest_pending_s"] = max(ages) if ages else 0
    return counters


def drive(loop, source, dispatcher, config, *, stopper: Stopper | None = None,
          stop: threading.Event | None = None, log: Callable[[str], None], board=None) -> str:
    """Feed ``source`` frames to ``loop`` until a stop condition; return why it stopped.

    The caller closes the source and then the sinks (in that order) after this returns; an
    open defect has already been closed here, so its ``defect_end`` is flushed with the rest.
    ``stopper`` is the caller's when it handles signals over a wider span (see ``run_config``);
    ``board`` (a :class:`runtime.status.board.StatusBoard`, ``--http``) is told of every frame.
    """
    stopper = stopper or Stopper()
    stopper.source = source
    show = display_available() if config.show is None else config.show
    window = Window() if show else None
    timer = threading.Timer(config.duration, stopper.request, ("duration",)) if config.duration else None
    finished = threading.Event()
    if stop is not None:  # a caller's stop event must also wake a live source blocked in read()
        threading.Thread(target=_watch, args=(stop, finished, stopper), daemon=True).start()
    try:
        if timer:
            timer.daemon = True
            timer.start()
        _frames(loop, source, dispatcher, config, stopper, window, log, board)
    finally:
        finished.set()
        if timer:
            timer.cancel()
        loop.finish()
        if window:
            window.close()
    return stopper.reason or "end"


def _watch(stop: threading.Event, finished: threading.Event, stopper: Stopper) -> None:
    while not finished.is_set():
        if stop.wait(0.1):
            stopper.request("stop")
            return


def _frames(loop, source, dispatcher, config, stopper: Stopper, window, log, board=None) -> None:
    every = config.stats_every
    next_line = time.monotonic() + every if every else None
    while not stopper.stopped:
        frame = source.read()
        if frame is None:
            return
        decision = loop.process(frame)
        if board is not None:
            board.frame(frame.image, decision)
        if window is not None and decision is not None:
            status = loop.status
            if not window.show(draw_overlay(frame.image, decision.label, decision.score, decision.flagged,
                                            status.recent_fps, status.last_latency_ms, status.defect_active)):
                stopper.request("window")
        if config.max_frames and loop.status.frames >= config.max_frames:
            stopper.request("max_frames")
        if next_line is not None and time.monotonic() >= next_line:
            log(loop.stats_line(_io_counters(source, dispatcher)))
            next_line = time.monotonic() + every


def summarize(loop, source, dispatcher, reason: str, artifact: str, engine: dict) -> RunSummary:
    """The run's :class:`RunSummary` (call after the source and sinks are closed)."""
    s = loop.summary()
    src = dict(getattr(source, "stats", {}) or {})
    return RunSummary(frames=s["frames"], seconds=s["seconds"], fps=s["fps"], latency_ms=s["latency_ms"],
                      compute_ms=s["compute_ms"], events=s["events"], flagged_frames=s["flagged_frames"],
                      corrupt_skipped=s["corrupt_skipped"] + int(src.get("corrupt_skipped", 0)),
                      stopped_by=reason, artifact=artifact, engine=engine, source=src,
                      sinks=dict(getattr(dispatcher, "stats", {}) or {}), parts=s.get("parts"))
