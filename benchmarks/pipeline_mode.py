"""``--mode pipeline``: video frames through the runtime's own loop, with a per-stage breakdown.

The loop is :class:`runtime.frame_loop.FrameLoop` with the runtime's sink dispatcher and JSONL
event log, exactly as ``runtime.camera`` wires them; only thin timing wrappers are added around
the engine, the decider and the dispatcher. Stages per frame: ``decode`` (the source's read),
``infer`` (set input, invoke, dequantize), ``decide`` (thresholds), ``sinks`` (handing events to the
dispatcher; delivery runs on its own threads), and ``prepare`` = the rest of ``FrameLoop.process``
(colour/crop/resize per the contract, k-of-n, stats). ``frame_to_decision`` is from capture to the
decision, as the runtime's stats line reports it.

``--fps N`` paces the file like a camera behind the runtime's latest-frame reader, so a loop slower
than the camera shows up as dropped frames, as it would on the line.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.engines import CAMERA
from benchmarks.fingerprint import bundle_fingerprint, machine_fingerprint
from benchmarks.inputs import camera_frames
from benchmarks.latency import latency_summary
from benchmarks.results import new_result
from runtime.bundle import Bundle
from runtime.debounce import KofN
from runtime.frame_loop import FrameLoop
from runtime.sinks.dispatcher import SinkDispatcher
from runtime.sinks.jsonl import JsonlSink
from runtime.sources.latest import Device
from runtime.sources.live import LiveSource
from runtime.sources.video_file import VideoFileSource
from runtime.stats import RunStats


class _Timer:
    """Wraps one callable; adds the duration of each call to ``pending`` until :meth:`take`."""

    def __init__(self, fn):
        self.fn, self.pending = fn, 0.0

    def __call__(self, *a, **kw):
        t0 = time.perf_counter()
        try:
            return self.fn(*a, **kw)
        finally:
            self.pending += time.perf_counter() - t0

    def take(self) -> float:
        """Seconds spent in the wrapped callable since the last take."""
        value, self.pending = self.pending, 0.0
        return value


class PacedVideo(Device):
    """A video file delivered at ``fps`` like a camera (frames are not waited for; the reader drops)."""

    def __init__(self, path: Path, fps: float):
        self.path, self.period, self.cap, self.next = path, 1.0 / fps, None, None

    def open(self) -> None:
        self.cap = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
        self.next = time.monotonic()

    def grab(self) -> np.ndarray | None:
        self.next += self.period
        time.sleep(max(0.0, self.next - time.monotonic()))
        ok, frame = self.cap.read()
        return frame if ok else None

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()


def demo_video(bundle: Bundle, path: Path, frames: int = 240) -> Path:
    """A 640x480 video of the bundle's test photos (or rendered parts), for runs without ``--video``."""
    images = camera_frames(bundle, 16, CAMERA)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, (CAMERA[1], CAMERA[0]))
    for i in range(frames):
        writer.write(images[(i // 8) % len(images)])
    writer.release()
    return path


def run_pipeline(
    bundle: Bundle,
    artifact_name: str | None,
    video: str | None,
    fps: float | None,
    threads: int | None,
    protocol: dict,
) -> dict:
    """Run the video through the loop once; the result document with per-stage figures."""
    artifact = bundle.get(artifact_name) if artifact_name else bundle.select()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(video) if video else demo_video(bundle, Path(tmp) / "belt.mp4")
        source = (
            LiveSource(f"{path} at {fps} fps", lambda: PacedVideo(path, fps), reconnect=False)
            if fps
            else VideoFileSource(path)
        )
        with bundle.open(artifact, threads=threads) as engine:
            stages, stats = _drive(bundle, artifact, engine, source, Path(tmp) / "events.jsonl")
            described = engine.describe()
    doc = new_result("pipeline", machine_fingerprint(), bundle_fingerprint(bundle), protocol)
    doc["pipeline"] = {
        "artifact": artifact.name,
        "engine": described,
        "video": str(video or "rendered belt"),
        "fps": fps,
        **stats,
        "stages_ms": {k: latency_summary(np.asarray(v) * 1e3) for k, v in stages.items()},
    }
    return doc


def _drive(bundle, artifact, engine, source, events: Path) -> tuple[dict, dict]:
    infer = _Timer(engine.run_one)
    engine.run_one = infer  # instance attribute: the loop calls it, the engine class is untouched
    decider = bundle.decider(artifact)
    decide = _Timer(decider.decide)
    decider.decide = decide
    dispatcher = SinkDispatcher([JsonlSink(events)])
    emit = _Timer(dispatcher.emit)
    run_stats = RunStats()
    loop = FrameLoop(engine, bundle.contract, decider, KofN(3, 5), emit, run_stats)
    stages: dict[str, list[float]] = {
        k: [] for k in ("decode", "prepare", "infer", "decide", "sinks", "process")
    }
    to_decision = []
    wall = time.perf_counter()
    with source:
        while True:
            t0 = time.perf_counter()
            frame = source.read()
            t1 = time.perf_counter()
            if frame is None:
                break
            loop.process(frame)
            t2 = time.perf_counter()
            to_decision.append(time.monotonic() - frame.captured)
            parts = {"infer": infer.take(), "decide": decide.take(), "sinks": emit.take()}
            for k, v in {
                "decode": t1 - t0,
                "process": t2 - t1,
                **parts,
                "prepare": (t2 - t1) - sum(parts.values()),
            }.items():
                stages[k].append(v)
    loop.finish()
    wall = time.perf_counter() - wall
    dispatcher.close(5.0)
    n = len(stages["process"])
    return stages, {
        "frames": n,
        "wall_s": wall,
        "fps_achieved": n / wall if wall else None,
        "frame_to_decision_ms": latency_summary(np.asarray(to_decision) * 1e3),
        "events": run_stats.events,
        "source": source.stats,
    }
