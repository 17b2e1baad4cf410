"""At-least-once delivery: remote sinks follow the durable event log with a durable cursor.

Real receivers throughout: a local HTTP server that is down (nothing listening on its port),
then up; the camera program in a real subprocess killed with SIGKILL and restarted; and, when
Debian's ``mosquitto`` is installed, a real broker restarted mid-run.
"""

from __future__ import annotations

import getpass
import json
import shutil
import signal
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from runtime.sinks import SinkDispatcher, make_sink
from runtime.sinks.follower import Backoff, LogFollower, cursor_path
from runtime.sinks.webhook import RetryPolicy, WebhookSink
from tests.runtime_support import belt, require_confident_parts, start_camera, wait_for

FAST = RetryPolicy(tries=1, timeout=2.0, backoff_initial=0.01, backoff_max=0.01)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    """A webhook receiver on a fixed loopback port that can be down (not listening) and up."""

    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.ids: list[str] = []
        self._httpd = None

    def up(self) -> None:
        ids = self.ids

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                ids.append(json.loads(self.rfile.read(int(self.headers["Content-Length"])))["id"])
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def down(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.down()


def logged_ids(path: Path) -> list[str]:
    """Ids of the complete events in a log (a line torn by SIGKILL is not an event)."""
    ids = []
    for line in path.read_text().splitlines():
        try:
            ids.append(json.loads(line)["id"])
        except ValueError:
            continue
    return ids


def first_seen(ids: list[str]) -> list[str]:
    """Ids in the order they first arrived (at least once allows repeats; receivers drop them)."""
    return list(dict.fromkeys(ids))


def dispatcher_for(log: Path, url: str) -> SinkDispatcher:
    follower = LogFollower(WebhookSink(url, retry=FAST), log, backoff=Backoff(0.02, 0.1))
    return SinkDispatcher([make_sink(f"jsonl:{log}")], followers=[follower])


def test_every_event_gets_a_unique_id_and_a_given_one_is_kept(tmp_path):
    log = tmp_path / "events.jsonl"
    d = SinkDispatcher([make_sink(f"jsonl:{log}")])
    for i in range(3):
        d.emit({"type": "defect_start", "frame_index": i})
    d.emit({"type": "defect_end", "id": "given-1"})
    d.close()
    ids = logged_ids(log)
    assert len(set(ids)) == 4 and ids[-1] == "given-1"


def test_receiver_down_then_up_gets_every_event_in_order(tmp_path, receiver):
    log = tmp_path / "events.jsonl"
    d = dispatcher_for(log, receiver.url)
    for i in range(5):
        d.emit({"type": "defect_start", "frame_index": i})
    wait_for(lambda: d.stats[next(iter(d.stats))]["delivered"] == 5, what="the event log written")
    time.sleep(0.5)  # the follower is retrying against a closed port meanwhile
    follower_stats = d.stats[f"webhook:{receiver.url}"]
    assert follower_stats["delivered"] == 0 and follower_stats["pending"] == 5
    assert follower_stats["oldest_pending_s"] is not None and follower_stats["failed_attempts"] >= 1
    receiver.up()
    d.close(timeout=10)
    assert receiver.ids == logged_ids(log)
    after = d.stats[f"webhook:{receiver.url}"]
    assert (after["delivered"], after["pending"], after["oldest_pending_s"]) == (5, 0, None)


def test_what_is_left_at_shutdown_goes_out_on_the_next_start(tmp_path, receiver):
    log = tmp_path / "events.jsonl"
    d = dispatcher_for(log, receiver.url)
    for i in range(3):
        d.emit({"type": "defect_start", "frame_index": i})
    d.close(timeout=0.5)  # receiver down: nothing can go out
    assert d.stats[f"webhook:{receiver.url}"]["pending"] == 3
    saved = json.loads(cursor_path(log, f"webhook:{receiver.url}").read_text())
    assert saved["offset"] == 0 and saved["delivered_total"] == 0

    receiver.up()
    d = dispatcher_for(log, receiver.url)  # the runtime restarted
    d.emit({"type": "defect_start", "frame_index": 3})
    d.close(timeout=10)
    assert receiver.ids == logged_ids(log) and len(receiver.ids) == 4
    saved = json.loads(cursor_path(log, f"webhook:{receiver.url}").read_text())
    assert saved["offset"] == log.stat().st_size and saved["delivered_total"] == 4


def test_a_new_receiver_starts_at_the_end_and_a_torn_line_is_skipped(tmp_path, receiver):
    log = tmp_path / "events.jsonl"
    log.write_text(json.dumps({"id": "old-1", "type": "defect_start"}) + "\n")
    receiver.up()
    d = dispatcher_for(log, receiver.url)  # first start with this receiver: old history not replayed
    d.emit({"type": "defect_start", "id": "new-1"})
    d.close(timeout=10)
    assert receiver.ids == ["new-1"]

    with open(log, "a") as f:
        f.write('{"id": "torn-by-kill')  # what a kill -9 mid-write leaves
    d = dispatcher_for(log, receiver.url)  # the event log terminates the torn line on reopen
    d.emit({"type": "defect_end", "id": "new-2"})
    d.close(timeout=10)
    assert receiver.ids == ["new-1", "new-2"]
    assert d.stats[f"webhook:{receiver.url}"]["skipped"] == 1


def test_camera_killed_and_restarted_while_the_receiver_was_down_loses_no_event(
        tiny_bundle, tiny_run, tmp_path, receiver):
    parts = require_confident_parts(tiny_bundle, tiny_run)
    video = tmp_path / "busy.mp4"
    belt(tiny_run, parts, "od" * 100, video, frames_per_part=4, fps=50)  # 16 s paced, an event per 80 ms
    events, err = tmp_path / "events.jsonl", tmp_path / "stderr1.txt"
    args = ("--bundle", str(tiny_bundle), "--source", str(video), "--headless", "--k", "2", "--n", "2",
            "--events", str(events), "--sink", f"webhook:{receiver.url}", "--drain-timeout", "20")
    first = start_camera(*args, "--realtime", stderr_path=err)
    try:
        wait_for(lambda: events.exists() and events.read_text().count("\n") >= 10, what="10 logged events")
        time.sleep(2.0)  # the receiver stays down a while longer
        receiver.up()
        wait_for(lambda: len(receiver.ids) >= 5, timeout=30, what=f"deliveries ({err.read_text()[-2000:]})")
        # Down again before the kill, so that the backlog does not hang on how fast the follower
        # catches up with an event every 80 ms: what is logged from here on cannot have gone out.
        receiver.down()
        delivered = len(receiver.ids)
        wait_for(lambda: len(logged_ids(events)) >= delivered + 3, timeout=30,
                 what=f"events logged after the receiver went down ({err.read_text()[-2000:]})")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        first.kill()
    assert first.returncode == -signal.SIGKILL
    logged_at_kill = logged_ids(events)
    assert len(receiver.ids) < len(logged_at_kill), "the kill came too late to leave a backlog"

    receiver.up()  # the restarted camera delivers the backlog, then what it logs itself
    second = start_camera(*args, stderr_path=tmp_path / "stderr2.txt")
    assert second.wait(timeout=120) == 0, (tmp_path / "stderr2.txt").read_text()[-3000:]
    log_ids = logged_ids(events)
    assert log_ids[: len(logged_at_kill)] == logged_at_kill and len(log_ids) > len(logged_at_kill)
    assert first_seen(receiver.ids) == log_ids  # every event, in order, none missing


# -- MQTT against a real broker ---------------------------------------------------------------
MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists()
                                          else None)


class Broker:
    """Debian's mosquitto on loopback, with persistence, restartable on the same port."""

    def __init__(self, root: Path):
        self.port = free_port()
        self.conf = root / "mosquitto.conf"
        (root / "db").mkdir()
        # Started as root, mosquitto drops to the 'mosquitto' user unless told otherwise; that user
        # cannot write the test's tmp dir, the save on SIGTERM fails and the subscriber's session
        # (and what was queued for it) is gone after the restart. Run it as whoever runs the test.
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
                             f"persistence_location {root / 'db'}/\nuser {getpass.getuser()}\n"
                             f"log_type all\nlog_dest stderr\n")
        self.log = root / "mosquitto.log"
        self.proc = None

    def start(self) -> None:
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=open(self.log, "a"))
        wait_for(self._listening, timeout=10, what="mosquitto listening")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()  # SIGTERM: mosquitto saves its persistence file
            self.proc.wait(timeout=10)
            self.proc = None
            log = self.log.read_text()
            assert "Error saving" not in log, f"mosquitto could not save its sessions:\n{log[-2000:]}"

    def _listening(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            return True
        except OSError:
            return False


@pytest.fixture
def broker(tmp_path):
    if MOSQUITTO is None:
        pytest.skip("mosquitto is not installed (Debian: apt-get install mosquitto); .ci/run installs it")
    pytest.importorskip("paho.mqtt.client", reason="paho-mqtt is not installed (pip install 'paho-mqtt>=2')")
    root = tmp_path / "broker"
    root.mkdir()
    b = Broker(root)
    b.start()
    yield b
    b.stop()


def subscriber(port: int, topic: str) -> tuple[object, list[str]]:
    """A QoS 1 subscriber on a persistent session (it gets what was queued while it was away)."""
    import paho.mqtt.client as mqtt

    ids: list[str] = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="line-plc", clean_session=False)
    client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
    client.on_message = lambda c, u, m: ids.append(json.loads(m.payload)["id"])
    client.reconnect_delay_set(min_delay=1, max_delay=2)
    client.connect_async("127.0.0.1", port)
    client.loop_start()
    return client, ids


def test_mqtt_broker_restarted_mid_run_loses_no_event(tiny_bundle, tiny_run, tmp_path, broker):
    parts = require_confident_parts(tiny_bundle, tiny_run)
    video = tmp_path / "busy.mp4"
    belt(tiny_run, parts, "od" * 60, video, frames_per_part=4, fps=50)  # about 10 s paced
    client, received = subscriber(broker.port, "line3/defects")
    wait_for(client.is_connected, timeout=10, what="the subscriber connected")
    events, err = tmp_path / "events.jsonl", tmp_path / "stderr.txt"
    proc = start_camera("--bundle", str(tiny_bundle), "--source", str(video), "--headless", "--realtime",
                        "--k", "2", "--n", "2", "--events", str(events), "--drain-timeout", "30",
                        "--sink", f"mqtt://127.0.0.1:{broker.port}/line3/defects", stderr_path=err)
    try:
        wait_for(lambda: len(received) >= 5, timeout=60, what=f"MQTT deliveries ({err.read_text()[-2000:]})")
        broker.stop()
        time.sleep(2.0)  # events keep coming while the broker is down
        broker.start()
        assert proc.wait(timeout=120) == 0, err.read_text()[-3000:]
        log_ids = logged_ids(events)
        try:
            wait_for(lambda: len(set(received)) >= len(log_ids), timeout=30,
                     what="all events at the subscriber")
        except AssertionError:
            missing = [(i, e) for i, e in enumerate(log_ids) if e not in set(received)]
            raise AssertionError(
                f"{len(missing)} of {len(log_ids)} logged events never reached the subscriber "
                f"(position, id): {missing[:10]}; broker log tail:\n{broker.log.read_text()[-3000:]}\n"
                f"camera stderr tail:\n{err.read_text()[-3000:]}") from None
    finally:
        proc.kill()
        client.loop_stop()
    assert first_seen(received) == log_ids
