"""Event sinks and the dispatcher: JSONL log, snapshots, stdout, fan-out, drops, spec parsing."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from runtime.errors import EdgeFlagError
from runtime.sinks import SINK_FORMS, Sink, SinkDispatcher, SinkError, make_sink, snapshot_name
from runtime.sinks.jsonl import JsonlSink
from runtime.sinks.snapshots import SnapshotSink
from runtime.sinks.stdout import StdoutSink
from runtime.sinks.webhook import WebhookSink

CEILING_S = 20.0


def wait_until(predicate) -> None:
    deadline = time.monotonic() + CEILING_S
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.002)


def event(i: int = 0, **extra) -> dict:
    return {"type": "defect_start", "time": "2026-03-01T12:00:05.250+00:00", "frame_index": 120 + i,
            "label": "blowhole", "peak_score": np.float32(0.875), "frame_count": 3, **extra}


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


# -- JSONL ----------------------------------------------------------------------------------------
def test_jsonl_appends_one_parseable_line_per_event_and_reopens_without_truncating(tmp_path):
    path = tmp_path / "logs" / "events.jsonl"
    with JsonlSink(path) as sink:
        sink.handle(event(0), None)
        sink.handle(event(1, note="ünïcode"), np.zeros((4, 4, 3), np.uint8))
    with JsonlSink(path) as sink:  # a restart of the service
        sink.handle({"type": "defect_end", "frame_index": 130}, None)
    records = [json.loads(line) for line in lines(path)]
    assert [r["frame_index"] for r in records] == [120, 121, 130]
    assert records[0]["peak_score"] == pytest.approx(0.875)  # numpy scalar serialised as a number
    assert records[1]["note"] == "ünïcode"


def test_jsonl_terminates_a_torn_last_line_left_by_a_killed_run(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text('{"type": "defect_start", "frame_index": 1}\n{"type": "defect_st')
    with JsonlSink(path) as sink:
        sink.handle(event(), None)
    got = lines(path)
    assert len(got) == 3
    assert json.loads(got[0])["frame_index"] == 1
    assert got[1] == '{"type": "defect_st'  # kept as it was, on its own line
    assert json.loads(got[2])["frame_index"] == 120


def test_jsonl_commits_a_batch_with_one_fsync_and_reports_each_event(tmp_path, monkeypatch):
    import runtime.sinks.jsonl as jsonl

    fsyncs = []
    real_fsync = jsonl.os.fsync
    monkeypatch.setattr(jsonl.os, "fsync", lambda fd: (fsyncs.append(fd), real_fsync(fd)))
    path = tmp_path / "events.jsonl"
    with JsonlSink(path) as sink:
        fsyncs.clear()  # the directory entry's fsync at creation is not part of the batch
        outcomes = sink.handle_batch([(event(i), None) for i in range(5)])
    assert outcomes == [None] * 5 and len(fsyncs) == 1  # group commit: one fsync for five lines
    assert [json.loads(line)["frame_index"] for line in lines(path)] == [120 + i for i in range(5)]
    outcomes = sink.handle_batch([(event(5), None)])  # closed: every event reported as failed
    assert isinstance(outcomes[0], SinkError) and len(lines(path)) == 5


def test_jsonl_unwritable_path_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(SinkError, match="cannot open for appending"):
        JsonlSink(tmp_path / "file" / "events.jsonl")


# -- snapshots ------------------------------------------------------------------------------------
def test_snapshot_name_comes_from_time_frame_and_label():
    assert snapshot_name(event()) == "20260301T120005.250Z_f00000120_blowhole.jpg"
    assert snapshot_name({"time": "2026-03-01T13:00:05.250+01:00", "frame_index": np.int64(7),
                          "label": "burr/edge"}) == "20260301T120005.250Z_f00000007_burr-edge.jpg"
    assert snapshot_name({"time": "2026-03-01T12:00:05Z"}).startswith("20260301T120005.000Z_fNA_unknown")


def test_snapshot_is_an_annotated_jpeg_written_atomically(tmp_path):
    frame = np.full((240, 320, 3), 128, np.uint8)
    sink = SnapshotSink(tmp_path / "snaps")
    sink.handle(event(), frame)
    sink.handle({"type": "defect_end", "frame_index": 130}, None)  # no frame: no file
    files = sorted(p.name for p in (tmp_path / "snaps").iterdir())
    assert files == [snapshot_name(event())]  # no temp files left behind, nothing for defect_end
    jpeg = cv2.imread(str(tmp_path / "snaps" / files[0]))
    assert jpeg.shape == frame.shape
    banner, body = jpeg[:10, :60].astype(int), jpeg[-60:, -60:].astype(int)
    assert banner[..., 2].mean() > 150 and banner[..., 0].mean() < 100  # red label banner drawn
    assert np.abs(body - 128).max() < 12  # the rest of the picture untouched
    assert frame.max() == 128  # the shared frame was not drawn on


def test_snapshot_folder_keeps_only_the_newest_and_never_touches_other_files(tmp_path):
    folder = tmp_path / "snaps"
    folder.mkdir()
    earlier = [snapshot_name(event(i, time=f"2026-02-0{i + 1}T08:00:00+00:00")) for i in range(2)]
    for name in earlier + ["notes.txt", "reference.jpg"]:  # a previous run's snapshots + the user's files
        (folder / name).write_bytes(b"x")
    sink = SnapshotSink(folder, keep=3)
    new = [event(i, time=f"2026-03-01T12:00:0{i}+00:00") for i in range(4)]
    for ev in new:
        sink.handle(ev, np.zeros((32, 32, 3), np.uint8))
    left = sorted(p.name for p in folder.iterdir())
    assert left == sorted([snapshot_name(ev) for ev in new[1:]] + ["notes.txt", "reference.jpg"])
    assert sink.pruned == 3  # the two from before, then the oldest new one


def test_snapshot_folder_keeps_everything_with_keep_0(tmp_path):
    sink = SnapshotSink(tmp_path / "snaps", keep=0)
    for i in range(5):
        sink.handle(event(i, time=f"2026-03-01T12:00:0{i}+00:00"), np.zeros((8, 8, 3), np.uint8))
    assert len(list((tmp_path / "snaps").iterdir())) == 5 and sink.pruned == 0


def test_snapshot_uses_the_file_name_the_loop_put_in_the_event(tmp_path):
    sink = SnapshotSink(tmp_path / "snaps")
    ev = event(snapshot=str(tmp_path / "snaps" / "custom.jpg"))
    assert sink.path_for(ev) == tmp_path / "snaps" / "custom.jpg"
    sink.handle(ev, np.zeros((32, 32, 3), np.uint8))
    assert (tmp_path / "snaps" / "custom.jpg").is_file()


def test_stdout_prints_one_compact_line_per_event(capsys):
    StdoutSink().handle(event(), None)
    out = capsys.readouterr().out
    assert out == ("type=defect_start time=2026-03-01T12:00:05.250+00:00 frame_index=120 label=blowhole "
                   "peak_score=0.875 frame_count=3\n")


# -- dispatcher -----------------------------------------------------------------------------------
class Recorder(Sink):
    def __init__(self, name="recorder"):
        self.name = name
        self.events: list[dict] = []
        self.frames: list = []
        self.closed = False

    def handle(self, event, frame):
        self.events.append(event)
        self.frames.append(frame)

    def close(self):
        self.closed = True


class Blocking(Sink):
    """A sink stuck on a dead network share until released (or interrupted)."""

    name = "blocking"

    def __init__(self):
        self.entered, self.release = threading.Event(), threading.Event()
        self.handled = 0
        self.interrupted = False

    def handle(self, event, frame):
        self.entered.set()
        self.release.wait()
        self.handled += 1

    def interrupt(self):
        self.interrupted = True
        self.release.set()


class Failing(Sink):
    name = "failing"

    def handle(self, event, frame):
        raise OSError("disk full")


def test_a_blocked_sink_drops_its_own_events_and_never_stalls_the_others():
    blocked, recorder = Blocking(), Recorder()
    dispatcher = SinkDispatcher([blocked, recorder, Failing()], queue_size=4)
    dispatcher.emit(event(0))
    assert blocked.entered.wait(CEILING_S)  # the blocked sink holds event 0 in its handler
    for i in range(1, 20):
        dispatcher.emit(event(i))  # returns at once even though one sink is stuck
        # Healthy sinks keep up with a real loop's event rate; here, let them catch up each time.
        wait_until(lambda n=i + 1: dispatcher.stats["recorder"]["delivered"] == n
                   and dispatcher.stats["failing"]["failed"] == n)
    blocked.release.set()
    dispatcher.close()
    stats = dispatcher.stats
    assert [e["frame_index"] for e in recorder.events] == [120 + i for i in range(20)]  # all, in order
    assert stats["recorder"] == {"delivered": 20, "dropped": 0, "failed": 0, "pending": 0}
    assert stats["blocking"]["delivered"] == 5 and stats["blocking"]["dropped"] == 15  # 1 busy + 4 queued
    assert stats["failing"] == {"delivered": 0, "dropped": 0, "failed": 20, "pending": 0}
    assert recorder.closed


def test_close_interrupts_a_sink_that_does_not_finish_in_time():
    blocked = Blocking()
    dispatcher = SinkDispatcher([blocked])
    for i in range(5):
        dispatcher.emit(event(i))
    assert blocked.entered.wait(CEILING_S)
    dispatcher.close(timeout=0.2)
    stats = dispatcher.stats["blocking"]
    assert blocked.interrupted
    assert stats["delivered"] + stats["dropped"] == 5 and stats["dropped"] >= 4
    dispatcher.emit(event(9))  # after close: counted, not queued, no exception
    assert dispatcher.stats["blocking"]["dropped"] == stats["dropped"] + 1


class GroupRecorder(Recorder):
    """A group-commit sink whose first batch waits for a release; event 13 fails."""

    group_commit = True

    def __init__(self):
        super().__init__("group")
        self.batches: list[int] = []
        self.entered, self.release = threading.Event(), threading.Event()

    def handle_batch(self, items):
        self.entered.set()
        self.release.wait()
        self.batches.append(len(items))
        self.events += [e for e, _ in items]
        return [OSError("bad") if e["frame_index"] == 133 else None for e, _ in items]


def test_a_group_commit_sink_gets_what_queued_meanwhile_as_one_batch():
    group, recorder = GroupRecorder(), Recorder()
    dispatcher = SinkDispatcher([group, recorder])
    dispatcher.emit(event(0))
    assert group.entered.wait(CEILING_S)  # batch [0] in hand; the next 19 queue up meanwhile
    for i in range(1, 20):
        dispatcher.emit(event(i))
    group.release.set()
    dispatcher.close()
    assert group.batches == [1, 19]  # the backlog comes as one batch: one commit
    assert [e["frame_index"] for e in group.events] == [120 + i for i in range(20)]
    assert dispatcher.stats["group"] == {"delivered": 19, "dropped": 0, "failed": 1, "pending": 0}
    assert dispatcher.stats["recorder"]["delivered"] == 20


def test_sinks_get_a_private_copy_of_the_frame_and_event():
    recorder = Recorder()
    dispatcher = SinkDispatcher([recorder])
    frame = np.zeros((4, 4, 3), np.uint8)
    ev = event()
    dispatcher.emit(ev, frame)
    frame[:] = 255  # the loop reuses its buffer for the next frame
    ev["label"] = "changed"
    dispatcher.close()
    assert recorder.frames[0].max() == 0 and recorder.events[0]["label"] == "blowhole"


def test_duplicate_sink_names_are_kept_apart_in_stats():
    dispatcher = SinkDispatcher([Recorder("same"), Recorder("same")])
    dispatcher.emit(event())
    dispatcher.close()
    assert set(dispatcher.stats) == {"same", "same#2"}


# -- make_sink ------------------------------------------------------------------------------------
def test_extra_snapshot_sink_is_bounded_like_the_snapshots_flag(tmp_path):
    from runtime.session import open_sinks
    from runtime.settings import CameraConfig

    config = CameraConfig(events=str(tmp_path / "e.jsonl"), snapshots=str(tmp_path / "a"),
                          sinks=[f"snapshots:{tmp_path / 'b'}"], snapshots_keep=3)
    dispatcher = open_sinks(config)
    try:
        keeps = [lane.sink.keep for lane in dispatcher._lanes if isinstance(lane.sink, SnapshotSink)]
    finally:
        dispatcher.close()
    assert keeps == [3, 3]


def test_make_sink_builds_each_kind(tmp_path):
    assert isinstance(make_sink(f"jsonl:{tmp_path / 'e.jsonl'}"), JsonlSink)
    assert isinstance(make_sink(f"snapshots:{tmp_path / 's'}"), SnapshotSink)
    assert make_sink(f"snapshots:{tmp_path / 's'}", snapshots_keep=7).keep == 7
    assert isinstance(make_sink("stdout"), StdoutSink)
    hook = make_sink("webhook:http://127.0.0.1:9/hook?token=abc")
    assert isinstance(hook, WebhookSink) and hook.url.endswith("token=abc") and "abc" not in hook.name
    assert isinstance(make_sink("https://example.invalid/hook"), WebhookSink)


@pytest.mark.parametrize(("spec", "match"), [
    ("jsonl:", "missing its argument"),
    ("snapshots:  ", "missing its argument"),
    ("events.jsonl", "did you mean jsonl:events.jsonl"),
    ("webhok:http://x", "did you mean webhook"),
    ("webhook:ftp://x", "must start with http"),
    ("gpio:17:fast", "expected gpio:PIN"),
    ("mqtt:///topic", "expected mqtt://host"),
])
def test_bad_sink_specs_are_explained(spec, match):
    # Specs are checked before optional packages are imported: a typo is reported as a typo.
    with pytest.raises(SinkError, match=match) as err:
        make_sink(spec)
    assert isinstance(err.value, EdgeFlagError)
    if "did you mean" in match:
        assert SINK_FORMS in str(err.value)


@pytest.mark.parametrize(("spec", "module", "install"), [
    ("mqtt://broker.local/line3/defects", "paho.mqtt.client", "pip install 'paho-mqtt>=2'"),
    ("gpio:17", "gpiozero", "pip install gpiozero lgpio"),
])
def test_optional_sinks_without_their_package_name_the_install(spec, module, install, monkeypatch):
    # A None entry in sys.modules makes the import fail as on a board without the package, also
    # where the test machine has it installed (paho is, for the MQTT delivery tests).
    for name in (module.split(".")[0], *[module.rsplit(".", i)[0] for i in range(module.count(".") + 1)]):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(SinkError, match="needs") as err:
        make_sink(spec)
    assert install in str(err.value)


def test_io_modules_import_no_tensorflow_and_no_optional_packages():
    code = (
        "import importlib, pkgutil, sys\n"
        "import runtime.sinks, runtime.sources\n"
        "for pkg in (runtime.sources, runtime.sinks):\n"
        "    for m in pkgutil.iter_modules(pkg.__path__):\n"
        "        importlib.import_module(f'{pkg.__name__}.{m.name}')\n"
        "heavy = {'tensorflow', 'keras', 'train', 'export', 'paho', 'gpiozero', 'picamera2'}\n"
        "print(sorted(heavy & {name.split('.')[0] for name in sys.modules}))\n")
    repo = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
