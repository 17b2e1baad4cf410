"""End to end through `python -m runtime.camera` in a real subprocess, with the real tiny bundle:
exact events and snapshots from a belt video, SIGTERM and kill -9 leave a complete log, a
tampered artifact is refused."""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import cv2
import pytest

from runtime.bundle import Bundle
from runtime.errors import BundleError
from tests.runtime_support import (
    belt,
    expected_starts,
    frames_of,
    jsonl,
    kill_9_after_lines,
    require_confident_parts,
    run_camera,
    start_camera,
    wait_for,
)
from train.conveyor import score


@pytest.fixture(scope="module")
def parts(tiny_bundle, tiny_run):
    return require_confident_parts(tiny_bundle, tiny_run)


def test_belt_video_gives_exactly_the_expected_events_and_snapshots(tiny_bundle, tiny_run, parts, tmp_path):
    video = tmp_path / "belt.mp4"
    truth = belt(tiny_run, parts, "oddoodoodo", video, frames_per_part=8)
    assert frames_of(video) == truth["frame_count"] == 80
    events, snaps = tmp_path / "events.jsonl", tmp_path / "snaps"
    done = run_camera("--bundle", str(tiny_bundle), "--source", str(video), "--headless",
                      "--events", str(events), "--snapshots", str(snaps), "--k", "3", "--n", "5")
    assert done.returncode == 0, done.stderr
    assert "stopped by end: 80 frames" in done.stderr
    log = jsonl(events)
    starts = [e for e in log if e["type"] == "defect_start"]
    # Two adjacent defective parts (the "dd") are one event: the belt never cleared between them.
    want = expected_starts(truth, k=3)
    want = [w for i, w in enumerate(want) if i == 0 or w[2] != want[i - 1][2] + 8]
    assert [(e["frame_index"], e["label"], e["first_frame_index"]) for e in starts] == want
    assert [e["type"] for e in log] == ["defect_start", "defect_end"] * len(want)
    frame_shape = cv2.VideoCapture(str(video)).read()[1].shape
    for e in starts:
        assert e["source"] == str(video) and e["artifact"] == Bundle.load(tiny_bundle).select().name
        picture = cv2.imread(e["snapshot"])  # a full camera frame, decodable, in the snapshot folder
        assert picture is not None and picture.shape == frame_shape
        assert Path(e["snapshot"]).parent == snaps
    assert sorted(p.name for p in snaps.iterdir()) == sorted(Path(e["snapshot"]).name for e in starts)
    result = score(video.with_suffix(".json"), events)
    assert (result.caught, len(result.missed), len(result.false_alarms)) == (truth_defects(truth), 0, 0)
    # The resolved settings and the summary are saved next to the log.
    saved = json.loads(events.with_suffix(".config.json").read_text())
    assert saved["k"] == 3 and saved["artifact_used"] == starts[0]["artifact"]
    assert json.loads(events.with_suffix(".summary.json").read_text())["frames"] == 80


def truth_defects(truth: dict) -> int:
    return sum(p["defective"] for p in truth["parts"])


def test_restart_appends_to_the_log_instead_of_overwriting(tiny_bundle, tiny_run, parts, tmp_path):
    video = tmp_path / "belt.mp4"
    belt(tiny_run, parts, "odo", video, frames_per_part=6)
    events = tmp_path / "events.jsonl"
    args = ("--bundle", str(tiny_bundle), "--source", str(video), "--headless", "--events", str(events),
            "--no-snapshots")
    for _ in range(2):
        assert run_camera(*args).returncode == 0
    assert [e["type"] for e in jsonl(events)] == ["defect_start", "defect_end"] * 2
    assert "snapshot" not in jsonl(events)[0]


def test_sigterm_closes_the_open_defect_and_flushes_the_log(tiny_bundle, tiny_run, parts, tmp_path):
    video = tmp_path / "long.mp4"
    belt(tiny_run, parts, "d", video, frames_per_part=250, fps=25)  # 10 s when paced
    events, err = tmp_path / "events.jsonl", tmp_path / "stderr.txt"
    proc = start_camera("--bundle", str(tiny_bundle), "--source", str(video), "--realtime", "--headless",
                        "--events", str(events), "--snapshots", str(tmp_path / "s"), stderr_path=err)
    try:
        wait_for(lambda: events.exists() and "defect_start" in events.read_text(), what="defect_start")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, err.read_text()
    finally:
        proc.kill()
    log = jsonl(events)  # every line is valid JSON
    assert [e["type"] for e in log] == ["defect_start", "defect_end"]
    assert log[1]["frame_index"] >= log[0]["frame_index"] and log[1]["frame_count"] >= 3
    assert "stopped by SIGTERM" in err.read_text()


def test_kill_9_leaves_every_earlier_event_line_intact(tiny_bundle, tiny_run, parts, tmp_path):
    video = tmp_path / "busy.mp4"
    belt(tiny_run, parts, "od" * 40, video, frames_per_part=4, fps=50)  # an event every 40 ms
    records = kill_9_after_lines(tmp_path / "events.jsonl", 6, "--bundle", str(tiny_bundle), "--source",
                                 str(video), "--realtime", "--headless", "--k", "2", "--n", "2",
                                 "--snapshots", str(tmp_path / "s"), stderr_path=tmp_path / "stderr.txt")
    assert {r["type"] for r in records} == {"defect_start", "defect_end"}


def test_tampered_artifact_is_refused_with_a_clear_message(tiny_bundle, tiny_run, parts, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle, symlinks=False)
    artifact = Bundle.load(bundle).select()
    data = bytearray((bundle / artifact.file).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (bundle / artifact.file).write_bytes(bytes(data))
    video = tmp_path / "belt.mp4"
    belt(tiny_run, parts, "od", video, frames_per_part=4)
    events = tmp_path / "events.jsonl"
    done = run_camera("--bundle", str(bundle), "--source", str(video), "--headless", "--events", str(events),
                      "--artifact", artifact.name)
    assert done.returncode == 2
    assert "sha256 mismatch" in done.stderr and "refusing to run it" in done.stderr
    assert "Traceback" not in done.stderr
    assert not events.exists()  # nothing ran
    with pytest.raises(BundleError, match="sha256 mismatch"):
        Bundle.load(bundle).open(artifact)


def test_a_bundle_judged_unfit_for_the_line_is_refused_unless_allowed(tiny_bundle, tiny_run, parts, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle, symlinks=False)
    doc = json.loads((bundle / "bundle.json").read_text())
    assert {c["name"] for c in doc["fitness"]["checks"]} == {"defect_recall", "false_alarm_rate"}
    doc["fitness"].update(fit=False, reasons=["defect recall 90.00% (9/10) is not >= the target 95%"])
    (bundle / "bundle.json").write_text(json.dumps(doc))
    video = tmp_path / "belt.mp4"
    belt(tiny_run, parts, "od", video, frames_per_part=4)
    events = tmp_path / "events.jsonl"
    args = ("--bundle", str(bundle), "--source", str(video), "--headless", "--events", str(events))
    refused = run_camera(*args)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "NOT FIT for the line" in refused.stderr and "--allow-unfit" in refused.stderr
    assert not events.exists()
    allowed = run_camera(*args, "--allow-unfit")
    assert allowed.returncode == 0, allowed.stderr
    assert "running anyway (--allow-unfit)" in allowed.stderr and events.exists()
