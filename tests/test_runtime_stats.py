"""Run statistics (FPS, latency percentiles, counters), the stats line and the overlay drawing."""

import numpy as np

from runtime.driver import RunSummary
from runtime.overlay import draw_overlay, gui_available
from runtime.stats import RunStats


class Clock:
    """A settable clock, so FPS and latency are exact numbers in the test."""

    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_fps_and_latency_percentiles_over_the_interval():
    clock = Clock()
    stats = RunStats(clock=clock)
    for i in range(20):  # 20 frames in 2 s, each decided 10 ms (i < 19) or 110 ms after capture
        clock.now += 0.1
        stats.record(captured=clock.now - (0.11 if i == 19 else 0.01), began=clock.now - 0.005,
                     decided=clock.now, flagged=i % 4 == 0)
    stats.events, stats.corrupt = 2, 1
    line = stats.line({"reconnects": 3})
    assert line.startswith("[stats] frames=20 fps=10.0 latency_ms p50=10.0 p95=")
    assert "events=2 flagged_frames=5 corrupt=1 reconnects=3" in line
    p95 = float(line.split("p95=")[1].split()[0])
    assert 10.0 < p95 <= 110.0  # the one slow frame shows in p95, not in p50
    # The next line covers only the frames since this one.
    clock.now += 1.0
    assert "fps=0.0 latency_ms p50=- p95=-" in stats.line()


def test_summary_freezes_at_stop_and_keeps_bounded_memory():
    clock = Clock()
    stats = RunStats(window=50, clock=clock)
    for _ in range(500):
        clock.now += 0.01
        stats.record(clock.now - 0.002, clock.now - 0.001, clock.now, False)
    stats.stop()
    clock.now += 60  # shutdown time (sinks draining) is not frame processing
    s = stats.summary()
    assert s["frames"] == 500 and s["seconds"] == 5.0 and s["fps"] == 100.0
    assert abs(s["latency_ms"]["p50"] - 2.0) < 1e-6 and abs(s["compute_ms"]["p95"] - 1.0) < 1e-6
    assert len(stats._latency) == 50
    assert stats.recent_fps is not None and abs(stats.recent_fps - 100.0) < 1e-6


def test_summary_text_lists_why_it_stopped_and_the_io_counters():
    summary = RunSummary(frames=10, seconds=2.0, fps=5.0, latency_ms={"p50": 3.0, "p95": 4.0},
                         compute_ms={"p50": 2.0, "p95": None}, events=2, flagged_frames=4, corrupt_skipped=1,
                         stopped_by="SIGTERM", artifact="tflite-int8", engine={},
                         source={"source": "0", "reconnects": 2, "dropped_stale": 7},
                         sinks={"jsonl:e.jsonl": {"delivered": 2, "dropped": 0}})
    text = summary.text()
    assert "stopped by SIGTERM: 10 frames in 2.0 s (5.0 fps), 2 events" in text
    assert "p50=3.0 p95=4.0" in text and "compute ms p50=2.0 p95=-" in text
    assert "reconnects=2, dropped_stale=7" in text and "jsonl:e.jsonl delivered=2 dropped=0" in text


def test_overlay_draws_on_a_copy():
    frame = np.full((240, 320, 3), 128, np.uint8)
    ok = draw_overlay(frame, "ok", 0.97, False, 29.5, 12.3, active=False)
    bad = draw_overlay(frame, "crack", 0.91, True, None, None, active=True)
    assert (frame == 128).all()  # the camera frame itself is untouched
    assert ok.shape == frame.shape and not np.array_equal(ok, frame)
    assert (bad[120, 0] == (0, 0, 255)).all() and (ok[120, 0] == 128).all()  # red frame = open defect
    assert not np.array_equal(ok[:60], bad[:60])


def test_overlay_text_fits_a_small_frame():
    frame = np.full((96, 96, 3), 255, np.uint8)  # the demo conveyor video's frame size
    out = draw_overlay(frame, "defect", 1.0, True, 10.0, 1.5, active=False)
    text_rows = out[:30]
    assert (text_rows[:, -2:] == 255).all()  # the label box ends inside the frame, score included
    assert (text_rows[:, :80] == 0).all(axis=-1).any()  # and is still drawn


def test_gui_detection_matches_this_opencv_build():
    import cv2

    info = cv2.getBuildInformation()
    gui_line = next(line for line in info.splitlines() if line.strip().startswith("GUI:"))
    assert gui_available() == ("NONE" not in gui_line.upper())
