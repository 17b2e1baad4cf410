"""The demo's conveyor video (held-out parts, truth file) and the scoring of events against it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.runtime_support import REPO, camera_env, frames_of
from train.conveyor import RenderConfig, plan_parts, read_test_split, score

TRUTH = {"video": "v.mp4", "fps": 10, "frame_count": 48, "frames_per_part": 8, "ok_label": "ok",
         "parts": [{"part": i, "first_frame": 8 * i, "last_frame": 8 * i + 7, "label": lab,
                    "defective": lab != "ok", "image": f"{lab}/{i}.png"}
                   for i, lab in enumerate(["ok", "crack", "pit", "ok", "crack", "ok"])]}


def ev(kind: str, frame: int, first: int, last: int | None = None, label: str = "crack") -> dict:
    e = {"type": f"defect_{kind}", "time": "2026-01-01T00:00:00+00:00", "frame_index": frame, "label": label,
         "peak_score": 0.9, "frame_count": 3, "first_frame_index": first}
    if last is not None:
        e["last_frame_index"] = last
    return e


def write(tmp_path, events: list[dict], extra: str = "") -> tuple:
    truth, log = tmp_path / "truth.json", tmp_path / "events.jsonl"
    truth.write_text(json.dumps(TRUTH))
    log.write_text("".join(json.dumps(e) + "\n" for e in events) + extra)
    return truth, log


def conveyor(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "train.conveyor", *args], cwd=REPO, env=camera_env(),
                          capture_output=True, text=True, timeout=120)


def test_score_counts_caught_missed_false_alarms_and_merges(tmp_path):
    events = [ev("start", 11, 9), ev("end", 26, 9, 23),  # one event over parts 1+2 (adjacent defects)
              ev("start", 27, 25, label="pit"), ev("end", 30, 25, 27, label="pit")]  # on good part 3
    result = score(*write(tmp_path, events))
    assert (result.parts, result.defective, result.caught, result.events) == (6, 3, 2, 2)
    assert [p["part"] for p in result.missed] == [4]
    assert [f["parts"] for f in result.false_alarms] == [[3]]
    assert result.label_matches == 1  # the merged event says crack: right for part 1, not for 2
    text = result.text()
    assert "defects caught:     2/3" in text and "missed part 4" in text
    assert "false alarm at frames 25-27" in text


def test_score_counts_a_defect_split_in_two_events_and_an_unfinished_one(tmp_path):
    events = [ev("start", 10, 8), ev("end", 12, 8, 10), ev("start", 15, 13), ev("end", 19, 13, 15),
              ev("start", 34, 32)]  # the log ends with this defect still open (killed run)
    result = score(*write(tmp_path, events))
    # Part 1 is hit twice (split), part 4 by the open event, part 2 by nothing.
    assert (result.caught, result.split, [p["part"] for p in result.missed], result.events) == (2, 1, [2], 3)


def test_score_cli_exits_non_zero_only_on_malformed_input(tmp_path):
    truth, log = write(tmp_path, [ev("start", 11, 9), ev("end", 14, 9, 11)])
    ok = conveyor("score", "--truth", str(truth), "--events", str(log))
    assert ok.returncode == 0 and "defects caught:     1/3" in ok.stdout  # misses are not an error
    torn = write(tmp_path, [ev("start", 11, 9)], extra='{"type": "defect_e')
    done = conveyor("score", "--truth", str(torn[0]), "--events", str(torn[1]))
    assert done.returncode == 0 and "torn last line" in done.stderr
    log.write_text("not json\n" + json.dumps(ev("start", 11, 9)) + "\n")
    bad = conveyor("score", "--truth", str(truth), "--events", str(log))
    assert bad.returncode == 2 and "line 1: not JSON" in bad.stderr and "Traceback" not in bad.stderr
    log.write_text(json.dumps({"type": "defect_start", "frame_index": 3}) + "\n")
    assert conveyor("score", "--truth", str(truth), "--events", str(log)).returncode == 2
    missing = conveyor("score", "--truth", str(tmp_path / "nope.json"), "--events", str(log))
    assert missing.returncode == 2 and "truth file" in missing.stderr


def test_render_writes_a_video_of_held_out_parts_and_its_truth(tiny_run, tmp_path):
    out = tmp_path / "belt.mp4"
    done = conveyor("render", "--run", str(tiny_run), "--out", str(out), "--parts", "10",
                    "--frames-per-part", "3", "--fps", "5")
    assert done.returncode == 0, done.stderr
    truth = json.loads(out.with_suffix(".json").read_text())
    _, items, manifest = read_test_split(tiny_run)
    test_split = dict(items)
    assert truth["frame_count"] == 30 == frames_of(out)
    spans = [(p["first_frame"], p["last_frame"]) for p in truth["parts"]]
    assert spans == [(3 * i, 3 * i + 2) for i in range(10)]
    for p in truth["parts"]:  # only held-out (test split) parts, with their true labels
        assert test_split[p["image"]] == p["label"] and p["defective"] == (p["label"] != manifest["ok_label"])
    assert 1 <= sum(p["defective"] for p in truth["parts"]) <= 5


def test_plan_is_seeded_and_mixes_good_and_defective_parts():
    items = [(f"ok/{i}.png", "ok") for i in range(50)] + [(f"defect/{i}.png", "defect") for i in range(50)]
    a = plan_parts(items, "ok", RenderConfig(parts=20, seed=3))
    assert a == plan_parts(items, "ok", RenderConfig(parts=20, seed=3))
    assert a != plan_parts(items, "ok", RenderConfig(parts=20, seed=4))
    assert len(a) == len(set(a)) == 20 and sum(label == "defect" for _, label in a) == 6


def test_render_errors_name_the_problem(tmp_path):
    done = conveyor("render", "--run", str(tmp_path), "--out", str(tmp_path / "v.mp4"))
    assert done.returncode == 2 and "not a complete run directory" in done.stderr


@pytest.mark.parametrize("flag", ["--parts", "--frames-per-part"])
def test_render_refuses_empty_belts(tiny_run, tmp_path, flag):
    done = conveyor("render", "--run", str(tiny_run), "--out", str(tmp_path / "v.mp4"), flag, "0")
    assert done.returncode == 2 and ">= 1" in done.stderr


def part_ev(part_id: int, first: int, last: int, verdict: str, label: str) -> dict:
    return {"type": "part", "part_id": part_id, "first_frame_index": first, "last_frame_index": last,
            "frame_index": last, "verdict": verdict, "label": label, "score": 0.9}


def test_score_parts_counts_parts_rejects_and_good_parts_rejected(tmp_path):
    # Truth: ok, crack, pit, ok, crack, ok. The log: part 4 (crack) passed, part 3 (good) rejected as
    # pit, the first good part covered by two events (split), the last part never counted.
    events = [part_ev(1, 0, 3, "ok", "ok"), part_ev(2, 4, 7, "ok", "ok"),
              part_ev(3, 8, 15, "defect", "crack"), part_ev(4, 16, 23, "defect", "crack"),
              part_ev(5, 24, 31, "defect", "pit"), part_ev(6, 32, 39, "ok", "ok")]
    truth, log = write(tmp_path, events)
    from train.conveyor import score_parts

    result = score_parts(truth, log)
    assert (result.parts, result.defective, result.counted, result.split) == (6, 3, 6, 1)
    assert (result.defective_rejected, result.class_matches) == (2, 1)  # part 2 is a pit, called crack
    assert [p["part"] for p in result.good_rejected] == [3]
    assert [p["part"] for p in result.defective_passed] == [4]
    assert [p["part"] for p in result.uncounted] == [5] and not result.exact_count
    out = conveyor("score", "--truth", str(truth), "--events", str(log))
    assert out.returncode == 0 and "parts counted:      6 (NOT exact: 1 uncounted, 1 split)" in out.stdout
    assert "good rejected:      1/3 (33.3%)" in out.stdout and "defective rejected: 2/3" in out.stdout


# ------------------------------------------------------------------------- parts lifted onto the belt
def test_a_synthetic_photo_is_lifted_by_its_generators_own_outline_defects_on_the_rim_included(tmp_path):
    import cv2
    import numpy as np

    from train.conveyor import _sprite
    from train.synth import generate, part_and_mask, render_part_and_mask

    data = generate(tmp_path / "synth", count=20, size=64, seed=5)
    crack = sorted(p.relative_to(data).as_posix() for p in data.glob("defect/crack_*.jpg"))[0]
    index = int(crack.rsplit("_", 1)[1][:5])
    drawn, alpha = part_and_mask(data, crack)
    good, _ = render_part_and_mask(np.random.default_rng([5, index]), None, 64)
    photo = cv2.cvtColor(cv2.imread(str(data / crack)), cv2.COLOR_BGR2RGB)
    assert np.abs(drawn.astype(int) - photo).mean() < 6  # the same picture, up to JPEG
    # Every pixel the crack changed is on the part (a pixel-threshold cut-out took rim cracks away).
    cracked = np.abs(drawn.astype(int) - good).max(axis=2) > 40
    assert cracked.sum() > 5 and alpha[cracked].min() > 0.5 and 0 < alpha.mean() < 0.6
    tex, sprite_alpha = _sprite(data, crack, 128)
    assert tex.shape == (128, 128, 3) and sprite_alpha.shape == (128, 128)
    assert np.abs(sprite_alpha - cv2.resize(alpha, (128, 128), interpolation=cv2.INTER_LINEAR)).max() < 1e-6


def test_only_the_synthetic_sets_own_files_are_re_rendered(tmp_path):
    import json as json_

    from train.synth import MANIFEST, generate, part_and_mask

    data = generate(tmp_path / "synth", count=20, size=48)
    assert part_and_mask(data, "ok/not_there_00001.jpg") is None
    assert part_and_mask(tmp_path, "ok/ok_00000.jpg") is None  # not a synthetic set
    meta = json_.loads((data / MANIFEST).read_text())
    (data / MANIFEST).write_text(json_.dumps({**meta, "generator_version": -1}))
    assert part_and_mask(data, meta["files"][0]) is None  # drawn by another version: not trusted


def test_any_other_photo_is_cut_out_with_dark_marks_kept_and_a_bore_let_through():
    import cv2
    import numpy as np

    from train.conveyor import _cut_out

    rgb = np.full((96, 96, 3), 60, np.uint8)
    cv2.circle(rgb, (48, 48), 34, (200, 200, 190), -1)
    cv2.circle(rgb, (48, 48), 9, (60, 60, 60), -1)  # the bore: belt shows through
    cv2.line(rgb, (20, 40), (36, 30), (55, 55, 55), 2)  # a dark crack, as dark as the belt
    cv2.circle(rgb, (65, 62), 3, (40, 40, 40), -1)  # a pit
    _, alpha = _cut_out(rgb, 192)
    assert alpha[2 * 48, 2 * 48] < 0.1 and alpha[5, 5] < 0.1  # bore and belt
    assert alpha[2 * 35, 2 * 28] > 0.9 and alpha[2 * 62, 2 * 65] > 0.9  # crack and pit stay on the part
    assert alpha[2 * 48, 2 * 20] > 0.9  # body
