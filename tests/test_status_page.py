"""``--http``: the status page, ``/metrics`` (parsed by prometheus-client) and ``/healthz``, served
by a real run of the loop on the tiny bundle."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request

import cv2
import numpy as np
import pytest

from runtime.errors import EdgeFlagError
from runtime.session import run
from runtime.sources.base import Frame
from runtime.status.server import JpegCache, parse_listen
from tests.runtime_support import ListSource, alternating, frames_of_parts, quiet, wait_for

pytest.importorskip("prometheus_client")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
PHONE = (390, 844)  # CSS px of a common phone in portrait


class StallingSource(ListSource):
    """Its frames, then nothing (a camera that stopped sending) until the run is stopped."""

    def read(self) -> Frame | None:
        frame = super().read()
        while frame is None and not self.stopped:
            time.sleep(0.05)
        return frame


def get(url: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read(), r.headers["Content-Type"]
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers["Content-Type"]


@pytest.fixture(scope="module")
def served(tiny_bundle, tiny_run, tmp_path_factory):
    """A run serving --http on a free loopback port: 10 parts, then the source stalls."""
    frames = alternating(frames_of_parts(tiny_bundle, tiny_run), 10, 6)
    lines: list[str] = []
    stop = threading.Event()
    out: dict = {}
    events = tmp_path_factory.mktemp("status") / "events.jsonl"
    thread = threading.Thread(target=lambda: out.setdefault("summary", run(
        tiny_bundle, StallingSource(frames), stop=stop, log=lines.append, events=str(events),
        http="127.0.0.1:0", health_stall=1.0, **quiet(k=3, n=5, snapshots=None))), daemon=True)
    thread.start()
    line = wait_for(lambda: next((x for x in lines if "status page" in x), None), what="the status page")
    base = re.search(r"(http://\S+/)", line).group(1)
    wait_for(lambda: json.loads(get(base + "status.json")[1])["frames"] == len(frames), what="all frames")
    yield base, len(frames), stop, thread, out, events
    stop.set()
    thread.join(30)


def test_metrics_parse_and_count_what_the_run_counted(served):
    from prometheus_client.parser import text_string_to_metric_families

    base, n_frames, *_ = served
    # The page's event counts come through a sink lane: wait until it has caught up with the loop.
    wait_for(lambda: b'type="defect_end"} 4.0' in get(base + "metrics")[1], what="the events counted")
    status, body, kind = get(base + "metrics")
    assert status == 200 and kind.startswith("text/plain")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(body.decode()) for s in family.samples}
    assert samples[("edgeflag_frames_total", ())] == n_frames
    assert samples[("edgeflag_frame_latency_seconds_count", ())] == n_frames
    starts = sum(v for (name, labels), v in samples.items()
                 if name == "edgeflag_events_total" and ("type", "defect_start") in labels)
    assert starts == 5  # 5 defective parts, k=3 of their 6 frames each
    events = sum(v for (name, _), v in samples.items() if name == "edgeflag_events_total")
    assert json.loads(get(base + "status.json")[1])["events"] == events == 9  # the last defect is still open


def test_healthz_turns_unhealthy_when_the_source_stalls(served):
    base, *_ = served
    # The source stalled after its last frame; health_stall is 1 s.
    status, body, _ = wait_for(lambda: (r := get(base + "healthz"))[0] == 503 and r, timeout=15,
                               what="/healthz to turn unhealthy")
    assert "no frame for" in json.loads(body)["problems"][0]


def test_page_frame_and_snapshots_are_served_and_nothing_can_be_changed(served):
    base, *_ = served
    status, body, kind = get(base)
    assert status == 200 and "text/html" in kind
    page = body.decode()
    assert 'name="viewport"' in page and 'src="/frame.jpg"' in page and "/snapshot/0.jpg" in page
    for path in ("frame.jpg", "snapshot/0.jpg"):
        status, body, kind = get(base + path)
        assert status == 200 and kind == "image/jpeg"
        assert cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR) is not None
    request = urllib.request.Request(base + "healthz", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=10)
    assert err.value.code == 405
    assert get(base + "etc/passwd")[0] == 404


@pytest.mark.skipif(not CHROMIUM, reason="no Chromium to check the page in (apt-get install chromium)")
def test_a_real_browser_on_a_phone_screen_shows_what_the_runtime_reports(served, tmp_path):
    base, n_frames, *_ = served
    # Wait for a page that no longer changes: the source has stalled (unhealthy) and the sinks caught up.
    wait_for(lambda: get(base + "healthz")[0] == 503, timeout=15, what="/healthz to turn unhealthy")
    wait_for(lambda: json.loads(get(base + "status.json")[1])["events"] == 9, what="the events counted")
    status = json.loads(get(base + "status.json")[1])
    browser = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               "--force-device-scale-factor=1", f"--window-size={PHONE[0]},{PHONE[1]}",
               f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*browser, "--dump-dom", base], capture_output=True, text=True,
                         timeout=120).stdout
    shot = tmp_path / "phone.png"
    subprocess.run([*browser, f"--screenshot={shot}", base], capture_output=True, timeout=120)
    # The page as Chromium built it holds the runtime's own figures.
    cells = dict(re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td></tr>", dom))
    assert cells["frames"] == str(status["frames"]) == str(n_frames), cells
    assert cells["events"] == str(status["events"]) and "UNHEALTHY" in dom and "no frame for" in dom
    # The screenshot: phone-wide, the live frame drawn where it can be seen, the health line in red.
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[1] == PHONE[0], getattr(image, "shape", None)
    frame = cv2.imdecode(np.frombuffer(get(base + "frame.jpg")[1], np.uint8), cv2.IMREAD_COLOR)
    usable = PHONE[0] - 16  # body margin 0.5em each side; wider frames are scaled to fit (max-width)
    if frame.shape[1] > usable:
        frame = cv2.resize(frame, (usable, round(frame.shape[0] * usable / frame.shape[1])),
                           interpolation=cv2.INTER_AREA)
    match = cv2.matchTemplate(image, frame, cv2.TM_CCOEFF_NORMED)
    assert match.max() > 0.9, f"the live frame is not on the screen (best match {match.max():.2f})"
    b, g, r = cv2.split(image.astype(int))
    assert int(((r > 140) & (g < 60) & (b < 60)).sum()) > 50, "no red health warning drawn"


# Last of the tests on `served`: it stops the run.
def test_summary_matches_what_metrics_said(served):
    from prometheus_client.parser import text_string_to_metric_families

    base, n_frames, stop, thread, out, _ = served
    body = get(base + "metrics")[1].decode()
    frames = next(s.value for f in text_string_to_metric_families(body) for s in f.samples
                  if s.name == "edgeflag_frames_total")
    stop.set()
    thread.join(30)
    assert out["summary"].frames == frames == n_frames


def test_listen_spec_is_checked():
    assert parse_listen("8080") == ("127.0.0.1", 8080)
    assert parse_listen("0.0.0.0:9000") == ("0.0.0.0", 9000)
    with pytest.raises(EdgeFlagError, match="HOST:PORT"):
        parse_listen("localhost:http")


def test_jpeg_cache_encodes_each_image_once_and_stays_bounded():
    cache = JpegCache(keep=2)
    a, b, c = (np.full((32, 48, 3), v, np.uint8) for v in (10, 120, 240))
    first = cache.encode(a)
    assert cv2.imdecode(np.frombuffer(first, np.uint8), cv2.IMREAD_COLOR).shape == (32, 48, 3)
    assert cache.encode(a) is first  # a refresh of the same frame re-encodes nothing
    assert cache.encode(a.copy()) is not first  # keyed by the object the board holds, not by equal pixels
    cache.encode(b), cache.encode(c)
    assert len(cache._items) == 2 and cache.encode(a) is not first  # oldest evicted: memory bounded
