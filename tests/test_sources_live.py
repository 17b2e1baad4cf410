"""Live sources: latest-frame semantics, reconnects with backoff, stalls, stop.

The devices here are small real :class:`Device` implementations (numpy frames, threading
events), and one test drives a real ``cv2.VideoCapture`` over a video file as a live device.
Every wait is condition-based with a generous ceiling; nothing asserts on elapsed time.
"""

from __future__ import annotations

import itertools
import threading
import time

import cv2
import numpy as np
import pytest

from runtime.sources import Device, LiveSource, ReconnectPolicy, SourceError, as_bgr
from runtime.sources.capture import CaptureSource

FAST = ReconnectPolicy(stall_timeout=0.5, backoff_initial=0.01, backoff_max=0.05)
CEILING_S = 20.0  # generous upper bound for condition waits on a loaded machine


def wait_until(predicate, what: str) -> None:
    deadline = time.monotonic() + CEILING_S
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def stamped(n: int) -> np.ndarray:
    """A frame whose pixels carry its serial number (so a test can tell frames apart)."""
    return np.full((8, 8, 3), n % 256, np.uint8)


class GatedCamera(Device):
    """Produces one frame per permit: the test decides exactly when frames exist."""

    def __init__(self):
        self.permits = threading.Semaphore(0)
        self.serial = itertools.count()
        self.closed = threading.Event()

    def open(self) -> None:
        pass

    def grab(self):
        while not self.permits.acquire(timeout=0.05):
            if self.closed.is_set():
                return None
        return stamped(next(self.serial))

    def close(self) -> None:
        self.closed.set()


def test_reader_keeps_only_the_newest_frame():
    camera = GatedCamera()
    src = LiveSource("gated", lambda: camera, policy=ReconnectPolicy(stall_timeout=60))
    with src:
        camera.permits.release(5)
        wait_until(lambda: src.stats["captured"] == 5, "5 captured frames")
        newest = src.read()
        assert newest.index == 4 and newest.image[0, 0, 0] == 4  # the newest, not the oldest
        assert src.stats["dropped_stale"] == 4  # frames 0..3 were overwritten unseen
        camera.permits.release(1)
        nxt = src.read()  # blocks until a *new* frame: never the same frame twice
        assert nxt.index == 5 and nxt.image[0, 0, 0] == 5
        assert nxt.age() >= 0
        src.stop()
        camera.permits.release(1)  # the reader thread exits after its current (blocking) read
    assert camera.closed.is_set()  # ... and closes the device itself


class FreeRunningCamera(Device):
    """A fast producer (about 1 kHz) with a frame counter in its pixels."""

    def __init__(self):
        self.serial = itertools.count()

    def open(self) -> None:
        pass

    def grab(self):
        time.sleep(0.001)
        return stamped(next(self.serial))


def test_slow_consumer_of_a_fast_producer_sees_increasing_indices_and_counted_drops():
    with LiveSource("fast", FreeRunningCamera, policy=FAST) as src:
        frames = []
        for _ in range(8):
            frames.append(src.read())
            time.sleep(0.02)  # the loop is busy with inference
        stats = src.stats
    indices = [f.index for f in frames]
    assert indices == sorted(set(indices))
    assert all(f.image[0, 0, 0] == f.index % 256 for f in frames)
    assert max(b - a for a, b in itertools.pairwise(indices)) > 1
    assert stats["dropped_stale"] > 0 and stats["frames"] == 8
    # Every captured frame was either delivered, overwritten, or is the one still waiting.
    assert stats["captured"] - stats["frames"] - stats["dropped_stale"] in (0, 1)


class DyingCamera(Device):
    """Each opened instance delivers ``per_open`` frames, then its reads fail (cable pulled)."""

    instances: list[DyingCamera] = []

    def __init__(self, per_open: int = 3, fail_opens: int = 0):
        self.left = per_open
        self.fail_opens = fail_opens
        self.closed = False
        DyingCamera.instances.append(self)

    def open(self) -> None:
        if len(DyingCamera.instances) - 1 <= self.fail_opens and len(DyingCamera.instances) > 1:
            raise SourceError("no such device (still unplugged)")

    def grab(self):
        if self.left == 0:
            return None
        self.left -= 1
        time.sleep(0.002)
        return stamped(self.left)

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def dying():
    DyingCamera.instances = []
    yield DyingCamera
    DyingCamera.instances = []


def test_a_camera_that_dies_mid_stream_is_reopened(dying):
    with LiveSource("dying", lambda: dying(per_open=3, fail_opens=2), policy=FAST) as src:
        indices = []
        while src.stats["reconnects"] < 2:
            frame = src.read()
            assert frame is not None
            indices.append(frame.index)
        stats = src.stats
    assert stats["disconnects"] >= 2 and stats["reconnects"] >= 2
    assert stats["open_failures"] == 2  # reopen attempts 1 and 2 found the camera still unplugged
    assert indices == sorted(set(indices)) and len(indices) >= 3  # indices continue across reconnects
    assert all(cam.closed for cam in dying.instances[:-1])


def test_without_reconnect_a_lost_camera_ends_the_stream(dying):
    with LiveSource("dying", lambda: dying(per_open=3), reconnect=False, policy=FAST) as src:
        frames = list(src)
        stats = src.stats
    assert 1 <= len(frames) <= 3 and stats["reconnects"] == 0 and stats["disconnects"] == 1
    assert len(dying.instances) == 1


def test_backoff_grows_exponentially_and_is_capped():
    policy = ReconnectPolicy(backoff_initial=0.5, backoff_max=10.0, backoff_factor=2.0)
    assert list(itertools.islice(policy.delays(), 7)) == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


class HangingCamera(Device):
    """First instance delivers 3 frames and then hangs inside grab() (a wedged driver)."""

    def __init__(self, release: threading.Event, registry: list):
        self.release, self.first = release, not registry
        self.sent = 0
        self.closed = threading.Event()
        registry.append(self)

    def open(self) -> None:
        pass

    def grab(self):
        if self.first and self.sent == 3:
            self.release.wait()
            return None
        self.sent += 1
        time.sleep(0.002)
        return stamped(self.sent)

    def close(self) -> None:
        self.closed.set()


def test_a_stalled_camera_is_abandoned_and_a_fresh_one_opened():
    release, devices = threading.Event(), []
    policy = ReconnectPolicy(stall_timeout=0.3, backoff_initial=0.01, backoff_max=0.05)
    try:
        with LiveSource("hanging", lambda: HangingCamera(release, devices), policy=policy) as src:
            while len(devices) < 2 or src.stats["captured"] < 6:
                assert src.read() is not None
            stats = src.stats
    finally:
        release.set()
    assert stats["stalls"] == 1 and stats["reconnects"] >= 1 and "stalled" in stats["last_error"]
    # The abandoned thread closes its own device once the driver lets go.
    assert devices[0].closed.wait(CEILING_S)


def test_stop_makes_a_blocked_read_return_none():
    camera = GatedCamera()  # never gets a permit: read() would block forever
    src = LiveSource("silent", lambda: camera, policy=ReconnectPolicy(stall_timeout=60))
    src.open()
    result = []
    reader = threading.Thread(target=lambda: result.append(src.read()))
    reader.start()
    threading.Timer(0.2, src.stop).start()
    reader.join(CEILING_S)
    assert not reader.is_alive() and result == [None]
    camera.permits.release(1)
    src.close()
    assert camera.closed.is_set()
    assert src.read() is None


class BrokenCamera(Device):
    def open(self) -> None:
        raise OSError("VIDIOC_STREAMON: No space left on device")

    def grab(self):
        return None


def test_first_open_failure_is_raised_at_once():
    with pytest.raises(SourceError, match="No space left on device"):
        LiveSource("broken", BrokenCamera).open()


class GlitchyCamera(Device):
    """Returns frames of odd shapes and types, as drivers do after a glitch."""

    def __init__(self):
        self.frames = iter([np.zeros((0, 0, 3), np.uint8), np.zeros((8, 8), np.uint8),
                            np.zeros((8, 8, 3), np.float32), np.zeros((8, 8, 4), np.uint8)])

    def open(self) -> None:
        pass

    def grab(self):
        return next(self.frames, None)


def test_glitched_frames_are_converted_or_skipped_and_counted():
    with LiveSource("glitchy", GlitchyCamera, reconnect=False, policy=FAST) as src:
        wait_until(lambda: src.stats["disconnects"] == 1, "the glitchy camera to run dry")
        frames = list(src)
        stats = src.stats
    assert stats["corrupt_skipped"] == 2  # the empty frame and the float frame
    assert stats["captured"] == 2 and len(frames) == 1  # grey and BGRA frames were usable
    assert frames[0].image.shape == (8, 8, 3)
    assert as_bgr(np.zeros((4, 4, 2), np.uint8)) is None


def test_a_real_capture_that_ends_is_reopened(tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (32, 24))
    for i in range(10):
        writer.write(np.full((24, 32, 3), 20 * i, np.uint8))
    writer.release()
    # End of file looks exactly like an unplugged camera to cv2.VideoCapture.read().
    with CaptureSource(str(path), cv2.CAP_FFMPEG, policy=FAST) as src:
        while src.stats["reconnects"] < 2:
            assert src.read() is not None
        stats = src.stats
    assert stats["disconnects"] >= 2 and stats["captured"] > 10  # read past one pass of the file
