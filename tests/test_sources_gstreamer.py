"""GStreamer pipelines through a real GStreamer-enabled OpenCV (the Jetson's way to its cameras).

PyPI's OpenCV wheels have no GStreamer, so in the project's venv these tests skip; they run with
a system OpenCV (Debian's python3-opencv, JetPack's) in a ``--system-site-packages`` venv:
``videotestsrc`` stands in for the camera, its end of stream for a camera that goes away.
"""

from __future__ import annotations

import pytest

from runtime.sources import ReconnectPolicy, open_source
from runtime.sources.gstreamer import APPSINK, gstreamer_available

pytestmark = pytest.mark.skipif(not gstreamer_available(),
                                reason="this OpenCV has no GStreamer (PyPI wheels never do); run with a "
                                       "system OpenCV, e.g. Debian's python3-opencv, to exercise pipelines")

POLICY = ReconnectPolicy(stall_timeout=2.0, backoff_initial=0.05, backoff_max=0.2)


def pipeline(frames: int = 0) -> str:
    limit = f" num-buffers={frames}" if frames else ""
    return (f"videotestsrc{limit} pattern=ball ! video/x-raw, width=64, height=48, framerate=50/1 ! "
            f"videoconvert ! video/x-raw, format=BGR ! {APPSINK}")


def test_a_pipeline_delivers_bgr_frames_and_is_reopened_at_end_of_stream():
    with open_source(pipeline(frames=15), policy=POLICY) as src:
        frames = []
        while src.stats["reconnects"] < 1:
            frame = src.read()
            assert frame is not None, src.stats
            frames.append(frame)
        frames.append(src.read())
        stats = src.stats
    assert all(f.image.shape == (48, 64, 3) for f in frames)
    assert stats["disconnects"] >= 1 and stats["source"].startswith("gstreamer:videotestsrc")

