"""The loop through its Python API (`runtime.session.run`) with the real tiny bundle and real sources:
limits, stop, corrupt frames, a live source that dies mid-stream, a dead webhook, errors."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time

import cv2
import numpy as np
import pytest

from runtime.bundle import Bundle
from runtime.errors import BundleError, EdgeFlagError
from runtime.session import choose_artifact, run
from runtime.settings import CameraConfig
from runtime.sources.latest import Device, ReconnectPolicy
from runtime.sources.live import LiveSource
from tests.runtime_support import (
    ListSource,
    alternating,
    belt,
    confident_parts,
    frames_of_parts,
    jsonl,
    quiet,
)


@pytest.fixture(scope="module")
def part_frames(tiny_bundle, tiny_run) -> dict[str, list[np.ndarray]]:
    return frames_of_parts(tiny_bundle, tiny_run)


def test_python_api_runs_a_video_and_reports(tiny_bundle, tiny_run, tmp_path):
    parts = confident_parts(tiny_bundle, tiny_run)
    video = tmp_path / "belt.mp4"
    belt(tiny_run, parts, "odood", video, frames_per_part=6)
    lines: list[str] = []
    summary = run(tiny_bundle, str(video), events=str(tmp_path / "e.jsonl"), snapshots=None,
                  stats_every=1e-6, show=False, log=lines.append)
    assert (summary.frames, summary.stopped_by, summary.corrupt_skipped) == (30, "end", 0)
    assert summary.events == 4 == len(jsonl(tmp_path / "e.jsonl"))
    assert summary.latency_ms["p50"] > 0 and summary.latency_ms["p95"] >= summary.latency_ms["p50"]
    assert summary.sinks[f"jsonl:{tmp_path / 'e.jsonl'}"]["delivered"] == 4
    stats_lines = [line for line in lines if line.startswith("[stats]")]
    assert stats_lines and all(k in stats_lines[-1] for k in ("fps=", "latency_ms p50=", "p95=", "events=",
                                                              "dropped_stale=", "sink_dropped="))
    assert "stopped by end: 30 frames" in summary.text()


def test_max_frames_and_duration_bound_a_run(tiny_bundle, part_frames, tmp_path):
    frames = alternating(part_frames, 20, 5)
    s = run(tiny_bundle, ListSource(frames), events=str(tmp_path / "a.jsonl"), **quiet(max_frames=7))
    assert (s.frames, s.stopped_by) == (7, "max_frames")

    class Slow(ListSource):
        def read(self):
            time.sleep(0.01)
            return super().read()

    s = run(tiny_bundle, Slow(frames * 100), events=str(tmp_path / "b.jsonl"), **quiet(duration=0.3))
    assert s.stopped_by == "duration" and 0 < s.frames < len(frames) * 100


def test_stop_event_from_another_thread_ends_the_run_cleanly(tiny_bundle, part_frames, tmp_path):
    frames = [part_frames["defect"][0]] * 100_000
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    s = run(tiny_bundle, ListSource(frames), events=str(tmp_path / "e.jsonl"), stop=stop, **quiet())
    assert s.stopped_by == "stop" and s.frames < len(frames)
    # The open defect was closed on the way out.
    assert [e["type"] for e in jsonl(tmp_path / "e.jsonl")] == ["defect_start", "defect_end"]


def test_corrupt_frames_are_skipped_and_counted(tiny_bundle, part_frames, tmp_path):
    good = part_frames["defect"][0]
    bad = [None, np.zeros((0, 0, 3), np.uint8), good.astype(np.uint16), np.zeros((4, 4, 2), np.uint8),
           "not a frame"]
    frames = [good, bad[0], good, bad[1], bad[2], good, bad[3], bad[4], good, good]
    grey = cv2.cvtColor(good, cv2.COLOR_BGR2GRAY)  # a grey camera is fine, not corrupt
    s = run(tiny_bundle, ListSource(frames + [grey]), events=str(tmp_path / "e.jsonl"), **quiet(k=3, n=5))
    assert (s.frames, s.corrupt_skipped) == (6, 5)
    events = jsonl(tmp_path / "e.jsonl")
    assert [e["type"] for e in events] == ["defect_start", "defect_end"]
    assert events[0]["frame_index"] == 5  # the third usable frame; corrupt ones do not count


class FlakyCamera(Device):
    """A camera that is unplugged after ``fail_after`` frames the first time it is opened."""

    def __init__(self, frames: list[np.ndarray], fail_after: int | None):
        self.frames, self.fail_after, self.n = frames, fail_after, 0

    def open(self) -> None:
        pass

    def grab(self) -> np.ndarray | None:
        time.sleep(0.003)  # a camera delivers at its own pace
        if self.fail_after is not None and self.n >= self.fail_after:
            return None  # what cv2.VideoCapture.read gives once the device is gone
        self.n += 1
        return self.frames[self.n % len(self.frames)]


def test_a_live_source_that_dies_mid_stream_is_reopened_and_the_run_continues(tiny_bundle, part_frames,
                                                                               tmp_path):
    opened = []

    def make_device():
        opened.append(FlakyCamera(alternating(part_frames, 4, 10), fail_after=25 if not opened else None))
        return opened[-1]

    source = LiveSource("flaky-cam", make_device, policy=ReconnectPolicy(backoff_initial=0.05))
    s = run(tiny_bundle, source, events=str(tmp_path / "e.jsonl"), **quiet(max_frames=60))
    assert (s.stopped_by, s.frames) == ("max_frames", 60)  # well past the 25 frames of the first device
    assert len(opened) >= 2 and s.source["reconnects"] >= 1 and s.source["disconnects"] >= 1
    assert opened[1].n > 0  # frames came from the reopened device


def test_without_reconnect_a_lost_live_source_ends_the_run(tiny_bundle, part_frames, tmp_path):
    source = LiveSource("one-shot", lambda: FlakyCamera(part_frames["ok"], fail_after=10), reconnect=False)
    s = run(tiny_bundle, source, events=str(tmp_path / "e.jsonl"), **quiet())
    assert s.stopped_by == "end" and 1 <= s.frames <= 10 and s.source["reconnects"] == 0


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


def test_a_dead_webhook_does_not_slow_the_loop(tiny_bundle, part_frames, tmp_path):
    """Throughput with and without a webhook to a closed port, interleaved, as a ratio."""
    frames = alternating(part_frames, 60, 20)  # 1200 frames, 30 defective parts: 60 events
    hook = f"webhook:http://127.0.0.1:{closed_port()}/reject"
    fps: dict[str, list[float]] = {"plain": [], "webhook": []}
    for i in range(4):
        name = "plain" if i % 2 == 0 else "webhook"
        events = tmp_path / f"{i}.jsonl"
        # drain_timeout: the log flushes in well under it; the dead webhook is cut off at it.
        s = run(tiny_bundle, ListSource(frames), events=str(events),
                sinks=[hook] if name == "webhook" else [], drain_timeout=2.0,
                **quiet(k=3, n=5, snapshots=None))
        fps[name].append(s.fps)
        assert len(jsonl(events)) == s.events == 60  # the log got every event either way
        if name == "webhook":
            webhook = next(v for k, v in s.sinks.items() if k.startswith("webhook"))
            # Nothing dropped: the 60 wait in the event log for the receiver (at least once).
            assert webhook["delivered"] == 0 and webhook["pending"] == 60
    ratio = max(fps["webhook"]) / max(fps["plain"])
    print(f"dead-webhook throughput ratio {ratio:.2f} ({fps})")
    assert ratio > 0.5, f"loop throughput with a dead webhook is {ratio:.2f}x of without ({fps})"


def test_unusable_requests_fail_before_anything_runs(tiny_bundle, part_frames, tmp_path):
    src = lambda: ListSource([part_frames["ok"][0]])  # noqa: E731
    with pytest.raises(BundleError, match="unknown classes"):
        run(tiny_bundle, src(), events=str(tmp_path / "e.jsonl"), thresholds={"no-such-class": 0.5},
            **quiet())
    with pytest.raises(EdgeFlagError, match="needs an OpenCV build with a GUI"):
        run(tiny_bundle, src(), events=str(tmp_path / "e.jsonl"), stats_every=0, show=True)
    with pytest.raises(EdgeFlagError, match="could not open|no such|not"):
        run(tiny_bundle, "/no/such/video.mp4", events=str(tmp_path / "e.jsonl"), **quiet())


def test_a_bad_source_fails_before_the_model_loads_and_writes_nothing(tiny_bundle, tmp_path):
    video = tmp_path / "line.mp4"
    video.write_bytes(b"not checked: the spec is refused first")
    # A stretching model could use a camera's scaler, so --camera-resize on a file is a mistake to refuse
    # (an aspect-keeping one resizes on the CPU anyway: see test_sources_camera_resize).
    stretching = tmp_path / "stretching"
    shutil.copytree(tiny_bundle, stretching)
    meta = json.loads((stretching / "bundle.json").read_text())
    meta["input"]["resize"] = "stretch"
    (stretching / "bundle.json").write_text(json.dumps(meta))
    for source, settings in (("/no/such/video.mp4", {}), ("rstp://cam/stream", {}),
                             (str(video), {"camera_resize": True})):
        with pytest.raises(EdgeFlagError):
            run(stretching, source, events=str(tmp_path / "events" / "e.jsonl"),
                snapshots=str(tmp_path / "events" / "snaps"), **settings, **quiet())
    assert not (tmp_path / "events").exists()  # no empty log, no snapshot folder


def test_rejected_artifacts_need_allow_rejected(tiny_bundle, tmp_path):
    bundle_dir = tmp_path / "b"
    shutil.copytree(tiny_bundle, bundle_dir)
    meta = json.loads((bundle_dir / "bundle.json").read_text())
    first = Bundle.load(bundle_dir).select().name
    for a in meta["artifacts"]:
        if a["name"] == first:
            a["gate"]["status"] = "rejected"
    (bundle_dir / "bundle.json").write_text(json.dumps(meta))
    bundle = Bundle.load(bundle_dir)
    assert choose_artifact(bundle, CameraConfig()).name != first  # falls back to a passed one
    with pytest.raises(BundleError, match="rejected.*--allow-rejected"):
        choose_artifact(bundle, CameraConfig(artifact=first))
    assert choose_artifact(bundle, CameraConfig(artifact=first, allow_rejected=True)).name == first
