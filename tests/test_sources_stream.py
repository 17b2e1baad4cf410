"""Network streams (``http://``) through OpenCV's FFMPEG backend, against a real MJPEG server.

The server below speaks the multipart MJPEG protocol of IP cameras over a real socket. The tests
cut it mid-stream and freeze it, which is what a camera on a factory network does when its
switch reboots or it hangs, and run the camera program over it end to end.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import pytest

from runtime.bundle import Bundle
from runtime.image_io import read_image
from runtime.sources import ReconnectPolicy, open_source
from tests.runtime_support import confident_parts, jsonl, run_camera
from train.conveyor import read_test_split

POLICY = ReconnectPolicy(stall_timeout=1.0, backoff_initial=0.05, backoff_max=0.2)
LEVEL_STEP = 40  # connection c streams flat frames of grey level 5 + 40 * c: readable back through JPEG


class MjpegServer:
    """An IP-camera-like MJPEG stream on 127.0.0.1; ``frames(connection)`` gives its pictures.

    ``cut_after`` frames, a connection is closed (``"drop"``) or left open and silent
    (``"freeze"``), once per connection up to ``faults`` times; later connections stream on.
    """

    def __init__(self, frames=None, *, cut_after: int = 0, mode: str = "drop", faults: int = 1,
                 fps: float = 50):
        self.frames = frames or (lambda c: np.full((48, 64, 3), 5 + LEVEL_STEP * c, np.uint8))
        self.cut_after, self.mode, self.faults, self.period = cut_after, mode, faults, 1.0 / fps
        self.connections = 0
        self.stopping = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):
                server.serve(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/stream.mjpg"

    def serve(self, handler) -> None:
        conn, self.connections = self.connections, self.connections + 1
        handler.send_response(200)
        handler.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        handler.end_headers()
        sent = 0
        try:
            while not self.stopping.is_set():
                if self.cut_after and conn < self.faults and sent == self.cut_after:
                    if self.mode == "freeze":
                        self.stopping.wait()  # socket open, nothing sent: a hung camera
                    return  # "drop": the connection closes mid-stream
                jpg = cv2.imencode(".jpg", self.frames(conn))[1].tobytes()
                handler.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%b\r\n"
                                    % (len(jpg), jpg))
                sent += 1
                time.sleep(self.period)
        except (BrokenPipeError, ConnectionResetError):  # the client went away: fine
            pass

    def __enter__(self) -> MjpegServer:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def connection_of(frame) -> int:
    return int(round((float(frame.image.mean()) - 5) / LEVEL_STEP))


def read_until(src, predicate, timeout: float = 30.0) -> list:
    frames, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = src.read()
        assert frame is not None, f"the stream ended: {src.stats}"
        frames.append(frame)
        if predicate(frame):
            return frames
    raise AssertionError(f"timed out; stats {src.stats}")


def test_frames_flow_from_a_network_stream():
    with MjpegServer() as server, open_source(server.url, policy=POLICY) as src:
        frames = [src.read() for _ in range(5)]
        stats = src.stats
    assert all(f.image.shape == (48, 64, 3) for f in frames)
    assert [f.index for f in frames] == sorted({f.index for f in frames})  # newest only, in order
    assert stats["live"] and stats["reconnects"] == 0 and stats["source"] == server.url


@pytest.mark.parametrize("mode", ["drop", "freeze"])
def test_a_stream_cut_or_hung_mid_stream_is_reopened(mode):
    with MjpegServer(cut_after=10, mode=mode) as server, open_source(server.url, policy=POLICY) as src:
        frames = read_until(src, lambda f: connection_of(f) == 1)
        stats = src.stats
    assert connection_of(frames[0]) == 0 and server.connections >= 2
    assert stats["disconnects"] >= 1 and stats["reconnects"] >= 1
    # A closed connection is a read error; a silent one is noticed by the stall timeout.
    assert stats["stalls"] == (1 if mode == "freeze" else 0)


def test_camera_program_flags_a_defective_part_seen_over_the_network(tiny_bundle, tiny_run, tmp_path):
    parts = confident_parts(tiny_bundle, tiny_run)
    defect = next(label for label in parts if label != Bundle.load(tiny_bundle).ok_label)
    bgr = cv2.cvtColor(read_image(read_test_split(tiny_run)[0] / parts[defect][0]), cv2.COLOR_RGB2BGR)
    events = tmp_path / "events.jsonl"
    with MjpegServer(lambda c: bgr, fps=25) as server:
        done = run_camera("--bundle", str(tiny_bundle), "--source", server.url, "--headless",
                          "--max-frames", "12", "--events", str(events), "--no-snapshots")
    assert done.returncode == 0, done.stderr
    assert "stopped by max_frames: 12 frames" in done.stderr
    log = jsonl(events)
    assert [e["type"] for e in log] == ["defect_start", "defect_end"]
    assert log[0]["label"] == defect and log[0]["source"] == server.url
