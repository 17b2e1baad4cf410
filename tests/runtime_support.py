"""Helpers shared by the runtime tests (tests/test_runtime_*.py): belt videos, subprocess runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from runtime.bundle import Bundle
from runtime.image_io import read_image
from runtime.preprocess import prepare_rgb
from runtime.sources.base import Frame, FrameSource
from train.conveyor import read_test_split, render_video

REPO = Path(__file__).resolve().parents[1]
MARGIN = 0.1  # score distance from the threshold so video compression cannot flip a verdict


def confident_parts(bundle_dir: Path, run_dir: Path) -> dict[str, list[str]]:
    """Test-split images, per true label, that the camera's default artifact decides correctly
    with a margin.

    The end-to-end tests check the pipeline from video to events exactly; which parts the model
    gets right is the accuracy gate's business (export), so the belt is built from parts whose
    verdict is not in doubt.
    """
    bundle = Bundle.load(bundle_dir)
    artifact = bundle.select()
    data_dir, items, _ = read_test_split(run_dir)
    strict = bundle.decider(artifact, {c: min(0.99, t + MARGIN) for c, t in artifact.thresholds.items()})
    loose = bundle.decider(artifact, {c: max(0.01, t - MARGIN) for c, t in artifact.thresholds.items()})
    out: dict[str, list[str]] = {}
    with bundle.open(artifact) as engine:
        for rel, label in items:
            probs = engine.run_one(prepare_rgb(read_image(data_dir / rel), bundle.contract))
            if label == bundle.ok_label:
                good = not loose.decide(probs).flagged
            else:
                verdict = strict.decide(probs)
                good = verdict.flagged and verdict.label == label
            if good:
                out.setdefault(label, []).append(rel)
    return out


def require_confident_parts(bundle_dir: Path, run_dir: Path) -> dict[str, list[str]]:
    """:func:`confident_parts`, failing the test when the tiny bundle gives too few to build belts."""
    found = confident_parts(bundle_dir, run_dir)
    ok = Bundle.load(bundle_dir).ok_label
    if len(found.get(ok, [])) < 2 or len(found) < 2:
        counts = {k: len(v) for k, v in found.items()}
        raise AssertionError(f"the tiny bundle decides too few test parts confidently: {counts}")
    return found


def wait_for(predicate, timeout: float = 60.0, what: str = "condition"):
    """Poll ``predicate`` until it returns something true (returned), or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def belt(run_dir: Path, parts: dict[str, list[str]], pattern: str, out: Path,
         frames_per_part: int = 8, fps: float = 10.0) -> dict:
    """Render a belt video from a pattern like ``"odood"`` (o = good part, d = defective part);
    returns the truth dict written next to the video."""
    data_dir, _, manifest = read_test_split(run_dir)
    ok = manifest["ok_label"]
    defect_labels = sorted(k for k in parts if k != ok)
    used = {label: 0 for label in parts}
    sequence = []
    for i, ch in enumerate(pattern):
        label = ok if ch == "o" else defect_labels[i % len(defect_labels)]
        pool = parts[label]
        sequence.append((pool[used[label] % len(pool)], label))
        used[label] += 1
    render_video(sequence, data_dir, out, ok, frames_per_part=frames_per_part, fps=fps)
    return json.loads(out.with_suffix(".json").read_text())


def camera_cmd(*args: str) -> list[str]:
    """``python -m runtime.camera ARGS`` with the interpreter running the tests."""
    return [sys.executable, "-m", "runtime.camera", *args]


def camera_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_camera(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the camera program to completion in a subprocess from the repository root."""
    return subprocess.run(camera_cmd(*args), cwd=REPO, env=camera_env(), capture_output=True, text=True,
                          timeout=timeout)


def start_camera(*args: str, stderr_path: Path) -> subprocess.Popen:
    """Start the camera program in the background (stderr to a file, for the failure message)."""
    return subprocess.Popen(camera_cmd(*args), cwd=REPO, env=camera_env(), stdout=subprocess.DEVNULL,
                            stderr=open(stderr_path, "w"))


def kill_9_after_lines(events: Path, lines: int, *args: str, stderr_path: Path) -> list[dict]:
    """Start the camera program with ``args``, SIGKILL it once ``events`` holds ``lines`` lines, and
    return the log's complete records, after checking nothing written before the kill was lost."""
    import signal

    proc = start_camera(*args, "--events", str(events), stderr_path=stderr_path)
    try:
        wait_for(lambda: events.exists() and events.read_text().count("\n") >= lines, what=f"{lines} lines")
        before = events.read_bytes()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    after = events.read_bytes()
    assert after.startswith(before)  # nothing written earlier was lost or rewritten
    records = [json.loads(line) for line in after[: after.rfind(b"\n") + 1].decode().splitlines()]
    assert len(records) >= before.count(b"\n") >= lines
    return records


def jsonl(path: Path) -> list[dict]:
    """Every line of an event log, each parsed (fails on any invalid line)."""
    return [json.loads(line) for line in path.read_text().splitlines()]


def expected_starts(truth: dict, k: int) -> list[tuple[int, str, int]]:
    """``(frame_index, label, first_frame_index)`` of the defect_start each defective part must
    give: its k-th frame, when the part before it is good (so nothing is still flagged)."""
    return [(p["first_frame"] + k - 1, p["label"], p["first_frame"])
            for p in truth["parts"] if p["defective"]]


def frames_of(video: Path) -> int:
    import cv2

    cap = cv2.VideoCapture(str(video))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def as_array(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


def frames_of_parts(bundle_dir: Path, run_dir: Path) -> dict[str, list[np.ndarray]]:
    """BGR camera frames of confidently decided parts: {"ok": [...], "defect": [...]}."""
    import cv2

    data_dir, _, manifest = read_test_split(run_dir)
    found = confident_parts(bundle_dir, run_dir)
    ok = manifest["ok_label"]
    bad = [rel for label, rels in found.items() if label != ok for rel in rels]
    to_bgr = lambda rel: cv2.cvtColor(read_image(data_dir / rel), cv2.COLOR_RGB2BGR)  # noqa: E731
    return {"ok": [to_bgr(r) for r in found[ok][:4]], "defect": [to_bgr(r) for r in bad[:4]]}


class ListSource(FrameSource):
    """Frames from memory, in order (a file-like source without decoding cost)."""

    def __init__(self, images: list):
        super().__init__("memory")
        self.images = images
        self.pos = 0

    def open(self) -> None:
        pass

    def read(self) -> Frame | None:
        if self.stopped or self.pos >= len(self.images):
            return None
        self.pos += 1
        self._count("frames")
        return Frame(self.images[self.pos - 1], self.pos - 1, time.monotonic())


def alternating(part_frames, parts: int, frames_per_part: int) -> list[np.ndarray]:
    """Frames of ``parts`` parts, good and defective in turn, each held ``frames_per_part`` frames."""
    out = []
    for i in range(parts):
        kind = "defect" if i % 2 else "ok"
        out += [part_frames[kind][i % len(part_frames[kind])]] * frames_per_part
    return out


def quiet(**kw):
    """Run settings without the stats line or a window (plus ``kw``)."""
    return {"stats_every": 0, "show": False, **kw}
