"""The inference loop: camera frames in, debounced defect events out.

Per frame: ``prepare_bgr`` (the bundle's input contract) -> ``backend.run_one`` -> the bundle's
per-class thresholds (:class:`runtime.decision.Decider`) -> k-of-n debouncing -> ``defect_start``
/ ``defect_end`` events handed to the sinks through a bounded, non-blocking dispatcher.

Snapshots: a ``defect_start`` carries the frame with the highest defect score among the frames
that triggered it (the k..n frames of the debouncing window); its file name is put in the event
(``"snapshot"``) before it is emitted, so the JSONL log records where the picture is.

Python use (the same names as the command-line flags)::

    from runtime.loop import run
    summary = run("bundles/latest", "line3.mp4", k=3, n=5, events="events/line3.jsonl")
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from runtime.bundle import Artifact, Bundle
from runtime.contract import InputContract
from runtime.debounce import DefectEvent, KofN
from runtime.decision import Decider, Decision
from runtime.errors import BundleError
from runtime.fsutil import atomic_write_json
from runtime.preprocess import prepare_bgr
from runtime.runner import RunSummary, Stopper, drive, handle_signals, summarize
from runtime.settings import CameraConfig
from runtime.sources.camera_resize import CameraResize
from runtime.stats import RunStats

Emit = Callable[[dict, "np.ndarray | None"], None]


def usable_image(image) -> np.ndarray | None:
    """The frame as an 8-bit BGR/grey array, or None when it cannot be a camera picture."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.size == 0:
        return None
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (3, 4)):
        return image
    return None


def now_iso() -> str:
    """Wall-clock time for events, ISO-8601 UTC with milliseconds."""
    now = datetime.now(timezone.utc)  # noqa: UP017 - Python 3.10 boards lack datetime.UTC
    return now.isoformat(timespec="milliseconds")


class FrameLoop:
    """Per-frame work on an already-open engine; owns no I/O, so tests and benchmarks reuse it."""

    def __init__(self, engine, contract: InputContract, decider: Decider, debouncer: KofN,
                 emit: Emit, stats: RunStats, context: dict | None = None,
                 snapshot_path: Callable[[dict], str] | None = None, clock=None):
        import time

        self.engine, self.contract, self.decider, self.debouncer = engine, contract, decider, debouncer
        self.emit, self.stats, self.context = emit, stats, dict(context or {})
        self.snapshot_path = snapshot_path
        self.clock = clock or time.monotonic
        self.last: Decision | None = None
        self.last_index = -1

    def decide(self, image: np.ndarray) -> Decision:
        """prepare -> inference -> thresholds for one BGR frame (no debouncing, no events)."""
        return self.decider.decide(self.engine.run_one(prepare_bgr(image, self.contract)))

    def process(self, frame) -> Decision | None:
        """Decide one :class:`runtime.sources.Frame` and emit any event; None if it was unusable."""
        began = self.clock()
        image = usable_image(frame.image)
        if image is None:
            self.stats.corrupt += 1
            return None
        decision = self.decide(image)
        self.stats.record(frame.captured, began, self.clock(), decision.flagged)
        self.last, self.last_index = decision, frame.index
        event = self.debouncer.update(decision.flagged, decision.label, decision.score, frame.index,
                                      payload=(image, frame.name))
        if event is not None:
            self._emit(event)
        return decision

    def finish(self) -> None:
        """End of the run: an open defect is closed with a ``defect_end`` on the last frame."""
        event = self.debouncer.finish(self.last_index)
        if event is not None:
            self._emit(event)

    def _emit(self, event: DefectEvent) -> None:
        record = event_record(event, self.context)
        picture = None
        if event.kind == "start" and event.payload is not None:
            picture, name = event.payload
            if name:
                record["peak_frame_name"] = name
            if self.snapshot_path is not None:
                record["snapshot"] = self.snapshot_path(record)
        self.stats.events += 1
        self.emit(record, picture)


def event_record(event: DefectEvent, context: dict) -> dict:
    """The JSON event: type, time, frame index, class, peak score, frame count (+ context)."""
    record = {"type": f"defect_{event.kind}", "time": now_iso(), "frame_index": event.frame_index,
              "label": event.label, "peak_score": round(event.peak_score, 4),
              "frame_count": event.frame_count, "first_frame_index": event.first_frame_index,
              "peak_frame_index": event.peak_frame_index}
    if event.kind == "end":
        record["last_frame_index"] = event.last_frame_index
    record.update(context)
    return record


def choose_artifact(bundle: Bundle, config: CameraConfig) -> Artifact:
    """The artifact named by ``config.artifact``, else the best match of precision/format."""
    if config.artifact:
        artifact = bundle.get(config.artifact)
        if not (artifact.passed or config.allow_rejected):
            raise BundleError(f"artifact {artifact.name!r} in {bundle.root} was {artifact.gate_status} "
                              "by the accuracy gate (see report.md in the bundle). Fix: choose another "
                              "artifact, or pass --allow-rejected to run it anyway")
        return artifact
    return bundle.select(precision=config.precision, fmt=config.format,
                         allow_rejected=config.allow_rejected, backend=config.backend)


def run(bundle: str | Path | Bundle = "bundles/latest", source="0", *,
        stop: threading.Event | None = None, log: Callable[[str], None] | None = None,
        **settings) -> RunSummary:
    """Run the camera program until the source ends or a limit/signal stops it.

    ``bundle`` is a folder or a loaded :class:`Bundle`; ``source`` a source spec (see
    ``--help``) or an open :class:`runtime.sources.FrameSource`; ``settings`` are the
    :class:`CameraConfig` fields. Setting ``stop`` ends the run cleanly from another thread.
    """
    config = CameraConfig(bundle=str(bundle.root if isinstance(bundle, Bundle) else bundle),
                          source=str(source if isinstance(source, str | int) else type(source).__name__),
                          **settings)
    return run_config(config, bundle=bundle if isinstance(bundle, Bundle) else None,
                      source=None if isinstance(source, str | int) else source, stop=stop, log=log)


def open_sinks(config: CameraConfig):
    """The event log, the snapshot folder and the extra ``--sink`` specs behind one dispatcher."""
    from runtime.sinks import SinkDispatcher, make_sink
    from runtime.sinks.snapshots import SnapshotSink

    sinks = [make_sink(f"jsonl:{config.events}")]
    if config.snapshots:
        sinks.append(SnapshotSink(config.snapshots, keep=config.snapshots_keep))
    extra = [make_sink(s, snapshots_keep=config.snapshots_keep) for s in config.sinks]
    return SinkDispatcher(sinks + extra, queue_size=config.queue_size)


def snapshot_paths(folder: str | None) -> Callable[[dict], str] | None:
    """Event -> snapshot file path (the snapshot sink writes the same name), or None."""
    if not folder:
        return None
    from runtime.sinks.snapshots import snapshot_name

    return lambda event: str(Path(folder) / snapshot_name(event))


def capture_geometry(contract: InputContract,
                     camera_resize: bool) -> tuple[InputContract, CameraResize | None]:
    """The contract the loop applies, and what to ask of the camera's hardware (``--camera-resize``).

    With camera-side resizing the frames arrive already cropped to the ROI and at the model's
    size, so the loop must not crop again: its contract drops the ROI and its resize is a no-op.
    """
    if not camera_resize:
        return contract, None
    return replace(contract, roi=None), CameraResize.for_contract(contract)


def run_config(config: CameraConfig, *, bundle: Bundle | None = None, source=None,
               stop: threading.Event | None = None, log: Callable[[str], None] | None = None,
               profile: str | None = None) -> RunSummary:
    """:func:`run` with settings already resolved (what ``python -m runtime.camera`` calls)."""
    from runtime.sources import open_source

    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    bundle = bundle or Bundle.load(config.bundle)
    artifact = choose_artifact(bundle, config)
    decider = bundle.decider(artifact, config.thresholds)
    options = {"providers": config.providers} if config.providers else {}
    contract, resize = capture_geometry(bundle.contract, config.camera_resize)
    if source is None:  # built, not opened, before the model loads: a bad --source fails at once
        source = open_source(config.source, realtime=config.realtime, width=config.width,
                             height=config.height, fps=config.fps, reconnect=config.reconnect,
                             camera_resize=resize)
    stopper = Stopper()
    with ExitStack() as stack:
        # Exit order matters: the source stops first, then the sinks drain and flush, and the
        # signal handlers (entered first) stay in place until the very end, so a SIGTERM while
        # loading stops before the first frame and a second one cuts a long drain short.
        stack.enter_context(handle_signals(stopper))
        engine = stack.enter_context(bundle.open(artifact, backend=config.backend,
                                                 threads=config.threads, **options))
        dispatcher = open_sinks(config)
        stack.callback(dispatcher.close, config.drain_timeout)
        stack.enter_context(source)
        described = engine.describe()
        config.save(Path(config.events).with_suffix(".config.json"),
                    {"artifact_used": artifact.name, "artifact_sha256": artifact.sha256,
                     "engine": described, "profile": profile, "started": now_iso()})
        loop = FrameLoop(engine, contract, decider, KofN(config.k, config.n), dispatcher.emit,
                         RunStats(), context={"source": config.source, "artifact": artifact.name},
                         snapshot_path=snapshot_paths(config.snapshots))
        log(f"[start] {artifact.name} on {described.get('backend')} ({described.get('threads')} threads), "
            f"source {config.source}{' (camera-side resize)' if resize else ''}, "
            f"k={config.k} of n={config.n}, events -> {config.events}")
        reason = drive(loop, source, dispatcher, config, stopper=stopper, stop=stop, log=log)
    summary = summarize(loop, source, dispatcher, reason, artifact.name, described)
    atomic_write_json(Path(config.events).with_suffix(".summary.json"), summary.to_dict())
    return summary
